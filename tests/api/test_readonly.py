"""Read-only mode (storage.maintenance.readonly): writes are 405 UNSUPPORTED, reads served."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.client import DOCKER_MANIFEST, PushedImage, V2Client, digest_of
from tests.api.conftest import running
from tests.server import ApplianceServer

NAME = "readonly/app"


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[PushedImage, str, Path]:
    """An image (tag v1) and a started upload, written by a normal server that is then stopped."""
    with running(tmp_path_factory, "readonly-seed") as writer:
        client = V2Client(writer.url)
        image = client.push_image(NAME, "v1", [os.urandom(2000)])
        upload_id = client.start_upload(NAME).headers["Docker-Upload-UUID"]
        root = writer.root
    return image, upload_id, root


@pytest.fixture(scope="module")
def readonly_server(
    tmp_path_factory: pytest.TempPathFactory, seeded: tuple[PushedImage, str, Path]
) -> Iterator[ApplianceServer]:
    root = seeded[2]

    def readonly(config: dict[str, Any], workdir: Path) -> None:
        config["storage"]["filesystem"]["rootdirectory"] = str(root)
        config["storage"]["maintenance"] = {"readonly": {"enabled": True}}

    with running(tmp_path_factory, "readonly", readonly) as started:
        yield started


@pytest.fixture
def ro(readonly_server: ApplianceServer) -> V2Client:
    return V2Client(readonly_server.url)


def _assert_refused(client: V2Client, method: str, path: str, **kwargs: Any) -> None:
    response = client.request(method, path, **kwargs)
    assert response.status_code == 405, (method, path, response.text)
    error = response.json()["errors"][0]
    assert error["code"] == "UNSUPPORTED"
    assert "read-only" in error["message"]


def test_reads_are_served(ro: V2Client, seeded: tuple[PushedImage, str, Path]) -> None:
    """Read-only, /v2/, catalog, tags, manifests and blobs (GET/HEAD/Range) are served."""
    image, _, _ = seeded
    assert ro.request("GET", "/v2/").status_code == 200
    assert ro.request("GET", "/v2/_catalog").json() == {"repositories": [NAME]}
    assert ro.request("GET", f"/v2/{NAME}/tags/list").json() == {"name": NAME, "tags": ["v1"]}
    for reference in ("v1", image.digest):
        got = ro.request(
            "GET", f"/v2/{NAME}/manifests/{reference}", headers={"Accept": DOCKER_MANIFEST}
        )
        assert got.content == image.manifest
        assert ro.request("HEAD", f"/v2/{NAME}/manifests/{reference}").status_code == 200
    layer = image.layers[0]
    assert ro.request("GET", f"/v2/{NAME}/blobs/{digest_of(layer)}").content == layer
    assert ro.request("HEAD", f"/v2/{NAME}/blobs/{digest_of(layer)}").status_code == 200
    ranged = ro.request(
        "GET", f"/v2/{NAME}/blobs/{digest_of(layer)}", headers={"Range": "bytes=0-9"}
    )
    assert ranged.status_code == 206
    assert ranged.content == layer[:10]
    assert ro.request("GET", f"/v2/{NAME}/referrers/{image.digest}").status_code == 200


def test_upload_status_is_served(ro: V2Client, seeded: tuple[PushedImage, str, Path]) -> None:
    """GET on an upload started before read-only mode is a read: 204 with its Range."""
    _, upload_id, _ = seeded
    status = ro.request("GET", f"/v2/{NAME}/blobs/uploads/{upload_id}")
    assert status.status_code == 204
    assert status.headers["Range"] == "0-0"


def test_upload_writes_are_refused(ro: V2Client, seeded: tuple[PushedImage, str, Path]) -> None:
    """Read-only, starting, mounting, POST ?digest=, PATCH, PUT and DELETE of uploads are 405."""
    image, upload_id, _ = seeded
    config = digest_of(image.config)
    upload = f"/v2/{NAME}/blobs/uploads/{upload_id}"
    _assert_refused(ro, "POST", f"/v2/{NAME}/blobs/uploads/")
    _assert_refused(ro, "POST", "/v2/readonly/new/blobs/uploads/")
    _assert_refused(
        ro, "POST", "/v2/readonly/other/blobs/uploads/", params={"mount": config, "from": NAME}
    )
    _assert_refused(
        ro, "POST", f"/v2/{NAME}/blobs/uploads/", params={"digest": digest_of(b"x")}, data=b"x"
    )
    _assert_refused(ro, "PATCH", upload, data=b"chunk")
    _assert_refused(ro, "PUT", upload, params={"digest": digest_of(b"")})
    _assert_refused(ro, "DELETE", upload)
    assert ro.request("GET", upload).headers["Range"] == "0-0"
    assert ro.request("GET", f"/v2/readonly/other/blobs/{config}").status_code == 404


def test_manifest_and_blob_writes_are_refused(
    ro: V2Client, seeded: tuple[PushedImage, str, Path]
) -> None:
    """PUT/DELETE of manifests and DELETE of blobs are 405 UNSUPPORTED, and the content stays."""
    image, _, _ = seeded
    _assert_refused(
        ro,
        "PUT",
        f"/v2/{NAME}/manifests/v2",
        data=image.manifest,
        headers={"Content-Type": DOCKER_MANIFEST},
    )
    _assert_refused(
        ro,
        "PUT",
        f"/v2/{NAME}/manifests/{image.digest}",
        data=image.manifest,
        headers={"Content-Type": DOCKER_MANIFEST},
    )
    _assert_refused(ro, "DELETE", f"/v2/{NAME}/manifests/v1")
    _assert_refused(ro, "DELETE", f"/v2/{NAME}/manifests/{image.digest}")
    _assert_refused(ro, "DELETE", f"/v2/{NAME}/blobs/{digest_of(image.layers[0])}")
    assert ro.request("GET", f"/v2/{NAME}/tags/list").json()["tags"] == ["v1"]
    assert ro.request("GET", f"/v2/{NAME}/manifests/v1").content == image.manifest
    assert ro.request("GET", f"/v2/{NAME}/blobs/{digest_of(image.layers[0])}").status_code == 200


def test_invalid_requests_still_get_their_own_errors(ro: V2Client) -> None:
    """Read-only mode does not mask validation: a bad name on a write is still 400 NAME_INVALID."""
    response = ro.request("POST", "/v2/Bad/blobs/uploads/")
    assert response.status_code == 400
    assert ro.error_code(response) == "NAME_INVALID"
