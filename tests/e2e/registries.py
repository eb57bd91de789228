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

from tests.server import ApplianceServer, base_config

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

    @property
    def creds(self) -> str:
        """``user:password`` for ``--creds``/``--src-creds``/``--dest-creds``."""
        return f"{self.user}:{self.password}"

    def ref(self, repository: str, tag_or_digest: str = "latest") -> str:
        """``host:port/repository:tag`` (or ``@digest`` when given a digest)."""
        sep = "@" if tag_or_digest.startswith("sha256:") else ":"
        return f"{self.host_port}/{repository}{sep}{tag_or_digest}"


RegistryFactory = Callable[[RegistrySpec], AbstractContextManager[RunningRegistry]]
"""A factory starts a registry for a spec, yields it running, and stops it on exit.

It must listen on a free 127.0.0.1 port with TLS (spec.cert_path/key_path), require
HTTP Basic auth against spec.htpasswd_path (401 with ``WWW-Authenticate: Basic realm=...``
for anonymous requests), allow deletes, store data under spec.root, be ready (``GET /v2/``
answers) before yielding, and stop every process it started, by PID, even on error.
"""


@contextlib.contextmanager
def distribution_registry(spec: RegistrySpec) -> Iterator[RunningRegistry]:
    """CNCF Distribution 2.8.2 (Debian ``docker-registry``) on the filesystem driver."""
    server = tools.Distribution(
        spec.workdir,
        spec.root,
        tls=(spec.cert_path, spec.key_path),
        htpasswd=spec.htpasswd_path,
        ca_path=spec.ca_path,
    )
    server.start()
    try:
        yield RunningRegistry(
            host_port=server.host_port,
            url=server.url,
            ca_path=spec.ca_path,
            user=spec.user,
            password=spec.password,
            root=spec.root,
            log_path=server.log_path,
        )
    finally:
        server.stop()


@contextlib.contextmanager
def appliance_registry(spec: RegistrySpec) -> Iterator[RunningRegistry]:
    """registry-appliance (`python -m appliance.cli serve CONFIG`) on the filesystem driver."""
    config = base_config(spec.workdir)
    config["storage"]["filesystem"]["rootdirectory"] = str(spec.root)
    config["http"]["tls"] = {"certificate": str(spec.cert_path), "key": str(spec.key_path)}
    config["auth"] = {"htpasswd": {"realm": "registry-e2e", "path": str(spec.htpasswd_path)}}
    server = ApplianceServer(spec.workdir, config).start()
    try:
        yield RunningRegistry(
            host_port=f"127.0.0.1:{server.port}",
            url=server.url,
            ca_path=spec.ca_path,
            user=spec.user,
            password=spec.password,
            root=spec.root,
            log_path=server.log_path,
        )
    finally:
        server.stop()


REGISTRY_FACTORIES: dict[str, RegistryFactory] = {
    "appliance": appliance_registry,
    "distribution": distribution_registry,
}
