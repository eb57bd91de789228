"""Garbage collection and upload purging through the admin API, on a server with no GC grace."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from treq.testing import StubTreq
from twisted.internet.task import Clock

from appliance.admin.client import AdminClient
from appliance.admin.handlers import AdminApi
from appliance.admin.resource import AdminResource
from appliance.storage import paths
from tests.api.client import V2Client, digest_of
from tests.server import ApplianceServer

from .conftest import image_config, wait_for_gc


def blob_file(root: Path, digest: str) -> Path:
    algorithm, hexpart = digest.split(":")
    return root / "docker/registry/v2/blobs" / algorithm / hexpart[:2] / hexpart / "data"


def test_gc_dry_run_lists_exactly_what_a_real_run_removes(
    server: ApplianceServer, admin: AdminClient, v2: V2Client
) -> None:
    """A dry run lists the unreferenced blobs, removing nothing; a real run then removes those."""
    kept = v2.push_image("gc/kept", "v1", [os.urandom(1000)], config=image_config())
    junk = [os.urandom(700) for _ in range(3)]
    for blob in junk:
        v2.push_blob("gc/junk", blob)
    doomed = v2.push_image("gc/doomed", "v1", [os.urandom(900)], config=image_config())
    admin.delete_manifest("gc/doomed", doomed.digest)
    garbage = {
        digest_of(b): len(b) for b in (*junk, doomed.manifest, doomed.config, *doomed.layers)
    }

    assert admin.start_gc(dry_run=True)["running"] in (True, False)
    dry = wait_for_gc(admin)["history"][0]
    assert dry["dry_run"]
    assert sorted(dry["blobs"]) == sorted(garbage)
    assert dry["bytes_freed"] == sum(garbage.values())
    assert all(blob_file(server.root, d).exists() for d in garbage)

    admin.start_gc()
    status = wait_for_gc(admin)
    real = status["history"][0]
    assert (status["error"], status["progress"]["phase"]) == (None, "done")
    assert not real["dry_run"]
    assert sorted(real["blobs"]) == sorted(dry["blobs"])
    assert real["bytes_freed"] == dry["bytes_freed"]
    assert not any(blob_file(server.root, d).exists() for d in garbage)
    assert v2.request("GET", "/v2/gc/kept/manifests/v1").content == kept.manifest
    for blob in (kept.config, *kept.layers):
        assert v2.request("GET", f"/v2/gc/kept/blobs/{digest_of(blob)}").content == blob


def test_gc_removes_untagged_manifests_only_when_asked(admin: AdminClient, v2: V2Client) -> None:
    """An untagged manifest survives a plain GC; with delete_untagged it and its blobs go."""
    image = v2.push_image("gc/untagged", "v1", [os.urandom(400)], config=image_config())
    admin.delete_tag("gc/untagged", "v1")
    admin.start_gc()
    assert wait_for_gc(admin)["history"][0]["manifests"] == []
    admin.start_gc(delete_untagged=True)
    result = wait_for_gc(admin)["history"][0]
    assert result["manifests"] == [{"repository": "gc/untagged", "digest": image.digest}]
    assert digest_of(image.layers[0]) in result["blobs"]


def test_gc_runs_in_read_only_mode(admin: AdminClient) -> None:
    """GC is allowed while the registry is read-only: it is safe online."""
    admin.set_readonly(True)
    try:
        admin.start_gc(dry_run=True)
        assert wait_for_gc(admin)["error"] is None
    finally:
        admin.set_readonly(False)


def test_gc_held_by_another_process_reports_the_holder(
    server: ApplianceServer, admin: AdminClient
) -> None:
    """While another live process holds the GC lock, a GC started here fails and says who."""
    lock = Path(f"{server.root}{paths.GC_LOCK}")
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text(
        json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "heartbeat": time.time()})
    )
    try:
        admin.start_gc()
        status = wait_for_gc(admin)
    finally:
        lock.unlink()
    assert f"already running (pid {os.getpid()}" in status["error"]


def test_second_gc_while_one_runs_is_409() -> None:
    """POST /gc while this server's GC is still running is 409 CONFLICT."""
    busy = SimpleNamespace(
        maintenance=SimpleNamespace(start_gc=lambda dry_run, delete_untagged: False)
    )
    stub = StubTreq(AdminResource(AdminApi(busy, None, Clock())))  # type: ignore[arg-type]
    answers: list[Any] = []
    stub.post("http://admin/admin/v1/gc", json={"dry_run": True}).addCallback(
        lambda response: response.json().addCallback(
            lambda body: answers.append((response.code, body))
        )
    )
    stub.flush()
    [(status, body)] = answers
    assert (status, body["errors"][0]["code"]) == (409, "CONFLICT")
    assert "already running" in body["errors"][0]["message"]


def test_upload_purge_dry_run_then_real(admin: AdminClient, v2: V2Client) -> None:
    """`age: 0` lists (dry run), then removes a fresh upload the default age keeps; GET: last."""
    started = v2.start_upload("purge/app")
    upload_id = started.headers["Docker-Upload-UUID"]
    assert v2.request("PATCH", started.headers["Location"], data=b"x" * 1000).status_code == 202
    entry = {"repository": "purge/app", "upload": upload_id}
    dry = admin.purge_uploads(dry_run=True, age=0)
    assert (dry["dry_run"], dry["uploads"], dry["bytes_freed"]) == (True, [entry], 1000)
    assert admin.last_purge() == dry
    assert admin.purge_uploads()["uploads"] == []
    assert v2.request("GET", f"/v2/purge/app/blobs/uploads/{upload_id}").status_code == 204
    real = admin.purge_uploads(age=0)
    assert (real["dry_run"], real["uploads"], real["bytes_freed"]) == (False, [entry], 1000)
    assert admin.last_purge() == real
    assert v2.request("GET", f"/v2/purge/app/blobs/uploads/{upload_id}").status_code == 404
