"""Fixtures shared by every test package: real backends on loopback, started once per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.seaweedfs import SeaweedFS
from tests.swift_server import SwiftAllInOne


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """One SeaweedFS S3 gateway for the session; tests use their own bucket or rootdirectory."""
    server = SeaweedFS(tmp_path_factory.mktemp("seaweedfs")).start()
    try:
        yield server
    finally:
        server.stop(grace=1.0)  # its data is thrown away: no need to wait for a clean stop


@pytest.fixture(scope="session")
def s3_bucket(seaweedfs: SeaweedFS) -> str:
    """A bucket for this test run; tests keep apart by `rootdirectory`."""
    return seaweedfs.create_bucket("appliance")


@pytest.fixture(scope="session")
def swift_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwiftAllInOne]:
    """One Swift all-in-one (tempauth) for the session; tests use containers of their own."""
    server = SwiftAllInOne(tmp_path_factory.mktemp("swift")).start()
    try:
        yield server
    finally:
        server.stop(grace=2.0)  # its data is thrown away: no need to wait for a clean stop
