"""Turn the YAML tree (file or embedded defaults, env overrides applied) into a `Config`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from types import MappingProxyType
from urllib.parse import urlsplit

from .defaults import DefaultPaths
from .errors import ConfigError
from .model import (
    EVENTS_V1,
    EVENTS_V2,
    ApplianceConfig,
    ApplianceNotificationsConfig,
    DebugConfig,
    EndpointConfig,
    HealthCheckConfig,
    HealthConfig,
    NotificationsConfig,
    PrometheusConfig,
    AuthConfig,
    Config,
    HTTPConfig,
    LimitsConfig,
    LogConfig,
    StorageConfig,
    TLSConfig,
    UploadPurgingConfig,
)
from . import authbuild, proxybuild, storagebuild, swiftbuild
from .reader import Section

# Keys under `storage:` that are not a driver, as Distribution's Storage.UnmarshalYAML lists them.
STORAGE_SECTIONS = frozenset({"delete", "maintenance", "cache", "redirect", "tag"})
_LATER_DRIVERS = frozenset({"azure", "gcs"})
_MIN_THREADS = 25


def build(
    tree: dict[object, object],
    source: str,
    paths: DefaultPaths,
    problems: Sequence[str] = (),
    ignored: Sequence[str] = (),
) -> Config:
    """Validate everything before raising, so the admin sees all problems at once.
    `problems` and `ignored` carry what the env overrides found."""
    found = list(problems)
    warnings: list[str] = []
    root = Section("", tree, found)
    version = root.required("version")
    if version and version != "0.1":
        root.problem("version", "must be 0.1")
    config = Config(
        version=version,
        log=_log(root.section("log")),
        storage=_storage(root.section("storage"), warnings),
        http=_http(root.section("http")),
        auth=_auth(root.section("auth")),
        source=source,
        appliance=_appliance(root.section("appliance"), paths),
        notifications=_notifications(root.section("notifications")),
        health=_health(root.section("health")),
    )
    config = replace(config, proxy=proxybuild.proxy(root.section("proxy"),
                                                    config.appliance.proxy_prefix))
    if not config.appliance.notifications.statedir:
        base = (f"{config.storage.rootdirectory.rstrip('/')}/appliance"
                if config.storage.driver == "filesystem" else paths.data_dir)
        config = replace(config, appliance=replace(config.appliance, notifications=replace(
            config.appliance.notifications, statedir=f"{base}/events")))
    config = authbuild.check(config, root.problem)
    if config.appliance.admin_users and config.auth.htpasswd is None:
        root.problem("appliance.admin.users", "needs auth.htpasswd: admins log in with their htpasswd password")
    unread = list(root.unread())
    found += [f"{key}: unknown key" for key in unread if key.startswith("appliance.")]
    if found:
        raise ConfigError(tuple(found))
    unused = (*ignored, *(key for key in unread if not key.startswith("appliance.")))
    return replace(config, ignored=unused, warnings=tuple(warnings))


def _log(log: Section) -> LogConfig:
    fields = log.section("fields")
    return LogConfig(
        level=log.choice("level", LogConfig.level, {
            "debug": "debug", "info": "info", "warn": "warn", "warning": "warn", "error": "error"}),
        formatter=log.choice("formatter", LogConfig.formatter, {
            "text": "text", "json": "json", "logstash": "json"}),
        fields=MappingProxyType({key: fields.string(key, "") for key in fields.keys()}),
    )


def _storage(storage: Section, warnings: list[str]) -> StorageConfig:
    drivers = [key for key in storage.keys() if key not in STORAGE_SECTIONS]
    if len(drivers) > 1:
        storage.problem("", f"only one driver may be configured, got {', '.join(drivers)}")
    elif not drivers and storage.valid:
        storage.problem("", "a driver is required, such as filesystem" if storage.keys()
                        else "required")
    driver = drivers[0] if drivers else "filesystem"
    params = storage.section(driver)
    root, threads = "", StorageConfig.maxthreads
    s3, oss, swift = None, None, None
    if driver == "filesystem":
        root = params.string("rootdirectory", "/var/lib/registry")
        threads = params.integer("maxthreads", threads)
        if threads < _MIN_THREADS:
            warnings.append(f"{params.path}.maxthreads: {threads} is below {_MIN_THREADS}; "
                            f"using {_MIN_THREADS}, as Distribution does")
            threads = _MIN_THREADS
    elif driver == "s3":
        s3 = storagebuild.s3(params)
        root = s3.rootdirectory
    elif driver == "oss":
        oss = storagebuild.oss(params)
        root = oss.rootdirectory
    elif driver == "swift":
        swift = swiftbuild.swift(params)
        root = swift.prefix
    elif driver in _LATER_DRIVERS:
        storage.problem(driver, "driver not supported yet")
    elif driver != "inmemory":
        storage.problem(driver, "unknown storage driver (known: filesystem, s3, oss, swift, inmemory)")
    maintenance = storage.section("maintenance")
    return StorageConfig(
        driver=driver,
        rootdirectory=root,
        delete_enabled=storage.section("delete").boolean("enabled", False),
        readonly=maintenance.section("readonly").boolean("enabled", False),
        uploadpurging=_purging(maintenance.section("uploadpurging")),
        maxthreads=threads,
        s3=s3,
        oss=oss,
        swift=swift,
        redirect_disable=storage.section("redirect").boolean("disable", False),
        blobdescriptor=storagebuild.blob_descriptor_cache(storage.section("cache")),
    )


def _purging(purging: Section) -> UploadPurgingConfig:
    age = purging.duration("age", UploadPurgingConfig.age)
    interval = purging.duration("interval", UploadPurgingConfig.interval)
    for key, seconds in (("age", age), ("interval", interval)):
        if seconds <= 0:
            purging.problem(key, "must be longer than zero")
    return UploadPurgingConfig(
        enabled=purging.boolean("enabled", UploadPurgingConfig.enabled),
        age=age,
        interval=interval,
        dryrun=purging.boolean("dryrun", UploadPurgingConfig.dryrun),
    )


def _http(http: Section) -> HTTPConfig:
    net = http.choice("net", HTTPConfig.net, {"tcp": "tcp", "unix": "unix"})
    addr = http.string("addr", HTTPConfig.addr)
    port = addr.rpartition(":")[2]
    if net == "tcp" and not (port.isdigit() and int(port) < 65536):
        http.problem("addr", "must be host:port, like :5000 or 127.0.0.1:5000")
    host = http.string("host", "")
    if host and not _is_url(host):
        http.problem("host", "must be a URL like https://registry.example.com:5000")
    config = HTTPConfig(addr=addr, net=net, host=host, secret=http.string("secret", ""),
                        relativeurls=http.boolean("relativeurls", False),
                        tls=_tls(http.section("tls")), debug=_debug(http.section("debug")))
    given, headers = http.has("headers"), http.section("headers")
    if not given:
        return config
    return replace(config, headers=MappingProxyType(
        {name: headers.strings(name) for name in headers.keys()}))


def _debug(debug: Section) -> DebugConfig:
    addr = debug.string("addr", "")
    port = addr.rpartition(":")[2]
    if addr and not (port.isdigit() and int(port) < 65536):
        debug.problem("addr", "must be host:port, like :5001 or 127.0.0.1:5001")
    prometheus = debug.section("prometheus")
    path = prometheus.string("path", PrometheusConfig.path)
    if not path.startswith("/"):
        prometheus.problem("path", "must start with /")
    enabled = prometheus.boolean("enabled", False)
    if enabled and not addr:
        prometheus.problem("enabled", "needs http.debug.addr: metrics are served there")
    return DebugConfig(addr, PrometheusConfig(enabled, path))


def _headers(section: Section, key: str) -> MappingProxyType[str, tuple[str, ...]]:
    headers = section.section(key)
    return MappingProxyType({name: headers.strings(name) for name in headers.keys()})


def _positive(section: Section, key: str, value: float) -> float:
    if value <= 0:
        section.problem(key, "must be longer than zero")
    return value


def _notifications(notifications: Section) -> NotificationsConfig:
    endpoints, names = [], set()
    for item in notifications.sections("endpoints"):
        name, url = item.required("name"), item.required("url")
        if url and not _is_url(url):
            item.problem("url", "must be an http or https URL")
        if name in names:
            item.problem("name", f"{name!r} is used by another endpoint")
        names.add(name)
        if "/" in name or name in (".", ".."):
            item.problem("name", "must not contain / (it names a folder of queued events)")
        threshold = item.integer("threshold", EndpointConfig.threshold)
        if threshold < 0:
            item.problem("threshold", "must be 0 or more")
        ignore = item.section("ignore")
        endpoints.append(EndpointConfig(
            name=name, url=url, headers=_headers(item, "headers"),
            timeout=_positive(item, "timeout", item.duration("timeout", EndpointConfig.timeout)),
            threshold=threshold or EndpointConfig.threshold,
            backoff=_positive(item, "backoff", item.duration("backoff", EndpointConfig.backoff)),
            disabled=item.boolean("disabled", False),
            ignored_media_types=(*item.strings("ignoredmediatypes"), *ignore.strings("mediatypes")),
            ignored_actions=ignore.strings("actions"),
        ))
    events = notifications.section("events")
    return NotificationsConfig(tuple(endpoints), events.boolean("includereferences", False))


_CHECK_TARGETS = {"http": "uri", "tcp": "addr", "file": "file"}


def _health(health: Section) -> HealthConfig:
    driver = health.section("storagedriver")
    checks = []
    for kind, target_key in _CHECK_TARGETS.items():
        for item in health.sections(kind):
            target = item.required(target_key)
            if kind == "http" and target and not _is_url(target):
                item.problem("uri", "must be an http or https URL")
            if kind == "tcp" and target and not target.rpartition(":")[2].isdigit():
                item.problem("addr", "must be host:port")
            check = HealthCheckConfig(
                kind, target,
                interval=_positive(item, "interval",
                                   item.duration("interval", HealthCheckConfig.interval)))
            if kind != "file":
                check = replace(
                    check, threshold=item.integer("threshold", 0),
                    timeout=_positive(item, "timeout",
                                      item.duration("timeout", HealthCheckConfig.timeout)))
            if kind == "http":
                check = replace(check, statuscode=item.integer("statuscode", 200),
                                headers=_headers(item, "headers"))
            checks.append(check)
    return HealthConfig(
        storagedriver_enabled=driver.boolean("enabled", False),
        storagedriver_interval=_positive(driver, "interval", driver.duration("interval", 10.0)),
        storagedriver_threshold=driver.integer("threshold", 0),
        checks=tuple(checks),
    )


def _is_url(text: str) -> bool:
    try:
        parts = urlsplit(text)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _tls(tls: Section) -> TLSConfig | None:
    certificate, key = tls.string("certificate", ""), tls.string("key", "")
    minimum = tls.string("minimumtls", TLSConfig.minimumtls).lower()
    if minimum in ("tls1.0", "tls1.1"):
        tls.problem("minimumtls", f"{minimum} is refused: it is broken; use tls1.2 or tls1.3")
    elif minimum not in ("tls1.2", "tls1.3"):
        tls.problem("minimumtls", "must be one of tls1.2, tls1.3")
    clientcas = tls.strings("clientcas")
    if not certificate and not key:
        return None  # As in Distribution: TLS is on only when a certificate is given.
    for name, value in (("certificate", certificate), ("key", key)):
        if not value:
            tls.problem(name, "required")
    return TLSConfig(certificate, key, clientcas, minimum)


def _auth(auth: Section) -> AuthConfig:
    return authbuild.auth(auth)


def _limits(limits: Section) -> LimitsConfig:
    """`appliance.limits` beyond the two sizes: counts must be 0 (none) or more, timeouts
    above 0 (a connection with no timeout could be held open forever)."""
    counts = {key: limits.integer(key, getattr(LimitsConfig, key))
              for key in ("maxheaders", "maxuploads", "maxrepositoryuploads")}
    for key, value in counts.items():
        if value < 0:
            limits.problem(key, "must be 0 (no limit) or more")
    times = {key: limits.duration(key, getattr(LimitsConfig, key))
             for key in ("idletimeout", "headertimeout", "uploadidle")}
    for key, value in times.items():
        if value <= 0:
            limits.problem(key, "must be longer than 0s")
    headersize = limits.size("maxheadersize", LimitsConfig.maxheadersize)
    if headersize < 1024:
        limits.problem("maxheadersize", "must be 1KiB or more (docker's own headers need it)")
    return LimitsConfig(maxheadersize=headersize, **counts, **times)


def _appliance(appliance: Section, paths: DefaultPaths) -> ApplianceConfig:
    certs, limits = appliance.section("certs"), appliance.section("limits")
    admin, gc = appliance.section("admin"), appliance.section("gc")
    shutdown = appliance.section("shutdown")
    events = appliance.section("notifications")
    maxqueue = events.integer("maxqueue", ApplianceNotificationsConfig.maxqueue)
    if maxqueue < 1:
        events.problem("maxqueue", "must be 1 or more")
    return ApplianceConfig(
        certs_dir=certs.string("dir", paths.certs_dir),
        autogenerate_certs=certs.boolean("autogenerate", False),
        max_body_bytes=limits.size("maxbodysize", ApplianceConfig.max_body_bytes),
        max_manifest_bytes=limits.size("maxmanifestsize", ApplianceConfig.max_manifest_bytes),
        limits=_limits(limits),
        admin_socket=admin.string("socket", paths.admin_socket),
        admin_users=admin.strings("users"),
        gc_grace=gc.duration("grace", ApplianceConfig.gc_grace),
        shutdown_timeout=shutdown.duration("timeout", ApplianceConfig.shutdown_timeout),
        spool_dir=appliance.string("spooldir", ""),
        tokenserver=authbuild.tokenserver(appliance.section("tokenserver"),
                                          certs.string("dir", paths.certs_dir)),
        access=authbuild.access(appliance.section("access")),
        etcd=authbuild.etcd(appliance.section("etcd")),
        notifications=ApplianceNotificationsConfig(
            statedir=events.string("statedir", ""), maxqueue=maxqueue,
            mediatype=events.choice("mediatype", EVENTS_V1, {
                EVENTS_V1: EVENTS_V1, EVENTS_V2: EVENTS_V2, "v1": EVENTS_V1, "v2": EVENTS_V2})),
        proxy_prefix=proxybuild.prefix(appliance.section("proxy")),
    )
