"""Fixtures for the end-to-end tests: a real dockerd, isolated skopeo/podman/buildah, a registry.

The registry under test is pluggable.  ``E2E_REGISTRY`` names the factory in
``REGISTRY_FACTORIES`` (default ``distribution``: CNCF Distribution 2.8.2, the reference).
Every factory gets a :class:`RegistrySpec` and returns a context manager yielding a
:class:`RunningRegistry`; the tests only use the RunningRegistry attributes.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import pytest

from . import tools


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


# ---------------------------------------------------------------------------------------------
# APPLIANCE FACTORY GOES HERE -- to be written with the server; not implemented yet.
#
#   @contextlib.contextmanager
#   def appliance_registry(spec: RegistrySpec) -> Iterator[RunningRegistry]:
#       """``registry-appliance serve CONFIG`` (``.venv/bin/registry-appliance``).
#
#       Writes CONFIG into spec.workdir: listen on 127.0.0.1:<tools.free_port()>, TLS from
#       spec.cert_path/spec.key_path, htpasswd auth from spec.htpasswd_path, deletes enabled,
#       filesystem storage rooted at spec.root (same layout as Distribution).  Starts it with
#       tools.spawn() (log in spec.workdir), waits with tools.wait_for() until
#       GET https://127.0.0.1:PORT/v2/ (verify=spec.ca_path) answers 401, yields
#       RunningRegistry(host_port, url, spec.ca_path, spec.user, spec.password, spec.root,
#       log_path), and finally tools.stop_process(proc).
#       """
#
# then add it below as "appliance" and run:  E2E_REGISTRY=appliance pytest tests/e2e -m e2e
# ---------------------------------------------------------------------------------------------

REGISTRY_FACTORIES: dict[str, RegistryFactory] = {
    "distribution": distribution_registry,
}


def _selected_factory() -> RegistryFactory:
    name = os.environ.get("E2E_REGISTRY", "distribution")
    try:
        return REGISTRY_FACTORIES[name]
    except KeyError:
        raise pytest.UsageError(
            f"E2E_REGISTRY={name!r}; known registries: {', '.join(REGISTRY_FACTORIES)}"
        ) from None


# --------------------------------------------------------------------------------- plumbing


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """Remember each phase's report on the item so fixtures can dump logs on failure."""
    report = yield
    setattr(item, f"e2e_report_{report.when}", report)
    return report


def _failed(request: pytest.FixtureRequest) -> bool:
    node = request.node
    return any(
        getattr(getattr(node, f"e2e_report_{when}", None), "failed", False)
        for when in ("setup", "call")
    )


def _require(*commands: str) -> None:
    missing = [c for c in commands if shutil.which(c) is None and not os.path.exists(c)]
    if missing:
        pytest.fail(f"e2e prerequisites missing: {', '.join(missing)} (apt-get install them)")


@pytest.fixture(scope="session")
def e2e_tmp() -> Iterator[Path]:
    """A short session directory under /tmp (unix socket paths must stay short)."""
    path = Path(tempfile.mkdtemp(prefix="e2e-", dir="/tmp"))
    try:
        yield path
    finally:
        tools.remove_tree(path)


@pytest.fixture(scope="session")
def tls_files(e2e_tmp: Path) -> tools.CertPaths:
    """A CA and a server certificate for localhost, 127.0.0.1 and ::1."""
    return tools.make_certs(e2e_tmp / "tls")


@pytest.fixture(scope="session")
def credentials(e2e_tmp: Path) -> tuple[str, str, Path]:
    """(user, password, htpasswd file) for the registry's Basic auth."""
    _require("htpasswd")
    user, password = "e2e-user", "pw-" + secrets.token_hex(8)
    path = tools.write_htpasswd(e2e_tmp / "htpasswd", {user: password})
    return user, password, path


@pytest.fixture
def registry(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    tls_files: tools.CertPaths,
    credentials: tuple[str, str, Path],
) -> Iterator[RunningRegistry]:
    """A fresh, empty registry under test (TLS + htpasswd) for one test."""
    factory = _selected_factory()
    user, password, htpasswd = credentials
    spec = RegistrySpec(
        workdir=tmp_path / "registry",
        root=tmp_path / "registry-data",
        cert_path=tls_files.server_cert,
        key_path=tls_files.server_key,
        ca_path=tls_files.ca_cert,
        htpasswd_path=htpasswd,
        user=user,
        password=password,
    )
    spec.workdir.mkdir()
    with factory(spec) as running:
        yield running
        if _failed(request) and running.log_path and running.log_path.exists():
            print(f"--- registry log {running.log_path} (tail) ---")
            print("\n".join(running.log_path.read_text(errors="replace").splitlines()[-40:]))


@pytest.fixture(scope="session")
def dockerd() -> Iterator[tools.Dockerd]:
    """One real dockerd (vfs) for the whole session; it is slow to start."""
    _require(tools.DOCKERD, tools.DOCKER_CLI)
    daemon = tools.Dockerd()
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture
def docker(
    request: pytest.FixtureRequest, dockerd: tools.Dockerd, tmp_path: Path
) -> Iterator[tools.DockerClient]:
    """The docker CLI on the session daemon with a DOCKER_CONFIG (logins) of its own."""
    client = dockerd.client(tmp_path / "docker-config")
    yield client
    if _failed(request):
        print(f"--- dockerd log {dockerd.log_path} (tail) ---")
        print(dockerd.log_tail(40))


@pytest.fixture
def ctools(registry: RunningRegistry) -> Iterator[tools.ContainerTools]:
    """skopeo/podman/buildah with private vfs storage, config and auth, trusting the registry CA."""
    _require("skopeo", "podman", "buildah")
    # Short path under /tmp (not tmp_path): podman's runroot holds unix sockets and locks.
    base = tempfile.mkdtemp(prefix="e2e-ct-", dir="/tmp")
    env = tools.ContainerTools(base, registry.ca_path)
    try:
        yield env
    finally:
        env.cleanup()
