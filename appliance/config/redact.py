"""The effective config as YAML in Distribution's key names, safe to show and to log."""

from __future__ import annotations

import dataclasses
from urllib.parse import urlsplit, urlunsplit

import yaml

from . import authbuild
from .model import Config, LimitsConfig

REDACTED = "<redacted>"
# Matched against key names without "-" and "_", so header names count too (`X-Api-Key`).
_SECRET_WORDS = ("secret", "password", "passwd", "accesskey", "privatekey", "credentials",
                 "authorization", "token", "apikey", "cookie")


def redacted_yaml(config: Config) -> str:
    """Secrets are replaced by "<redacted>"; empty ones stay empty, showing they are unset."""
    return yaml.safe_dump(_redact(_tree(config)), sort_keys=False)


def _tree(config: Config) -> dict[str, object]:
    storage, http, purging = config.storage, config.http, config.storage.uploadpurging
    driver = ({"rootdirectory": storage.rootdirectory, "maxthreads": storage.maxthreads}
              if storage.driver == "filesystem" else {})
    for section in (storage.s3, storage.oss, storage.swift):
        if section is not None:
            driver = {key: list(value) if isinstance(value, tuple) else value
                      for key, value in dataclasses.asdict(section).items()}
    tls = http.tls and {"certificate": http.tls.certificate, "key": http.tls.key,
                        "clientcas": list(http.tls.clientcas), "minimumtls": http.tls.minimumtls}
    return {
        "version": config.version,
        "log": {"level": config.log.level, "formatter": config.log.formatter,
                "fields": dict(config.log.fields)},
        "storage": {
            storage.driver: driver,
            "delete": {"enabled": storage.delete_enabled},
            "redirect": {"disable": storage.redirect_disable},
            **({"cache": {"blobdescriptor": storage.blobdescriptor}} if storage.blobdescriptor else {}),
            "maintenance": {
                "uploadpurging": {"enabled": purging.enabled, "age": _duration(purging.age),
                                  "interval": _duration(purging.interval),
                                  "dryrun": purging.dryrun},
                "readonly": {"enabled": storage.readonly},
            },
        },
        "http": {"addr": http.addr, "net": http.net, "host": http.host, "secret": http.secret,
                 "relativeurls": http.relativeurls,
                 "headers": {name: list(values) for name, values in http.headers.items()},
                 **({"tls": tls} if tls else {}),
                 **({"debug": _debug(config)} if http.debug.addr else {})},
        "auth": authbuild.auth_tree(config),
        "appliance": {
            "certs": {"dir": config.appliance.certs_dir,
                      "autogenerate": config.appliance.autogenerate_certs},
            "limits": {"maxbodysize": config.appliance.max_body_bytes,
                       "maxmanifestsize": config.appliance.max_manifest_bytes,
                       **_limits(config.appliance.limits)},
            "admin": {"socket": config.appliance.admin_socket, "users": list(config.appliance.admin_users)},
            "gc": {"grace": _duration(config.appliance.gc_grace)},
            "shutdown": {"timeout": _duration(config.appliance.shutdown_timeout)},
            **({"spooldir": config.appliance.spool_dir} if config.appliance.spool_dir else {}),
            "notifications": {"statedir": config.appliance.notifications.statedir,
                              "maxqueue": config.appliance.notifications.maxqueue,
                              "mediatype": config.appliance.notifications.mediatype},
            **authbuild.appliance_auth_tree(config, _duration),
            **({"proxy": {"prefix": config.appliance.proxy_prefix}}
               if config.appliance.proxy_prefix else {}),
        },
        **_notifications(config),
        **_health(config),
        **_proxy(config),
    }


def _proxy(config: Config) -> dict[str, object]:
    """`proxy`; its password is redacted by key name like every other secret."""
    proxy = config.proxy
    if proxy is None:
        return {}
    return {"proxy": {"remoteurl": proxy.remoteurl, "username": proxy.username,
                      "password": proxy.password, "ttl": _duration(proxy.ttl)}}


def _debug(config: Config) -> dict[str, object]:
    debug = config.http.debug
    return {"addr": debug.addr, "prometheus": {"enabled": debug.prometheus.enabled,
                                               "path": debug.prometheus.path}}


def _notifications(config: Config) -> dict[str, object]:
    notifications = config.notifications
    if not notifications.endpoints:
        return {}
    return {"notifications": {
        "events": {"includereferences": notifications.include_references},
        "endpoints": [{
            "name": e.name, "disabled": e.disabled, "url": e.url,
            "headers": {name: list(values) for name, values in e.headers.items()},
            "timeout": _duration(e.timeout), "threshold": e.threshold,
            "backoff": _duration(e.backoff),
            "ignore": {"mediatypes": list(e.ignored_media_types),
                       "actions": list(e.ignored_actions)},
        } for e in notifications.endpoints],
    }}


def _health(config: Config) -> dict[str, object]:
    health = config.health
    tree: dict[str, object] = {}
    if health.storagedriver_enabled:
        tree["storagedriver"] = {"enabled": True,
                                 "interval": _duration(health.storagedriver_interval),
                                 "threshold": health.storagedriver_threshold}
    targets = {"http": "uri", "tcp": "addr", "file": "file"}
    for check in health.checks:
        item: dict[str, object] = {targets[check.kind]: check.target,
                                   "interval": _duration(check.interval)}
        if check.kind != "file":
            item |= {"threshold": check.threshold, "timeout": _duration(check.timeout)}
        if check.kind == "http":
            item |= {"statuscode": check.statuscode,
                     "headers": {name: list(v) for name, v in check.headers.items()}}
        tree.setdefault(check.kind, []).append(item)  # type: ignore[union-attr]
    return {"health": tree} if tree else {}


def _limits(limits: LimitsConfig) -> dict[str, object]:
    """Counts and sizes as numbers, timeouts as durations, so `config check` output loads back."""
    return {field.name: _duration(value) if isinstance(value, float) else value
            for field in dataclasses.fields(limits) for value in [getattr(limits, field.name)]}


def _duration(seconds: float) -> str:
    """The largest whole Go unit, e.g. "168h"; sub-millisecond parts are rounded off."""
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{round(seconds * 1000)}ms"


def _redact(node: object, key: str = "") -> object:
    """By key name, so secrets of sections added later are covered; PEM private keys too."""
    if isinstance(node, dict):
        return {k: _redact(v, str(k)) for k, v in node.items()}
    if isinstance(node, list):
        return [_redact(v, key) for v in node]
    name = key.lower().replace("-", "").replace("_", "")
    secret = any(word in name for word in _SECRET_WORDS)
    if isinstance(node, str) and node and (secret or "PRIVATE KEY-----" in node):
        return REDACTED
    return redacted_url(node) if isinstance(node, str) else node


def redacted_url(text: str) -> str:
    """A URL's password (`https://user:password@host/`) replaced by "<redacted>"; anything else
    as it is. For every place that shows a configured URL: dumps, logs, the admin API."""
    if "://" not in text or "@" not in text:
        return text
    try:
        parts = urlsplit(text)
        password = parts.password
    except ValueError:
        return text
    if password is None:
        return text
    userinfo, _, host = parts.netloc.rpartition("@")
    netloc = f"{userinfo.partition(':')[0]}:{REDACTED}@{host}"
    return urlunsplit(parts._replace(netloc=netloc))
