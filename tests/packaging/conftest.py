"""Fixtures for the packaging tests: certificates, a server config, and the built binary.

The real-docker fixtures come from the end-to-end suite, so the binary is checked with the
same dockerd the other end-to-end tests use.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import tools
from tests.e2e.conftest import credentials, docker, dockerd, e2e_tmp  # noqa: F401 (fixtures)
from tests.server import base_config

from .harness import build_binary


@pytest.fixture(scope="session")
def frozen_binary() -> Path:
    """dist/registry-appliance, built once per session (skipped when the sources are unchanged)."""
    return build_binary()


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tools.CertSet:
    """A CA and a server certificate for localhost, 127.0.0.1 and ::1."""
    return tools.make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A short scratch directory (the admin socket's path must stay below 108 bytes)."""
    path = tools.scratch_dir("pkg")
    yield path
    tools.remove_tree(path)


@pytest.fixture
def tls_config(workdir: Path, certs: tools.CertSet) -> dict[str, Any]:
    """A config serving TLS on a free loopback port, with data and admin socket in workdir."""
    config = base_config(workdir)
    config["http"]["tls"] = {"certificate": str(certs.server_cert), "key": str(certs.server_key)}
    config["appliance"] = {"admin": {"socket": str(workdir / "admin.sock")}}
    return config
