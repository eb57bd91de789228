"""`POST /admin/v1/fsck` and `GET /admin/v1/fsck` on the admin socket of a real server."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

from appliance.admin.client import AdminClient
from tests.admin.conftest import image_config, raw, wait_for_job
from tests.api.client import V2Client, digest_of
from tests.api.conftest import running
from tests.server import ApplianceServer

from .conftest import blob_path, found


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApplianceServer]:
    with running(tmp_path_factory, "fsck-admin") as started:
        yield started


def test_fsck_runs_as_a_job_and_repairs_through_the_admin_api(server: ApplianceServer) -> None:
    """A check reports a corrupt layer with what it breaks and moves nothing; a repair run
    quarantines them (the blob then answers 404); the next check is clean."""
    admin, v2 = AdminClient(server.admin_socket), V2Client(server.url)
    image = v2.push_image("admin/app", "v1", [os.urandom(4000)], config=image_config())
    layer = digest_of(image.layers[0])
    blob_path(server.root, layer).write_bytes(b"corrupt")
    expected = {
        ("corrupt_blob", None, layer),
        ("dangling_link", "admin/app", layer),
        ("missing_reference", "admin/app", image.digest),
    }

    status, _, started = raw(server.admin_socket, "POST", "/admin/v1/fsck", b"{}")
    checked = wait_for_job(admin.fsck_status)

    assert (status, set(started)) == (202, {"running", "progress", "error", "last"})
    assert (checked["error"], checked["progress"]["phase"]) == (None, "done")
    assert not checked["last"]["repair"]
    assert found(checked["last"]) == expected
    assert blob_path(server.root, layer).read_bytes() == b"corrupt"

    admin.start_fsck(repair=True)
    repaired = wait_for_job(admin.fsck_status)["last"]

    assert found(repaired) == expected
    assert {p["action"] for p in repaired["problems"]} == {"quarantined"}
    assert repaired["quarantine"].startswith("/appliance/quarantine/")
    assert v2.request("GET", f"/v2/admin/app/blobs/{layer}").status_code == 404
    assert v2.request("GET", "/v2/admin/app/manifests/v1").status_code == 404

    admin.start_fsck()
    assert wait_for_job(admin.fsck_status)["last"]["problems"] == []


def test_a_bad_repair_flag_is_a_400_naming_the_field(server: ApplianceServer) -> None:
    """`repair` must be a boolean; anything else is BAD_REQUEST, and no check starts."""
    before = AdminClient(server.admin_socket).fsck_status()

    body = json.dumps({"repair": "yes"}).encode()
    status, _, answer = raw(server.admin_socket, "POST", "/admin/v1/fsck", body)

    assert status == 400
    assert answer["errors"][0]["code"] == "BAD_REQUEST"
    assert answer["errors"][0]["detail"] == {"field": "repair"}
    assert AdminClient(server.admin_socket).fsck_status() == before
