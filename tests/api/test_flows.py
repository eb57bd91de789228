"""Core push and pull flows through the v2 API."""

from __future__ import annotations

import os

from tests.api.client import DOCKER_MANIFEST, V2Client, digest_of


def test_base_endpoint_answers_with_api_version(client: V2Client) -> None:
    """GET /v2/ is 200 with Docker-Distribution-Api-Version on the response."""
    response = client.request("GET", "/v2/")
    assert response.status_code == 200
    assert response.headers["Docker-Distribution-Api-Version"] == "registry/2.0"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_push_then_pull_image_by_tag_and_digest(client: V2Client) -> None:
    """A pushed image's manifest comes back byte for byte, by tag and by digest, with its digest."""
    image = client.push_image("flows/app", "v1", [os.urandom(1000), os.urandom(300_000)])
    for reference in ("v1", image.digest):
        got = client.request("GET", f"/v2/flows/app/manifests/{reference}", headers={"Accept": DOCKER_MANIFEST})
        assert got.status_code == 200
        assert got.content == image.manifest
        assert got.headers["Docker-Content-Digest"] == image.digest
        assert got.headers["Content-Type"] == DOCKER_MANIFEST
    for layer in image.layers:
        blob = client.request("GET", f"/v2/flows/app/blobs/{digest_of(layer)}")
        assert blob.status_code == 200
        assert blob.content == layer
        assert blob.headers["Docker-Content-Digest"] == digest_of(layer)


def test_streamed_patch_then_put(client: V2Client) -> None:
    """A body sent chunked in one PATCH (as docker does), then an empty PUT, stores the blob."""
    data = os.urandom(3_000_000)
    start = client.request("POST", "/v2/flows/stream/blobs/uploads/")
    patched = client.request("PATCH", start.headers["Location"], data=iter([data[:1_000_000], data[1_000_000:]]))
    assert patched.status_code == 202, patched.text
    assert patched.headers["Range"] == f"0-{len(data) - 1}"
    done = client.request("PUT", patched.headers["Location"], params={"digest": digest_of(data)})
    assert done.status_code == 201, done.text
    got = client.request("GET", f"/v2/flows/stream/blobs/{digest_of(data)}")
    assert got.content == data
