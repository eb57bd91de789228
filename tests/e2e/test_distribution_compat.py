"""Data written by Distribution 2.8.2 is served by us, and data written by us is served by it.

Both servers run in turn on one filesystem root, one S3 bucket (SeaweedFS) or one Swift container
(the all-in-one, 1 MiB segments), so this checks the layout itself: blobs, layer links,
revisions, tags (current and index), and nested names.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.api.client import (
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    PushedImage,
    V2Client,
    digest_of,
)
from tests.server import ApplianceServer, base_config

from .tools import DISTRIBUTION, Distribution, clean_env, run

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class Shared:
    """Where both servers keep their data: a filesystem root, or a bucket and rootdirectory."""

    root: Path
    s3: dict[str, Any] | None = None
    swift: dict[str, Any] | None = None


def _ours(workdir: Path, shared: Shared) -> ApplianceServer:
    config = base_config(workdir)
    config["storage"]["filesystem"]["rootdirectory"] = str(shared.root)
    if shared.s3 is not None:
        del config["storage"]["filesystem"]
        config["storage"]["s3"] = dict(shared.s3)
    if shared.swift is not None:
        del config["storage"]["filesystem"]
        config["storage"]["swift"] = dict(shared.swift)
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
        if got.status_code == 307:  # our default on S3: the bucket serves the bytes
            got = requests.get(got.headers["Location"], timeout=30)
        assert got.status_code == 200
        assert got.content == blob


@pytest.fixture(params=["filesystem", "s3", "swift"])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> Shared:
    """The same storage for both servers: one filesystem root, or one bucket (SeaweedFS)."""
    root = tmp_path / "data"
    root.mkdir()
    if request.param == "filesystem":
        return Shared(root)
    if request.param == "swift":  # 1 MiB segments: the 3 MB layers below are segmented
        swift = request.getfixturevalue("swift_server")
        return Shared(root, swift=swift.storage_config(swift.new_container("compat"), "/compat"))
    seaweedfs = request.getfixturevalue("seaweedfs")
    bucket = request.getfixturevalue("s3_bucket")
    return Shared(root, seaweedfs.storage_config(bucket, f"/compat/{uuid.uuid4().hex[:8]}"))


def test_we_serve_what_distribution_wrote(tmp_path: Path, shared: Shared) -> None:
    """Images, tags, an index and nested names pushed to Distribution pull from us unchanged."""
    with Distribution(tmp_path / "dist", shared.root, s3=shared.s3, swift=shared.swift) as theirs:
        client = V2Client(theirs.url)
        app = client.push_image("team/app/api", "v1", [os.urandom(2000), os.urandom(70_000)])
        assert client.put_manifest("team/app/api", "stable", app.manifest, DOCKER_MANIFEST).status_code == 201
        arm = client.push_image("team/app/api", "arm", [os.urandom(500)])
        index = _push_index(client, "team/app/api", "multi", [app, arm])
        oci = client.push_image("oci", "latest", [os.urandom(100)], media_type=OCI_MANIFEST)
    ours = _ours(tmp_path / "ours", shared).start()
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
    with Distribution(tmp_path / "dist2", shared.root, s3=shared.s3, swift=shared.swift) as theirs:
        client = V2Client(theirs.url)
        tags = client.request("GET", "/v2/team/app/api/tags/list").json()["tags"]
        assert sorted(tags) == ["arm", "multi", "v1"]  # Distribution lists in directory order
        _assert_serves(client, "team/app/api", "v1", app)


def test_distribution_serves_what_we_wrote(tmp_path: Path, shared: Shared) -> None:
    """Images, tags and an index pushed to us pull from Distribution; its GC reads our layout."""
    ours = _ours(tmp_path / "ours", shared).start()
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
    with Distribution(tmp_path / "dist", shared.root, s3=shared.s3, swift=shared.swift) as theirs:
        client = V2Client(theirs.url)
        _assert_serves(client, "lib/big", "v1", app)
        got = client.request("GET", "/v2/lib/big/manifests/multi", headers={"Accept": OCI_INDEX})
        assert got.content == index
        assert client.request("GET", "/v2/a/b/c/d/manifests/latest",
                              headers={"Accept": OCI_MANIFEST}).content == oci.manifest
        assert client.request("GET", "/v2/_catalog").json()["repositories"] == ["a/b/c/d", "lib/big"]
        config_path = theirs.config_path
    # Its S3 driver panics at start when AWS_CA_BUNDLE is set (it is, machine-wide).
    gc = run([DISTRIBUTION, "garbage-collect", "--dry-run", str(config_path)], check=False,
             env=clean_env(drop_prefixes=("REGISTRY_",), drop=("AWS_CA_BUNDLE",)))
    assert gc.returncode == 0, gc.stderr
    assert "blobs marked" in gc.stdout + gc.stderr
