"""The effective config as YAML in Distribution's key names, safe to show and to log."""

from __future__ import annotations

import yaml

from .model import Config

REDACTED = "<redacted>"
_SECRET_WORDS = ("secret", "password", "passwd", "accesskey", "privatekey", "credentials")


def redacted_yaml(config: Config) -> str:
    """Secrets are replaced by "<redacted>"; empty ones stay empty, showing they are unset."""
    return yaml.safe_dump(_redact(_tree(config)), sort_keys=False)


def _tree(config: Config) -> dict[str, object]:
    storage, http, purging = config.storage, config.http, config.storage.uploadpurging
    driver = ({"rootdirectory": storage.rootdirectory, "maxthreads": storage.maxthreads}
              if storage.driver == "filesystem" else {})
    tls = http.tls and {"certificate": http.tls.certificate, "key": http.tls.key,
                        "clientcas": list(http.tls.clientcas), "minimumtls": http.tls.minimumtls}
    htpasswd = config.auth.htpasswd
    return {
        "version": config.version,
        "log": {"level": config.log.level, "formatter": config.log.formatter,
                "fields": dict(config.log.fields)},
        "storage": {
            storage.driver: driver,
            "delete": {"enabled": storage.delete_enabled},
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
                 **({"tls": tls} if tls else {})},
        "auth": {"htpasswd": {"realm": htpasswd.realm, "path": htpasswd.path}} if htpasswd else {},
        "appliance": {
            "certs": {"dir": config.appliance.certs_dir,
                      "autogenerate": config.appliance.autogenerate_certs},
            "limits": {"maxbodysize": config.appliance.max_body_bytes,
                       "maxmanifestsize": config.appliance.max_manifest_bytes},
            "admin": {"socket": config.appliance.admin_socket, "users": list(config.appliance.admin_users)},
            "gc": {"grace": _duration(config.appliance.gc_grace)},
            "shutdown": {"timeout": _duration(config.appliance.shutdown_timeout)},
        },
    }


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
    secret = any(word in key.lower() for word in _SECRET_WORDS)
    if isinstance(node, str) and node and (secret or "PRIVATE KEY-----" in node):
        return REDACTED
    return node
