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
class S3Config:
    """`storage.s3`, Distribution's keys and defaults. Empty keys mean boto3's credential chain;
    `forcepathstyle` None means path style exactly when `regionendpoint` is set (as 2.8)."""

    bucket: str
    region: str
    regionendpoint: str = ""
    accesskey: str = ""
    secretkey: str = ""
    sessiontoken: str = ""
    forcepathstyle: bool | None = None
    secure: bool = True
    skipverify: bool = False
    v4auth: bool = True
    chunksize: int = 10 << 20
    multipartcopychunksize: int = 32 << 20
    multipartcopymaxconcurrency: int = 100
    multipartcopythresholdsize: int = 32 << 20
    rootdirectory: str = ""
    encrypt: bool = False
    keyid: str = ""
    storageclass: str = "STANDARD"
    objectacl: str = "private"
    useragent: str = ""
    usedualstack: bool = False
    accelerate: bool = False


@dataclass(frozen=True)
class OSSConfig:
    """`storage.oss` (Alibaba Cloud), Distribution 2.8's keys; served through OSS's S3 API."""

    accesskeyid: str
    accesskeysecret: str
    region: str
    bucket: str
    endpoint: str = ""
    internal: bool = False
    encrypt: bool = False
    secure: bool = True
    chunksize: int = 10 << 20
    rootdirectory: str = ""


@dataclass(frozen=True)
class SwiftConfig:
    """`storage.swift`, Distribution 2.8's keys and defaults. `authversion` 0 means: from the
    URL (v3, v2, else v1); `tempurlmethods`/`tempurlcontainerkey` are used only when the
    cluster has no `/info` to tell."""

    authurl: str
    username: str
    password: str
    container: str
    authversion: int = 0
    tenant: str = ""
    tenantid: str = ""
    domain: str = ""
    domainid: str = ""
    tenantdomain: str = ""
    tenantdomainid: str = ""
    trustid: str = ""
    region: str = ""
    endpointtype: str = "public"
    insecureskipverify: bool = False
    chunksize: int = 20 << 20
    prefix: str = ""
    secretkey: str = ""
    accesskey: str = ""
    tempurlcontainerkey: bool = False
    tempurlmethods: tuple[str, ...] = ()


@dataclass(frozen=True)
class StorageConfig:
    """`redirect_disable`: `storage.redirect.disable`; `blobdescriptor`: `storage.cache.
    blobdescriptor` ("inmemory", or "" for none)."""

    driver: str
    rootdirectory: str
    delete_enabled: bool = False
    readonly: bool = False
    uploadpurging: UploadPurgingConfig = field(default_factory=UploadPurgingConfig)
    maxthreads: int = 100
    s3: S3Config | None = None
    oss: OSSConfig | None = None
    swift: SwiftConfig | None = None
    redirect_disable: bool = False
    blobdescriptor: str = ""


@dataclass(frozen=True)
class TLSConfig:
    certificate: str
    key: str
    clientcas: tuple[str, ...] = ()
    minimumtls: str = "tls1.2"


@dataclass(frozen=True)
class PrometheusConfig:
    enabled: bool = False
    path: str = "/metrics"


@dataclass(frozen=True)
class DebugConfig:
    """`http.debug`: a second, plain-HTTP listener for `/debug/health` and `/metrics`."""

    addr: str = ""
    prometheus: PrometheusConfig = field(default_factory=PrometheusConfig)


@dataclass(frozen=True)
class HTTPConfig:
    addr: str = ":5000"
    net: str = "tcp"
    host: str = ""
    secret: str = ""
    relativeurls: bool = False
    headers: Mapping[str, tuple[str, ...]] = field(default_factory=_nosniff)
    tls: TLSConfig | None = None
    debug: DebugConfig = field(default_factory=DebugConfig)


@dataclass(frozen=True)
class HtpasswdConfig:
    realm: str
    path: str


@dataclass(frozen=True)
class TokenConfig:
    """`auth.token`, as Distribution: bearer tokens from the token server at `realm`."""

    realm: str
    service: str
    issuer: str
    rootcertbundle: str = ""
    jwks: str = ""
    signingalgorithms: tuple[str, ...] = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512")
    autoredirect: bool = False


@dataclass(frozen=True)
class AuthConfig:
    htpasswd: HtpasswdConfig | None = None
    token: TokenConfig | None = None


@dataclass(frozen=True)
class TokenServerConfig:
    """`appliance.tokenserver`: the built-in token server at `/auth/token` on the main port.
    `htpasswd` is the users' file (key `path`, as `auth.htpasswd.path`)."""

    htpasswd: str
    key: str
    issuer: str
    lifetime: float = 300.0


@dataclass(frozen=True)
class AccessRuleConfig:
    repositories: tuple[str, ...]
    actions: tuple[str, ...]
    users: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class AccessConfig:
    """`appliance.access`: per-repository rules for htpasswd users and the token server."""

    rules: tuple[AccessRuleConfig, ...] = ()
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    anonymous: tuple[str, ...] = ()
    catalog: tuple[str, ...] = ("*",)


@dataclass(frozen=True)
class EtcdConfig:
    """`appliance.etcd`: LAIN's token auth settings, read from (and watched in) etcd's v2 API."""

    endpoints: tuple[str, ...]
    key: str = "/lain/config/auth/registry"
    optional: bool = False
    rootcertbundle: str = ""


@dataclass(frozen=True)
class EndpointConfig:
    """One `notifications.endpoints[]` entry; durations in seconds, Distribution's defaults."""

    name: str
    url: str
    headers: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    timeout: float = 1.0
    threshold: int = 10
    backoff: float = 1.0
    disabled: bool = False
    ignored_media_types: tuple[str, ...] = ()
    ignored_actions: tuple[str, ...] = ()


@dataclass(frozen=True)
class NotificationsConfig:
    endpoints: tuple[EndpointConfig, ...] = ()
    include_references: bool = False


@dataclass(frozen=True)
class HealthCheckConfig:
    """One `health.http[]`, `health.tcp[]` or `health.file[]` check; `target` is its uri,
    addr or file."""

    kind: str
    target: str
    interval: float = 10.0
    threshold: int = 0
    timeout: float = 10.0
    statuscode: int = 200
    headers: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class HealthConfig:
    storagedriver_enabled: bool = False
    storagedriver_interval: float = 10.0
    storagedriver_threshold: int = 0
    checks: tuple[HealthCheckConfig, ...] = ()


EVENTS_V1 = "application/vnd.docker.distribution.events.v1+json"
EVENTS_V2 = "application/vnd.docker.distribution.events.v2+json"


@dataclass(frozen=True)
class ApplianceNotificationsConfig:
    """`appliance.notifications`: where queued events wait, how many, and which envelope."""

    statedir: str
    maxqueue: int = 10000
    mediatype: str = EVENTS_V1


@dataclass(frozen=True)
class ProxyConfig:
    """`proxy`, as Distribution's pull-through cache: `remoteurl` is the upstream registry,
    `ttl` (seconds) how long a cached tag is served before it is checked upstream again.
    `prefix` is ours (`appliance.proxy.prefix`): only names under it are mirrored ("" = all)."""

    remoteurl: str
    username: str = ""
    password: str = ""
    ttl: float = 168 * 3600.0
    prefix: str = ""


@dataclass(frozen=True)
class LimitsConfig:
    """`appliance.limits` on connections and upload sessions (body and manifest sizes are
    `ApplianceConfig.max_body_bytes`/`max_manifest_bytes`). 0 means no limit.

    `idletimeout`: a connection that sends nothing for this long is closed; `headertimeout`:
    a request's line and headers must arrive within this long (slowloris). Upload sessions count
    against `maxuploads` (all repositories) and `maxrepositoryuploads` while they have had bytes
    or started within `uploadidle`; older ones still resume, and upload purging removes them."""

    maxheadersize: int = 64 * 1024
    maxheaders: int = 200
    idletimeout: float = 60.0
    headertimeout: float = 30.0
    maxuploads: int = 0
    maxrepositoryuploads: int = 1000
    uploadidle: float = 3600.0


@dataclass(frozen=True)
class ApplianceConfig:
    """Our own settings, under `appliance:`; Distribution has no equivalent."""

    certs_dir: str
    autogenerate_certs: bool
    max_body_bytes: int = 0
    max_manifest_bytes: int = 4 * 1024 * 1024
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    admin_socket: str = ""
    admin_users: tuple[str, ...] = ()
    gc_grace: float = 3600.0
    shutdown_timeout: float = 30.0
    spool_dir: str = ""
    tokenserver: TokenServerConfig | None = None
    access: AccessConfig | None = None
    etcd: EtcdConfig | None = None
    notifications: ApplianceNotificationsConfig = field(
        default_factory=lambda: ApplianceNotificationsConfig(""))
    proxy_prefix: str = ""


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
    notifications: NotificationsConfig = field(default_factory=NotificationsConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    proxy: ProxyConfig | None = None
    ignored: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
