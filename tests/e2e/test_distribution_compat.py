"""Data written by Distribution 2.8.2 is served by us, and data written by us is served by it.

Both servers run in turn on one filesystem root, so this checks the on-disk layout itself:
blobs, layer links, revisions, tags (current and index), and nested repository names.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.client import DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, PushedImage, V2Client, digest_of
from tests.server import ApplianceServer, base_config

from .tools import DISTRIBUTION, Distribution, run

pytestmark = pytest.mark.e2e


def _ours(workdir: Path, root: Path) -> ApplianceServer:
    config = base_config(workdir)
    config["storage"]["filesystem"]["rootdirectory"] = str(root)
    return ApplianceServer(workdir, config)


def _push_index(client: V2Client, name: str, tag: str, children: list[PushedImage]) -> bytes:
    index = json.dumps({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            child.descriptor(DOCKER_MANIFEST, platform={"architecture": arch, "os": "linux"})
            for child, arch in zip(children, ("amd64", "arm64"), strict=True)
        ],
    }).encode()
    assert client.put_manifest(name, tag, index, OCI_INDEX).status_code == 201
    return index


def _assert_serves(client: V2Client, name: str, tag: str, image: PushedImage) -> None:
    for reference in (tag, image.digest):
        got = client.request("GET", f"/v2/{name}/manifests/{reference}", headers={"Accept": DOCKER_MANIFEST})
        assert got.status_code == 200, got.text
        assert got.content == image.manifest
        assert got.headers["Docker-Content-Digest"] == image.digest
    for blob in (image.config, *image.layers):
        got = client.request("GET", f"/v2/{name}/blobs/{digest_of(blob)}")
        assert got.status_code == 200
        assert got.content == blob


@pytest.fixture
def shared_root(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "data"
    root.mkdir()
    yield root


def test_we_serve_what_distribution_wrote(tmp_path: Path, shared_root: Path) -> None:
    """Images, tags, an index and nested names pushed to Distribution pull from us unchanged."""
    with Distribution(tmp_path / "dist", shared_root) as theirs:
        client = V2Client(theirs.url)
        app = client.push_image("team/app/api", "v1", [os.urandom(2000), os.urandom(70_000)])
        assert client.put_manifest("team/app/api", "stable", app.manifest, DOCKER_MANIFEST).status_code == 201
        arm = client.push_image("team/app/api", "arm", [os.urandom(500)])
        index = _push_index(client, "team/app/api", "multi", [app, arm])
        oci = client.push_image("oci", "latest", [os.urandom(100)], media_type=OCI_MANIFEST)
    ours = _ours(tmp_path / "ours", shared_root).start()
    try:
        client = V2Client(ours.url)
        _assert_serves(client, "team/app/api", "v1", app)
        _assert_serves(client, "team/app/api", "stable", app)
        got = client.request("GET", "/v2/team/app/api/manifests/multi", headers={"Accept": OCI_INDEX})
        assert got.content == index
        assert client.request("GET", "/v2/oci/manifests/latest").content == oci.manifest
        assert client.request("GET", "/v2/team/app/api/tags/list").json()["tags"] == ["arm", "multi", "stable", "v1"]
        assert client.request("GET", "/v2/_catalog").json()["repositories"] == ["oci", "team/app/api"]
        assert client.request("DELETE", "/v2/team/app/api/manifests/stable").status_code == 202
    finally:
        ours.stop()
    with Distribution(tmp_path / "dist2", shared_root) as theirs:
        client = V2Client(theirs.url)
        tags = client.request("GET", "/v2/team/app/api/tags/list").json()["tags"]
        assert sorted(tags) == ["arm", "multi", "v1"]  # Distribution lists in directory order
        _assert_serves(client, "team/app/api", "v1", app)


def test_distribution_serves_what_we_wrote(tmp_path: Path, shared_root: Path) -> None:
    """Images, tags and an index pushed to us pull from Distribution; its GC reads our layout."""
    ours = _ours(tmp_path / "ours", shared_root).start()
    try:
        client = V2Client(ours.url)
        data = os.urandom(3_000_000)
        start = client.request("POST", "/v2/lib/big/blobs/uploads/")
        first = client.request("PATCH", start.headers["Location"], data=data[:1_000_000],
                               headers={"Content-Range": "0-999999"})
        second = client.request("PATCH", first.headers["Location"], data=data[1_000_000:],
                                headers={"Content-Range": f"1000000-{len(data) - 1}"})
        assert client.request("PUT", second.headers["Location"], params={"digest": digest_of(data)}).status_code == 201
        app = client.push_image("lib/big", "v1", [data, os.urandom(10)])
        arm = client.push_image("lib/big", "arm", [os.urandom(20)])
        index = _push_index(client, "lib/big", "multi", [app, arm])
        oci = client.push_image("a/b/c/d", "latest", [os.urandom(100)], media_type=OCI_MANIFEST)
    finally:
        ours.stop()
    with Distribution(tmp_path / "dist", shared_root) as theirs:
        client = V2Client(theirs.url)
        _assert_serves(client, "lib/big", "v1", app)
        got = client.request("GET", "/v2/lib/big/manifests/multi", headers={"Accept": OCI_INDEX})
        assert got.content == index
        assert client.request("GET", "/v2/a/b/c/d/manifests/latest",
                              headers={"Accept": OCI_MANIFEST}).content == oci.manifest
        assert client.request("GET", "/v2/_catalog").json()["repositories"] == ["a/b/c/d", "lib/big"]
        config_path = theirs.config_path
    gc = run([DISTRIBUTION, "garbage-collect", "--dry-run", str(config_path)], check=False)
    assert gc.returncode == 0, gc.stderr
    assert "blobs marked" in gc.stdout + gc.stderr
