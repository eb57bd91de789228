"""The registry under test, behind one small interface, so the server can be swapped.

A *registry factory* takes a :class:`RegistrySpec` and returns a context manager yielding a
:class:`RunningRegistry`.  ``E2E_REGISTRY`` picks one from ``REGISTRY_FACTORIES`` (default
``appliance``, ours; ``distribution`` runs the same tests against Distribution 2.8.2).  The tests see only RunningRegistry.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.server import ApplianceServer, base_config
from tests.swift_server import swift_object

from . import tools

__all__ = [
    "REGISTRY_FACTORIES",
    "RegistryFactory",
    "RegistrySpec",
    "RunningRegistry",
    "appliance_registry",
    "distribution_registry",
]


@dataclass(frozen=True)
class RegistrySpec:
    """What a registry factory must serve: TLS with these files, Basic auth from htpasswd."""

    workdir: Path  # scratch directory for the server's config file and log
    root: Path  # filesystem storage root (Distribution's ``rootdirectory``)
    cert_path: Path  # PEM server certificate (SANs localhost, 127.0.0.1, ::1)
    key_path: Path  # PEM private key of cert_path
    ca_path: Path  # PEM CA that signed cert_path
    htpasswd_path: Path  # bcrypt htpasswd file holding user
    user: str
    password: str
    s3: dict[str, Any] | None = None  # a `storage.s3` section: store there instead of root
    swift: dict[str, Any] | None = None  # a `storage.swift` section: store there instead

    def running(self, host_port: str, url: str, log_path: Path, admin_socket: str | None = None
                ) -> RunningRegistry:
        """What the tests see of a server started for this spec."""
        return RunningRegistry(host_port=host_port, url=url, ca_path=self.ca_path, user=self.user,
                               password=self.password, root=self.root, log_path=log_path,
                               admin_socket=admin_socket, s3=self.s3, swift=self.swift)


@dataclass(frozen=True)
class RunningRegistry:
    """A registry serving HTTPS with Basic auth on loopback, as the tests see it."""

    host_port: str  # e.g. "127.0.0.1:41234": the reference prefix for clients
    url: str  # e.g. "https://127.0.0.1:41234"
    ca_path: Path
    user: str
    password: str
    root: Path  # filesystem data directory, in Distribution's on-disk layout
    log_path: Path | None = None
    admin_socket: str | None = None  # ours only: the admin API's UNIX socket
    s3: dict[str, Any] | None = None  # the `storage.s3` section when data is in a bucket
    swift: dict[str, Any] | None = None  # the `storage.swift` section when data is in Swift

    def read_file(self, relative: str) -> bytes:
        """A stored file by its path in Distribution's layout (`docker/registry/v2/...`),
        from the filesystem root or from the bucket."""
        if self.swift is not None:
            found = swift_object(self.swift, relative)
            if found is None:
                raise FileNotFoundError(relative)
            return found
        if self.s3 is None:
            return (self.root / relative).read_bytes()
        return s3_client(self.s3).get_object(
            Bucket=self.s3["bucket"], Key=s3_key(self.s3, relative))["Body"].read()

    def file_exists(self, relative: str) -> bool:
        if self.swift is not None:
            return swift_object(self.swift, relative) is not None
        if self.s3 is None:
            return (self.root / relative).exists()
        listing = s3_client(self.s3).list_objects_v2(Bucket=self.s3["bucket"], Prefix=s3_key(self.s3, relative))
        return any(entry["Key"] == s3_key(self.s3, relative) for entry in listing.get("Contents") or [])

    @property
    def creds(self) -> str:
        """``user:password`` for ``--creds``/``--src-creds``/``--dest-creds``."""
        return f"{self.user}:{self.password}"

    def ref(self, repository: str, tag_or_digest: str = "latest") -> str:
        """``host:port/repository:tag`` (or ``@digest`` when given a digest)."""
        sep = "@" if tag_or_digest.startswith("sha256:") else ":"
        return f"{self.host_port}/{repository}{sep}{tag_or_digest}"


def s3_client(section: dict[str, Any]) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=section["regionendpoint"], region_name=section["region"],
                        aws_access_key_id=section["accesskey"], aws_secret_access_key=section["secretkey"])


def s3_key(section: dict[str, Any], relative: str) -> str:
    """Distribution's key: rootdirectory + path, slashes trimmed."""
    return f"{section['rootdirectory'].strip('/')}/{relative.lstrip('/')}".lstrip("/")


RegistryFactory = Callable[[RegistrySpec], AbstractContextManager[RunningRegistry]]
"""A factory starts a registry for a spec, yields it running, and stops it on exit.

It must listen on a free 127.0.0.1 port with TLS (spec.cert_path/key_path), require
HTTP Basic auth against spec.htpasswd_path (401 with ``WWW-Authenticate: Basic realm=...``
for anonymous requests), allow deletes, store data under spec.root (or in the bucket of
spec.s3 when given), be ready (``GET /v2/``
answers) before yielding, and stop every process it started, by PID, even on error.
"""


@contextlib.contextmanager
def distribution_registry(spec: RegistrySpec) -> Iterator[RunningRegistry]:
    """CNCF Distribution 2.8.2 (Debian ``docker-registry``) on the filesystem or S3 driver."""
    server = tools.Distribution(
        spec.workdir,
        spec.root,
        tls=(spec.cert_path, spec.key_path),
        htpasswd=spec.htpasswd_path,
        ca_path=spec.ca_path,
        s3=spec.s3,
        swift=spec.swift,
    )
    server.start()
    try:
        yield spec.running(server.host_port, server.url, server.log_path)
    finally:
        server.stop()


@contextlib.contextmanager
def appliance_registry(spec: RegistrySpec) -> Iterator[RunningRegistry]:
    """registry-appliance (`python -m appliance.cli serve CONFIG`) on the filesystem or S3
    driver (S3 with its defaults: blob GETs redirect to presigned URLs)."""
    config = base_config(spec.workdir)
    config["storage"]["filesystem"]["rootdirectory"] = str(spec.root)
    if spec.s3 is not None:
        del config["storage"]["filesystem"]
        config["storage"]["s3"] = dict(spec.s3)
    if spec.swift is not None:
        del config["storage"]["filesystem"]
        config["storage"]["swift"] = dict(spec.swift)
    config["http"]["tls"] = {"certificate": str(spec.cert_path), "key": str(spec.key_path)}
    config["auth"] = {"htpasswd": {"realm": "registry-e2e", "path": str(spec.htpasswd_path)}}
    config["appliance"] = {"gc": {"grace": "1s"}}  # GC tests sweep what they have just pushed
    server = ApplianceServer(spec.workdir, config).start()
    try:
        yield spec.running(f"127.0.0.1:{server.port}", server.url, server.log_path, server.admin_socket)
    finally:
        server.stop()


REGISTRY_FACTORIES: dict[str, RegistryFactory] = {
    "appliance": appliance_registry,
    "distribution": distribution_registry,
}
