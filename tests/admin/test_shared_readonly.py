"""Read-only mode switched through one server's admin API holds for every server on the storage."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from appliance.admin.client import AdminClient
from tests.api.client import DOCKER_MANIFEST, V2Client, digest_of
from tests.api.conftest import running
from tests.server import ApplianceServer

WITHIN = 2.0  # the flag is re-read every second


@pytest.fixture(scope="module")
def pair(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ApplianceServer, ApplianceServer]]:
    """Two server processes on one storage root."""
    with running(tmp_path_factory, "shared-a") as first:

        def same_root(config: dict[str, Any], workdir: Path) -> None:
            config["storage"]["filesystem"]["rootdirectory"] = str(first.root)

        with running(tmp_path_factory, "shared-b", same_root) as second:
            yield first, second


def soon(check: Callable[[], bool]) -> float:
    """Seconds until `check()` holds; fails after WITHIN plus a little slack."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < WITHIN + 0.5, "not seen in time"
        time.sleep(0.05)
    return time.monotonic() - started


def refused(response: requests.Response) -> bool:
    return response.status_code == 405 and "read-only" in response.json()["errors"][0]["message"]


def test_read_only_reaches_the_other_server_and_back(
    pair: tuple[ApplianceServer, ApplianceServer],
) -> None:
    """Switched on at A, server B refuses writes (405) within 2 s, serves reads; off, B writes."""
    first, second = pair
    other = V2Client(second.url)
    image = other.push_image("shared/app", "v1", [os.urandom(500)])
    AdminClient(first.admin_socket).set_readonly(True)
    try:
        assert (
            soon(lambda: refused(other.request("POST", "/v2/shared/app/blobs/uploads/"))) < WITHIN
        )
        response = other.put_manifest("shared/app", "v2", image.manifest, DOCKER_MANIFEST)
        assert response.status_code == 405
        assert other.error_code(response) == "UNSUPPORTED"
        assert refused(response)
        assert other.request("GET", "/v2/shared/app/manifests/v1").content == image.manifest
        layer = image.layers[0]
        assert other.request("GET", f"/v2/shared/app/blobs/{digest_of(layer)}").content == layer
        assert AdminClient(second.admin_socket).status()["read_only"] is True
    finally:
        AdminClient(first.admin_socket).set_readonly(False)
    assert (
        soon(lambda: other.request("POST", "/v2/shared/app/blobs/uploads/").status_code == 202)
        < WITHIN
    )
    assert other.push_image("shared/app", "v3", [os.urandom(500)]).digest
