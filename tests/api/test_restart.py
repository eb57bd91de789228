"""Uploads survive a restart: with no http.secret configured, the generated secret is persisted."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.api.client import V2Client, digest_of
from tests.server import ApplianceServer, base_config


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApplianceServer]:
    """A server with no http.secret; tests restart it on the same port and data directory."""
    workdir = tmp_path_factory.mktemp("restart")
    config = base_config(workdir)
    del config["http"]["secret"]
    server = ApplianceServer(workdir, config).start()
    yield server
    server.stop()
    assert "Traceback" not in server.log(), server.log()


def _restart(server: ApplianceServer) -> None:
    server.stop()
    server.start()


def test_generated_secret_is_persisted_and_reused(server: ApplianceServer) -> None:
    """Without http.secret, a secret is generated into the data dir and kept across restarts."""
    secret_file = server.root / "appliance" / "http-secret"
    first = secret_file.read_bytes()
    assert len(first) >= 32
    _restart(server)
    assert secret_file.read_bytes() == first


def test_upload_continues_with_old_location_after_restart(server: ApplianceServer) -> None:
    """An upload started before a restart continues with its old Location and completes."""
    client = V2Client(server.url)
    data = os.urandom(1_500_000)
    location = client.start_upload("restart/app").headers["Location"]
    first = client.request(
        "PATCH", location, data=data[:1_000_000], headers={"Content-Range": "0-999999"}
    )
    assert first.status_code == 202
    location = first.headers["Location"]
    _restart(server)
    status = client.request("GET", location)
    assert status.status_code == 204, status.text
    assert status.headers["Range"] == "0-999999"
    second = client.request(
        "PATCH",
        location,
        data=data[1_000_000:],
        headers={"Content-Range": f"1000000-{len(data) - 1}"},
    )
    assert second.status_code == 202, second.text
    done = client.request("PUT", second.headers["Location"], params={"digest": digest_of(data)})
    assert done.status_code == 201, done.text
    assert client.request("GET", f"/v2/restart/app/blobs/{digest_of(data)}").content == data


def test_upload_finished_after_restart_still_verifies_digest(server: ApplianceServer) -> None:
    """After a restart (running hash lost), a wrong digest on PUT is still 400 DIGEST_INVALID."""
    client = V2Client(server.url)
    data = os.urandom(10_000)
    location = client.request(
        "PATCH", client.start_upload("restart/bad").headers["Location"], data=data
    ).headers["Location"]
    _restart(server)
    wrong = digest_of(data[:-1])
    response = client.request("PUT", location, params={"digest": wrong})
    assert response.status_code == 400
    assert client.error_code(response) == "DIGEST_INVALID"
    assert client.request("GET", f"/v2/restart/bad/blobs/{wrong}").status_code == 404


def test_upload_finished_with_sha512_after_restart(server: ApplianceServer) -> None:
    """After a restart, an upload can still be finished with a sha512 digest."""
    client = V2Client(server.url)
    data = os.urandom(20_000)
    location = client.request(
        "PATCH", client.start_upload("restart/sha512").headers["Location"], data=data
    ).headers["Location"]
    _restart(server)
    done = client.request("PUT", location, params={"digest": digest_of(data, "sha512")})
    assert done.status_code == 201, done.text
