"""`appliance.limits.maxbodysize` cuts oversized uploads off early and stores nothing of them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.server import ApplianceServer, base_config

LIMIT = 1024 * 1024


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApplianceServer]:
    workdir = tmp_path_factory.mktemp("limits")
    config = base_config(workdir)
    config["appliance"] = {"limits": {"maxbodysize": "1MiB"}}
    server = ApplianceServer(workdir, config).start()
    yield server
    server.stop()


def _upload(server: ApplianceServer) -> str:
    start = requests.post(f"{server.url}/v2/limits/app/blobs/uploads/", timeout=10)
    assert start.status_code == 202
    return start.headers["Location"]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_oversized_body_is_cut_off_and_not_stored(limited: ApplianceServer, chunked: bool) -> None:
    """A body over the limit loses its connection, the upload stays empty, the server stays up."""
    location = _upload(limited)
    data = os.urandom(3 * LIMIT)
    body = iter([data[i : i + 65536] for i in range(0, len(data), 65536)]) if chunked else data
    with pytest.raises(requests.ConnectionError):
        requests.patch(location, data=body, timeout=30)
    status = requests.get(location, timeout=10)
    assert status.status_code == 204 and status.headers["Range"] == "0-0"
    spool = Path(limited.root) / "appliance" / "spool"
    assert not spool.exists() or list(spool.iterdir()) == []


def test_body_within_the_limit_is_accepted(limited: ApplianceServer) -> None:
    """A body just under the limit goes through."""
    location = _upload(limited)
    response = requests.patch(location, data=os.urandom(LIMIT - 1), timeout=30)
    assert response.status_code == 202
    assert response.headers["Range"] == f"0-{LIMIT - 2}"
