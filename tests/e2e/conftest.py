"""Fixtures for the end-to-end tests: a real dockerd, isolated skopeo/podman/buildah, a registry.

The registry under test is pluggable: ``E2E_REGISTRY`` names a factory in
``registries.REGISTRY_FACTORIES`` (default ``appliance``; ``distribution`` is CNCF Distribution 2.8.2, the
reference).  The appliance's factory goes there too; see registries.py.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from . import tools
from .registries import REGISTRY_FACTORIES, RegistryFactory, RegistrySpec, RunningRegistry


def _selected_factory() -> RegistryFactory:
    name = os.environ.get("E2E_REGISTRY", "appliance")
    try:
        return REGISTRY_FACTORIES[name]
    except KeyError:
        raise pytest.UsageError(
            f"E2E_REGISTRY={name!r}; known registries: {', '.join(REGISTRY_FACTORIES)}"
        ) from None


# --------------------------------------------------------------------------------- plumbing


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
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
    """A short session directory under /tmp (unix socket paths must stay short).

    Also removes scratch directories left behind by a killed earlier run.
    """
    tools.sweep_stale_scratch()
    path = tools.scratch_dir("session")
    try:
        yield path
    finally:
        tools.remove_tree(path)


@pytest.fixture(scope="session")
def tls_files(e2e_tmp: Path) -> tools.CertSet:
    """A CA and a server certificate for localhost, 127.0.0.1 and ::1 (appliance init_certs)."""
    return tools.make_certs(e2e_tmp / "tls")


@pytest.fixture(scope="session")
def credentials(e2e_tmp: Path) -> tuple[str, str, Path]:
    """(user, password, htpasswd file) for the registry's Basic auth."""
    _require("htpasswd")
    user, password = "e2e-user", "pw-" + secrets.token_hex(8)
    path = tools.write_htpasswd(e2e_tmp / "htpasswd", {user: password})
    return user, password, path


@contextlib.contextmanager
def _registry_for(request: pytest.FixtureRequest, tmp_path: Path, tls_files: tools.CertSet,
                  credentials: tuple[str, str, Path], storage: str) -> Iterator[RunningRegistry]:
    factory = _selected_factory()
    user, password, htpasswd = credentials
    s3 = None
    if storage == "s3":
        seaweedfs = request.getfixturevalue("seaweedfs")
        bucket = request.getfixturevalue("s3_bucket")
        s3 = seaweedfs.storage_config(bucket, f"/e2e/{secrets.token_hex(6)}")
    swift = None
    if storage == "swift":
        server = request.getfixturevalue("swift_server")
        swift = server.storage_config(server.new_container("e2e"), "/e2e")
    spec = RegistrySpec(
        workdir=tmp_path / "registry",
        root=tmp_path / "registry-data",
        cert_path=tls_files.server_cert,
        key_path=tls_files.server_key,
        ca_path=tls_files.ca_cert,
        htpasswd_path=htpasswd,
        user=user,
        password=password,
        s3=s3,
        swift=swift,
    )
    spec.workdir.mkdir()
    with factory(spec) as running:
        yield running
        if _failed(request) and running.log_path and running.log_path.exists():
            print(f"--- registry log {running.log_path} (tail) ---")
            print("\n".join(running.log_path.read_text(errors="replace").splitlines()[-40:]))


@pytest.fixture(params=["filesystem", "s3"])
def registry(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    tls_files: tools.CertSet,
    credentials: tuple[str, str, Path],
) -> Iterator[RunningRegistry]:
    """A fresh, empty registry under test (TLS + htpasswd) for one test, once on the
    filesystem and once on S3 (the session's SeaweedFS, a rootdirectory of its own)."""
    with _registry_for(request, tmp_path, tls_files, credentials, request.param) as running:
        yield running


@pytest.fixture
def s3_registry(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    tls_files: tools.CertSet,
    credentials: tuple[str, str, Path],
) -> Iterator[RunningRegistry]:
    """The registry under test on S3 only, for what only object stores do (redirects)."""
    with _registry_for(request, tmp_path, tls_files, credentials, "s3") as running:
        yield running


@pytest.fixture
def swift_registry(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    tls_files: tools.CertSet,
    credentials: tuple[str, str, Path],
) -> Iterator[RunningRegistry]:
    """The registry under test on Swift (the session's all-in-one, a container of its own)."""
    with _registry_for(request, tmp_path, tls_files, credentials, "swift") as running:
        yield running


@pytest.fixture(scope="session")
def dockerd(e2e_tmp: Path) -> Iterator[tools.Dockerd]:
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
def ctools(tls_files: tools.CertSet) -> Iterator[tools.ContainerTools]:
    """skopeo/podman/buildah with private vfs storage, config and auth, trusting the registry CA
    (the CA every registry fixture's certificate comes from)."""
    _require("skopeo", "podman", "buildah")
    # Short path under /tmp (not tmp_path): podman's runroot holds unix sockets and locks.
    env = tools.ContainerTools(tools.scratch_dir("ct"), tls_files.ca_cert)
    try:
        yield env
    finally:
        env.cleanup()
