"""The validated configuration: typed, frozen, with Distribution's defaults."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

EMBEDDED = "embedded defaults"


def _nosniff() -> Mapping[str, tuple[str, ...]]:
    """Distribution's headers when `http.headers` is not given."""
    return MappingProxyType({"X-Content-Type-Options": ("nosniff",)})


@dataclass(frozen=True)
class LogConfig:
    level: str = "info"
    formatter: str = "text"
    fields: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class UploadPurgingConfig:
    """Abandoned uploads older than `age` are removed every `interval` (both in seconds)."""

    enabled: bool = True
    age: float = 168 * 3600.0
    interval: float = 24 * 3600.0
    dryrun: bool = False


@dataclass(frozen=True)
class StorageConfig:
    driver: str
    rootdirectory: str
    delete_enabled: bool = False
    readonly: bool = False
    uploadpurging: UploadPurgingConfig = field(default_factory=UploadPurgingConfig)
    maxthreads: int = 100


@dataclass(frozen=True)
class TLSConfig:
    certificate: str
    key: str
    clientcas: tuple[str, ...] = ()
    minimumtls: str = "tls1.2"


@dataclass(frozen=True)
class HTTPConfig:
    addr: str = ":5000"
    net: str = "tcp"
    host: str = ""
    secret: str = ""
    relativeurls: bool = False
    headers: Mapping[str, tuple[str, ...]] = field(default_factory=_nosniff)
    tls: TLSConfig | None = None


@dataclass(frozen=True)
class HtpasswdConfig:
    realm: str
    path: str


@dataclass(frozen=True)
class AuthConfig:
    htpasswd: HtpasswdConfig | None = None


@dataclass(frozen=True)
class ApplianceConfig:
    """Our own settings, under `appliance:`; Distribution has no equivalent."""

    certs_dir: str
    autogenerate_certs: bool
    max_body_bytes: int = 0
    max_manifest_bytes: int = 4 * 1024 * 1024
    admin_socket: str = ""
    admin_users: tuple[str, ...] = ()
    gc_grace: float = 3600.0
    shutdown_timeout: float = 30.0


@dataclass(frozen=True)
class Config:
    """The effective config. `ignored` lists input keys we do not implement, so they can be
    shown to the admin rather than silently dropped."""

    version: str
    log: LogConfig
    storage: StorageConfig
    http: HTTPConfig
    auth: AuthConfig
    appliance: ApplianceConfig
    source: str
    ignored: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
