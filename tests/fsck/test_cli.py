"""`registry-appliance fsck CONFIG`: the integrity check on a real server's storage."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.oci.digest import Digest
from appliance.storage import paths
from tests.admin.conftest import image_config
from tests.api.client import V2Client, digest_of
from tests.api.conftest import running
from tests.server import ApplianceServer

from .conftest import blob_path, found, populate, repository_path, run_fsck, snapshot


@pytest.fixture
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApplianceServer]:
    with running(tmp_path_factory, "fsck") as started:
        yield started


def test_a_clean_registry_has_no_problems_and_the_check_writes_nothing(
    server: ApplianceServer,
) -> None:
    """Images, an index, a referrer, a foreign layer and an upload in progress: exit 0, every
    blob, manifest and link counted, and not one file or folder changed."""
    v2 = V2Client(server.url)
    content = populate(v2)
    before = snapshot(server.root)

    status, result = run_fsck(server)

    assert (status, result["problems"]) == (0, [])
    blobs = list((server.root / "docker/registry/v2/blobs").rglob("data"))
    assert result["blobs"] == len(blobs)
    assert result["bytes"] == sum(p.stat().st_size for p in blobs)
    revisions = list(
        (repository_path(server.root, "clean/app") / "_manifests/revisions").rglob("link")
    )
    assert (
        result["manifests"] == len(revisions) == 6
    )  # image, index + 2 children, referrer, foreign
    assert result["links"] == len(list(repository_path(server.root, "clean/app").rglob("link")))
    assert result["repositories"] == 1
    assert snapshot(server.root) == before
    assert v2.request("GET", content.upload).status_code == 204  # the upload goes on


def test_reports_exactly_what_was_broken_and_repair_quarantines_it(server: ApplianceServer) -> None:
    """A flipped byte, a deleted layer, a tag to a missing revision, a malformed link and an
    unparsable manifest are reported, with what they break, and nothing else; the check moves
    nothing; --repair quarantines them so the server answers 404; a second run is clean."""
    v2, root = V2Client(server.url), server.root
    content = populate(v2, "fsck/ok")
    flipped = v2.push_image("fsck/a", "v1", [os.urandom(5000)], config=image_config())
    deleted = v2.push_image("fsck/b", "v1", [os.urandom(5000)], config=image_config())
    v2.push_image("fsck/c", "v1", [os.urandom(100)], config=image_config())
    loose = v2.push_blob("fsck/d", os.urandom(300))
    garbage = b"this is not a manifest"
    garbage_digest = digest_of(garbage)

    corrupt_layer = digest_of(flipped.layers[0])
    data = bytearray(blob_path(root, corrupt_layer).read_bytes())
    data[100] ^= 0xFF
    blob_path(root, corrupt_layer).write_bytes(bytes(data))
    missing_layer = digest_of(deleted.layers[0])
    blob_path(root, missing_layer).unlink()
    nowhere = "sha256:" + "0" * 64
    tag_link = repository_path(root, "fsck/c") / "_manifests/tags/dangling/current/link"
    tag_link.parent.mkdir(parents=True)
    tag_link.write_text(nowhere)
    malformed = repository_path(root, "fsck/d") / "_layers/sha256" / loose.split(":")[1] / "link"
    malformed.write_text("sha256:not-a-digest")
    blob_path(root, garbage_digest).parent.mkdir(parents=True)
    blob_path(root, garbage_digest).write_bytes(garbage)
    for link in (
        paths.revision_link("fsck/e", Digest.parse(garbage_digest)),
        paths.tag_current_link("fsck/e", "broken"),
    ):
        (root / link.lstrip("/")).parent.mkdir(parents=True)
        (root / link.lstrip("/")).write_text(garbage_digest)
    expected = {
        ("corrupt_blob", None, corrupt_layer),
        ("dangling_link", "fsck/a", corrupt_layer),  # the layer link to it
        ("missing_reference", "fsck/a", flipped.digest),  # the image that needs it
        ("dangling_link", "fsck/b", missing_layer),
        ("missing_reference", "fsck/b", deleted.digest),
        ("dangling_link", "fsck/c", nowhere),
        ("malformed_link", "fsck/d", None),
        ("unparsable_manifest", "fsck/e", garbage_digest),
    }
    before = snapshot(root)

    status, checked = run_fsck(server)

    assert status == 1
    assert found(checked) == expected
    assert len(checked["problems"]) == len(expected)
    assert all(p["action"] == "" for p in checked["problems"])
    assert snapshot(root) == before
    assert v2.request("GET", f"/v2/fsck/a/blobs/{corrupt_layer}").content == bytes(data)  # served!

    status, repaired = run_fsck(server, "--repair")

    assert status == 1
    assert found(repaired) == expected
    assert {p["action"] for p in repaired["problems"]} == {"quarantined"}
    quarantine = root / repaired["quarantine"].lstrip("/")
    assert (
        quarantine / str(blob_path(root, corrupt_layer).relative_to(root))
    ).read_bytes() == bytes(data)
    gone = [
        f"/v2/fsck/a/blobs/{corrupt_layer}",
        "/v2/fsck/a/manifests/v1",
        f"/v2/fsck/a/manifests/{flipped.digest}",
        f"/v2/fsck/b/blobs/{missing_layer}",
        "/v2/fsck/b/manifests/v1",
        "/v2/fsck/c/manifests/dangling",
        f"/v2/fsck/d/blobs/{loose}",
        "/v2/fsck/e/manifests/broken",
        f"/v2/fsck/e/manifests/{garbage_digest}",
    ]
    assert {path: v2.request("GET", path).status_code for path in gone} == dict.fromkeys(gone, 404)
    assert v2.request("GET", "/v2/fsck/c/tags/list").json()["tags"] == ["v1"]
    assert v2.request("GET", "/v2/fsck/ok/manifests/v1").content == content.image.manifest
    for layer in content.image.layers:
        assert v2.request("GET", f"/v2/fsck/ok/blobs/{digest_of(layer)}").content == layer

    status, again = run_fsck(server)

    assert (status, again["problems"]) == (0, [])
    assert v2.request("GET", content.upload).status_code == 204
    repushed = v2.push_image("fsck/a", "v1", flipped.layers, config=flipped.config)  # push it again
    assert repushed.digest == flipped.digest
    assert v2.request("GET", f"/v2/fsck/a/blobs/{corrupt_layer}").content == flipped.layers[0]


def test_repair_waits_for_no_garbage_collection_but_a_check_runs(server: ApplianceServer) -> None:
    """While a live GC holds its lock, --repair exits 2 saying so and moves nothing; a
    read-only check still runs."""
    v2 = V2Client(server.url)
    pushed = v2.push_image("held/app", "v1", [os.urandom(500)], config=image_config())
    layer = blob_path(server.root, digest_of(pushed.layers[0]))
    layer.write_bytes(b"corrupt")
    lock = server.root / paths.GC_LOCK.lstrip("/")
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text(
        json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "heartbeat": time.time()})
    )

    status, message = run_fsck(server, "--repair")

    assert status == 2
    assert "garbage collection already running" in message
    assert layer.read_bytes() == b"corrupt"
    status, checked = run_fsck(server)
    assert status == 1
    assert ("corrupt_blob", None, digest_of(pushed.layers[0])) in found(checked)


def test_config_errors_exit_2_naming_the_key(tmp_path: Path) -> None:
    """A config fsck cannot use is exit status 2 with `key: problem`, not a traceback."""
    config = tmp_path / "config.yml"
    config.write_text("version: 0.1\nstorage:\n  s3:\n    region: us-east-1\n")
    server = ApplianceServer(tmp_path, {})

    status, message = run_fsck(server)

    assert status == 2
    assert "storage.s3.bucket" in message
