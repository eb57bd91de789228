"""fsck through the S3 driver (SeaweedFS on loopback): the same check, on objects."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from tests.admin.conftest import image_config
from tests.api.client import V2Client, digest_of
from tests.seaweedfs import SeaweedFS
from tests.server import ApplianceServer, base_config

from .conftest import found, run_fsck


@pytest.mark.e2e  # ~30 s: SeaweedFS, a server on it and three fsck processes
def test_a_corrupt_object_is_found_and_quarantined_on_s3(
    seaweedfs: SeaweedFS, s3_bucket: str, tmp_path: Path
) -> None:
    """One layer object overwritten with other bytes: reported with what it breaks, moved to
    the quarantine prefix by --repair (its bytes kept), then 404 and a clean second run."""
    root = f"/fsck/{uuid.uuid4().hex[:8]}"
    config = base_config(tmp_path)
    config["storage"] = {
        "s3": seaweedfs.storage_config(s3_bucket, root),
        "delete": {"enabled": True},
    }
    server = ApplianceServer(tmp_path, config).start()
    try:
        v2 = V2Client(server.url)
        image = v2.push_image("s3/app", "v1", [os.urandom(3000)], config=image_config())
        kept = v2.push_image("s3/kept", "v1", [os.urandom(2000)], config=image_config())
        layer = digest_of(image.layers[0])
        hexpart = layer.split(":")[1]
        key = f"{root.lstrip('/')}/docker/registry/v2/blobs/sha256/{hexpart[:2]}/{hexpart}/data"
        s3 = seaweedfs.client()
        s3.put_object(Bucket=s3_bucket, Key=key, Body=b"not the layer")
        expected = {
            ("corrupt_blob", None, layer),
            ("dangling_link", "s3/app", layer),
            ("missing_reference", "s3/app", image.digest),
        }

        status, checked = run_fsck(server)
        assert (status, found(checked)) == (1, expected)
        assert checked["blobs"] == 6

        status, repaired = run_fsck(server, "--repair")
        assert (status, found(repaired)) == (1, expected)
        moved = f"{root.lstrip('/')}{repaired['quarantine']}/{key.split('/', 2)[2]}"
        assert s3.get_object(Bucket=s3_bucket, Key=moved)["Body"].read() == b"not the layer"
        assert v2.request("GET", f"/v2/s3/app/blobs/{layer}").status_code == 404
        assert v2.request("GET", "/v2/s3/app/manifests/v1").status_code == 404
        assert v2.request("GET", "/v2/s3/kept/manifests/v1").content == kept.manifest

        status, again = run_fsck(server)
        assert (status, again["problems"]) == (0, [])
    finally:
        server.stop()
