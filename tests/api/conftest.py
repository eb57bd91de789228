"""One plain-HTTP server per module for API tests; they talk HTTP with `requests`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.server import ApplianceServer, base_config
from tests.api.client import V2Client


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApplianceServer]:
    workdir = tmp_path_factory.mktemp("api")
    server = ApplianceServer(workdir, base_config(workdir)).start()
    yield server
    server.stop()


@pytest.fixture
def client(server: ApplianceServer) -> V2Client:
    return V2Client(server.url)
