"""Wiring: build the registry from config, listen (TLS or plain), run until stopped."""

from __future__ import annotations

import dataclasses
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from twisted.internet import endpoints
from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool
from twisted.web.server import Request

from appliance import authsetup, lifecycle
from appliance.activation import adopt_listening_socket
from appliance.admin.handlers import AdminApi
from appliance.admin.listen import listen_admin
from appliance.admin.resource import AdminResource
from appliance.api.authz import Gate
from appliance.api.resource import RegistryResource
from appliance.api.site import RegistrySite
from appliance.api.uploadstate import UploadStateSigner
from appliance.api.v2 import V2Api
from appliance.auth.basic import HtpasswdAuthenticator
from appliance.auth.ratelimit import LoginLimiter
from appliance.config import Config
from appliance.metrics import Metrics, TimedDriver
from appliance.observability import Observability, new_metrics
from appliance.registry import Registry
from appliance.registry.uploadlimits import UploadLimits
from appliance.storage import paths
from appliance.storage.driver import PathNotFound, StorageDriver, StorageUnavailable
from appliance.storage.filesystem import FilesystemDriver
from appliance.tls import ReloadableServerTLS, ensure_server_certs
from appliance.workers import WorkerRole

log = Logger()
READONLY_REFRESH = 1.0


def open_driver(config: Config) -> StorageDriver:
    """The configured driver; boto3 is imported only when an object store is configured."""
    storage = config.storage
    if storage.s3 is not None or storage.oss is not None:
        from appliance.storage.s3 import OSSOptions, S3Driver, S3Options, oss_as_s3

        spool = config.appliance.spool_dir
        if storage.s3 is not None:
            options = S3Options(**dataclasses.asdict(storage.s3), spooldirectory=spool)
            return S3Driver(options, name="s3")
        return S3Driver(oss_as_s3(OSSOptions(**dataclasses.asdict(storage.oss)), spool), name="oss")
    if storage.swift is not None:
        from appliance.storage.swift import SwiftDriver, SwiftOptions

        return SwiftDriver(SwiftOptions(**dataclasses.asdict(storage.swift),
                                        spooldirectory=config.appliance.spool_dir))
    return FilesystemDriver(storage.rootdirectory)


def describe_storage(config: Config) -> str:
    """For the log: where the data is."""
    storage = config.storage
    bucket = storage.s3.bucket if storage.s3 else storage.oss.bucket if storage.oss else ""
    bucket = storage.swift.container if storage.swift else bucket
    if bucket:
        return f"{storage.driver}://{bucket}/{storage.rootdirectory.strip('/')}"
    return storage.rootdirectory


def http_secret(config: Config, driver: StorageDriver) -> bytes:
    """`http.secret`, else one generated once and kept in storage so restarts keep uploads valid."""
    if config.http.secret:
        return config.http.secret.encode()
    try:
        return driver.get_content(paths.HTTP_SECRET)
    except PathNotFound:
        secret = secrets.token_hex(32).encode()
        driver.put_content(paths.HTTP_SECRET, secret)
        log.info("http.secret is not set: generated one and stored it under {path}", path=paths.HTTP_SECRET)
        return secret


def split_addr(addr: str) -> tuple[str, int]:
    """`:5000`, `127.0.0.1:5000`, `[::1]:5000` -> (interface, port); empty means every address."""
    host, _, port = addr.rpartition(":")
    return host.strip("[]"), int(port)


def base_url_factory(config: Config, scheme: str):
    """Where `Location` headers point: `http.host`, or the Host the client used."""
    if config.http.relativeurls:
        return lambda request: ""
    if config.http.host:
        fixed = config.http.host.rstrip("/")
        return lambda request: fixed

    def from_request(request: Request) -> str:
        host = request.getHeader("host") or ""
        proto = request.getHeader("x-forwarded-proto") or scheme
        return f"{proto}://{host}" if host else ""

    return from_request


def open_registry(config: Config, metrics: Metrics | None = None,
                  role: WorkerRole = WorkerRole()) -> Registry:
    """The registry over the configured storage; `readonly.enabled: true` switches it on for all.
    With `metrics`, every storage call is timed; with workers, they share the read-only switch."""
    driver = open_driver(config)
    limits = config.appliance.limits
    if metrics is not None:
        driver = TimedDriver(driver, metrics)
    registry = Registry.open(
        driver,
        delete_enabled=config.storage.delete_enabled,
        max_manifest_bytes=config.appliance.max_manifest_bytes,
        gc_grace=config.appliance.gc_grace,
        purge_age=config.storage.uploadpurging.age,
        redirect=not config.storage.redirect_disable,
        blob_cache=config.storage.blobdescriptor == "inmemory",
        upload_limits=UploadLimits(driver, per_repository=limits.maxrepositoryuploads,
                                   total=limits.maxuploads, idle=limits.uploadidle),
    )
    if role.shared_dir:
        registry.readonly.share_on_host(os.path.join(role.shared_dir, "readonly.json"))
    if config.storage.readonly:
        registry.readonly.set(True)
    elif registry.readonly.refresh():
        log.warn("the registry is read-only (switched on at runtime and kept in storage)")
    return registry


def storage_pool(config: Config) -> ThreadPool:
    return ThreadPool(minthreads=2, maxthreads=max(4, min(config.storage.maxthreads, 64)), name="storage")


def open_authenticator(config: Config, limiter: LoginLimiter) -> HtpasswdAuthenticator | None:
    htpasswd = config.auth.htpasswd
    return HtpasswdAuthenticator(htpasswd.path, htpasswd.realm, limiter=limiter) if htpasswd else None


def build_site(config: Config, registry: Registry, pool: ThreadPool, reactor: Any, admin: AdminApi,
               authenticator: HtpasswdAuthenticator | None,
               observed: Observability | None = None, gate: Gate | None = None,
               limiter: LoginLimiter | None = None) -> RegistrySite:
    """The main port: `/v2/`, and `/admin/` for the htpasswd users in `appliance.admin.users`."""
    driver = registry.driver
    scheme = "https" if config.http.tls else "http"
    api = V2Api(registry, pool, reactor, UploadStateSigner(http_secret(config, driver)),
                base_url_factory(config, scheme))
    admins = config.appliance.admin_users
    mounted = AdminResource(admin, authenticator, admins) if authenticator and admins else None
    metrics = observed.metrics if observed is not None else None
    if observed is not None:
        api.notifier = admin.notifier = observed.notifier
    if config.proxy is not None:
        from appliance.proxy import open_proxy

        proxy = config.proxy
        api.proxy = open_proxy(registry, api._run, reactor, remoteurl=proxy.remoteurl,
                               username=proxy.username, password=proxy.password, ttl=proxy.ttl,
                               prefix=proxy.prefix,
                               observe=metrics.observe_proxy if metrics is not None else None)
    gate = gate or authsetup.build_gate(config, authenticator)
    resource = RegistryResource(api, authenticator, config.http.headers, mounted,
                                health=observed and observed.health, metrics=metrics, gate=gate,
                                token_endpoint=authsetup.token_endpoint(config, gate, api._run, limiter))
    limits = config.appliance.limits
    return RegistrySite(resource, driver.spool_directory(), config.appliance.max_body_bytes, metrics,
                        max_manifest_bytes=config.appliance.max_manifest_bytes,
                        max_header_bytes=limits.maxheadersize, max_headers=limits.maxheaders,
                        idle_timeout=limits.idletimeout, header_timeout=limits.headertimeout,
                        reactor=reactor)


def server_tls(config: Config) -> ReloadableServerTLS | None:
    """The listener's TLS (SIGHUP reloads it), checked now so bad files fail at startup."""
    if config.http.tls is None:
        return None
    if config.appliance.autogenerate_certs and ensure_server_certs(Path(config.appliance.certs_dir)):
        log.info("generated a CA and server certificate in {dir}", dir=config.appliance.certs_dir)
    return ReloadableServerTLS(config.http.tls)


def server_endpoint(config: Config, reactor: Any, tls: ReloadableServerTLS | None) -> Any:
    if config.http.net == "unix":
        return endpoints.UNIXServerEndpoint(reactor, config.http.addr)
    interface, port = split_addr(config.http.addr)
    if not interface:
        interface = "::" if _has_ipv6() else "0.0.0.0"
    if tls is None:
        return endpoints.TCP6ServerEndpoint(reactor, port, interface=interface) if ":" in interface \
            else endpoints.TCP4ServerEndpoint(reactor, port, interface=interface)
    return endpoints.SSL4ServerEndpoint(reactor, port, tls, interface=interface)


def _has_ipv6() -> bool:
    import socket

    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::", 0))
        return True
    except OSError:
        return False


def background_failed(failure: Any) -> None:
    """An unreachable backend is one line (the read-only refresh would log it every second);
    anything else a traceback."""
    if failure.check(StorageUnavailable):
        log.warn("background task: {error}", error=failure.value)
    else:
        log.failure("background task failed", failure)


def schedule_maintenance(config: Config, registry: Registry, pool: ThreadPool, reactor: Any) -> None:
    """Re-read the read-only flag every second; purge old uploads every interval (and the
    pull-through cache's abandoned partial fetches then, and at start)."""
    def in_pool(function: Any, *args: Any) -> Deferred[Any]:
        return deferToThreadPool(reactor, pool, function, *args).addErrback(background_failed)

    readonly = LoopingCall(in_pool, registry.readonly.refresh)
    readonly.clock = reactor
    readonly.start(READONLY_REFRESH, now=False)
    purging = config.storage.uploadpurging
    in_pool(registry.maintenance.purge_fetches, purging.dryrun)
    if purging.enabled:
        purge = LoopingCall(in_pool, registry.maintenance.purge_uploads, purging.dryrun)
        purge.clock = reactor
        purge.start(purging.interval, now=False)


async def serve(config: Config, reactor: Any, inherited: Sequence[int] = (),
                role: WorkerRole = WorkerRole()) -> None:
    """Listen and serve until the reactor stops (SIGTERM/SIGINT).

    `inherited`: sockets passed by systemd (`systemd.listen_fds()`), served instead of `http.addr`.
    `role`: which worker of `serve --workers N` this is, and where the workers share state.
    """
    tls = server_tls(config)
    endpoint = server_endpoint(config, reactor, tls)
    metrics = new_metrics(config)
    registry = open_registry(config, metrics, role)
    pool = storage_pool(config)
    admin = AdminApi(registry, pool, reactor)
    admin.mirrored = config.proxy.prefix if config.proxy is not None else None
    limiter = LoginLimiter(path=role.logins_path)
    authenticator = open_authenticator(config, limiter)
    observed = Observability.build(config, reactor, registry.driver, pool, metrics, role)
    gate = authsetup.build_gate(config, authenticator)
    await authsetup.start_etcd(config, gate, reactor)
    site = build_site(config, registry, pool, reactor, admin, authenticator, observed, gate,
                      limiter)
    socket_path = config.appliance.admin_socket
    if socket_path and listen_admin(reactor, socket_path, RegistrySite(AdminResource(admin), None, 0)):
        log.info("admin API on unix:{path}", path=socket_path)
    pool.start()
    reactor.addSystemEventTrigger("after", "shutdown", pool.stop)
    schedule_maintenance(config, registry, pool, reactor)
    await observed.start(config, reactor, registry.maintenance)
    port = adopt_listening_socket(reactor, site, tls, inherited) or await endpoint.listen(site)
    address = port.getHost()
    scheme = "https" if config.http.tls else "http"
    where = f"unix:{config.http.addr}" if config.http.net == "unix" else f"{scheme}://{address.host}:{address.port}"
    log.info("registry-appliance listening on {where} (storage {driver} at {root}, pid {pid})",
             where=where, driver=registry.driver.name, root=describe_storage(config), pid=os.getpid())
    for warning in config.warnings:
        log.warn("{warning}", warning=warning)
    if config.http.tls is None:
        log.warn("http.tls is not configured: serving plain HTTP; docker will need insecure-registries")
    reloader = lifecycle.Reloader(config, registry, authenticator, tls)
    lifecycle.manage(reactor, port, site.connections, reloader, pool)
    stopped: Deferred[None] = Deferred()
    reactor.addSystemEventTrigger("before", "shutdown", lambda: stopped.callback(None) if not stopped.called else None)
    await stopped
