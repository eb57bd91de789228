"""Admin API tests: a real server per module, the admin client on its socket, and helpers.

`server` has deletes on and `appliance.gc.grace: 0s`, so blobs pushed a moment ago already
count as old for garbage collection.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.admin.client import AdminClient, UnixHTTPConnection
from tests.api.client import OCI_INDEX, OCI_MANIFEST, PushedImage, V2Client
from tests.api.conftest import running
from tests.server import ApplianceServer


def no_grace(config: dict[str, Any], workdir: Path) -> None:
    config["appliance"] = {"gc": {"grace": "0s"}}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApplianceServer]:
    with running(tmp_path_factory, "admin", no_grace) as started:
        yield started


@pytest.fixture
def admin(server: ApplianceServer) -> AdminClient:
    return AdminClient(server.admin_socket)


@pytest.fixture
def v2(server: ApplianceServer) -> V2Client:
    return V2Client(server.url)


def raw(
    socket_path: str, method: str, path: str, body: bytes | None = None
) -> tuple[int, dict[str, str], Any]:
    """One request on the admin socket with the body byte for byte: status, headers, JSON."""
    connection = UnixHTTPConnection(socket_path, 10)
    try:
        connection.request(method, path, body=body)
        response = connection.getresponse()
        payload = response.read()
        return (
            response.status,
            dict(response.getheaders()),
            json.loads(payload) if payload else None,
        )
    finally:
        connection.close()


def image_config(**fields: Any) -> bytes:
    """A unique image config (so no two tests share one by accident) with `fields` on top."""
    return json.dumps(
        {"architecture": "amd64", "os": "linux", "nonce": os.urandom(8).hex(), **fields}
    ).encode()


def push_index(
    client: V2Client, name: str, tag: str, platforms: list[dict[str, str]], layer_size: int = 500
) -> tuple[PushedImage, list[PushedImage]]:
    """An OCI index of one image per platform: the index (as a PushedImage) and its children."""
    children = []
    for platform in platforms:
        config = image_config(architecture=platform["architecture"], os=platform["os"])
        children.append(
            client.push_image(
                name,
                f"{tag}-{platform['architecture']}",
                [os.urandom(layer_size)],
                media_type=OCI_MANIFEST,
                config=config,
            )
        )
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                child.descriptor(OCI_MANIFEST, platform=platform)
                for child, platform in zip(children, platforms, strict=True)
            ],
        }
    ).encode()
    response = client.put_manifest(name, tag, index, OCI_INDEX)
    assert response.status_code == 201, response.text
    return PushedImage(
        index, response.headers["Docker-Content-Digest"], b"", [], OCI_INDEX
    ), children


def wait_for_gc(client: AdminClient, timeout: float = 30.0) -> dict[str, Any]:
    """Poll until the server's GC is done; its status."""
    return wait_for_job(client.gc_status, timeout)


def wait_for_job(status: Callable[[], dict[str, Any]], timeout: float = 30.0) -> dict[str, Any]:
    """Poll a background job's status (GC, fsck) until it runs no more; that status."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = status()
        if not current["running"]:
            return current
        time.sleep(0.05)
    raise AssertionError(f"the job did not finish in {timeout}s: {current}")
