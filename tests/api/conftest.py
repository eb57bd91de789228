"""Real server processes for the API tests, one per module and configuration; HTTP with `requests`.

`server`/`client` is the plain registry (deletes on, extra `http.headers`); `nodelete_server`
has `storage.delete.enabled: false`. Modules that need other configurations (read-only,
htpasswd, TLS, restarts) start their own with `running`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.api.client import V2Client
from tests.server import ApplianceServer, base_config

EXTRA_HEADERS = {"X-Content-Type-Options": "nosniff", "X-Registry-Test": "api-suite"}

Edit = Callable[[dict[str, Any], Path], None]


@contextmanager
def running(
    tmp_path_factory: pytest.TempPathFactory,
    label: str,
    edit: Edit | None = None,
) -> Iterator[ApplianceServer]:
    """Start a server on `base_config`, changed by `edit(config, workdir)`; stop it after.

    On the way out the server log must hold no traceback: a handler that failed is a bug even
    when the client saw a tidy error.
    """
    workdir = tmp_path_factory.mktemp(label)
    config = base_config(workdir)
    if edit is not None:
        edit(config, workdir)
    server = ApplianceServer(workdir, config).start()
    try:
        yield server
    finally:
        server.stop()
    assert "Traceback" not in server.log(), server.log()


def with_headers(config: dict[str, Any], workdir: Path) -> None:
    config["http"]["headers"] = {name: [value] for name, value in EXTRA_HEADERS.items()}


def without_deletes(config: dict[str, Any], workdir: Path) -> None:
    config["storage"]["delete"] = {"enabled": False}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApplianceServer]:
    with running(tmp_path_factory, "api", with_headers) as started:
        yield started


@pytest.fixture
def client(server: ApplianceServer) -> V2Client:
    return V2Client(server.url, expect_headers=EXTRA_HEADERS)


@pytest.fixture(scope="module")
def nodelete_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApplianceServer]:
    with running(tmp_path_factory, "nodelete", without_deletes) as started:
        yield started


@pytest.fixture
def nodelete_client(nodelete_server: ApplianceServer) -> V2Client:
    return V2Client(nodelete_server.url)
