"""`appliance.limits`: oversized bodies are cut off early and store nothing; oversized headers
get 400; slow and silent clients are cut off without holding up others; upload sessions are
capped per repository and in all (429 with Retry-After), and abandoned ones stop counting."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.api.client import V2Client, raw_request
from tests.server import ApplianceServer, base_config

LIMIT = 1024 * 1024
HEADER_TIMEOUT, IDLE_TIMEOUT, UPLOAD_IDLE = 2, 3, 3


def _serve(workdir: Path, limits: dict[str, object]) -> ApplianceServer:
    config = base_config(workdir)
    config["appliance"] = {"limits": limits}
    return ApplianceServer(workdir, config).start()


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApplianceServer]:
    server = _serve(tmp_path_factory.mktemp("limits"), {
        "maxbodysize": "1MiB", "maxheadersize": "8KiB", "maxheaders": 20,
        "headertimeout": f"{HEADER_TIMEOUT}s", "idletimeout": f"{IDLE_TIMEOUT}s"})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def few_uploads(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApplianceServer]:
    server = _serve(tmp_path_factory.mktemp("uploads"), {
        "maxrepositoryuploads": 2, "maxuploads": 3, "uploadidle": f"{UPLOAD_IDLE}s"})
    yield server
    server.stop()


def _upload(server: ApplianceServer) -> str:
    start = requests.post(f"{server.url}/v2/limits/app/blobs/uploads/", timeout=10)
    assert start.status_code == 202
    return start.headers["Location"]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_oversized_body_is_cut_off_and_not_stored(limited: ApplianceServer, chunked: bool) -> None:
    """A body over the limit loses its connection, the upload stays empty, the server stays up."""
    location = _upload(limited)
    data = os.urandom(3 * LIMIT)
    body = iter([data[i : i + 65536] for i in range(0, len(data), 65536)]) if chunked else data
    with pytest.raises(requests.ConnectionError):
        requests.patch(location, data=body, timeout=30)
    status = requests.get(location, timeout=10)
    assert status.status_code == 204 and status.headers["Range"] == "0-0"
    spool = Path(limited.root) / "appliance" / "spool"
    assert not spool.exists() or list(spool.iterdir()) == []


def test_body_within_the_limit_is_accepted(limited: ApplianceServer) -> None:
    """A body just under the limit goes through."""
    location = _upload(limited)
    response = requests.patch(location, data=os.urandom(LIMIT - 1), timeout=30)
    assert response.status_code == 202
    assert response.headers["Range"] == f"0-{LIMIT - 2}"


def test_headers_within_the_limit_are_accepted(limited: ApplianceServer) -> None:
    """A 6 KiB header (a large bearer token, say) and 15 headers are under the caps."""
    headers = {"X-Big": "a" * 6000, **{f"X-H{i}": "v" for i in range(14)}}
    assert raw_request(limited.url, "GET", b"/v2/", headers).status == 200


@pytest.mark.parametrize("headers", [
    {"X-Big": "a" * 9000},
    {f"X-H{i}": "v" * 500 for i in range(18)},
    {f"X-H{i}": "v" for i in range(25)},
], ids=["one-long-line", "total-size", "count"])
def test_oversized_headers_get_400_and_the_connection_closes(
        limited: ApplianceServer, headers: dict[str, str]) -> None:
    """Over `maxheadersize` (one line or in all) or `maxheaders`: 400 from the parser, closed."""
    response = raw_request(limited.url, "GET", b"/v2/", headers)  # reads until the server closes
    assert response.status == 400
    assert raw_request(limited.url, "GET", b"/v2/").status == 200


def _connect(server: ApplianceServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=IDLE_TIMEOUT + 10)
    return sock


def _closed_after(sock: socket.socket) -> tuple[float, bytes]:
    """Seconds until the server closes `sock`, and what it sent before."""
    started, received = time.monotonic(), b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return time.monotonic() - started, received


def test_slowloris_headers_are_cut_off_and_do_not_block_others(limited: ApplianceServer) -> None:
    """A client trickling its headers a byte at a time (each byte well inside the idle timeout)
    gets 408 and is closed after `headertimeout`; others are served meanwhile."""
    with _connect(limited) as slow:
        slow.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        served = 0
        try:
            for byte in b"X-Slow: " + b"a" * 100:
                slow.sendall(bytes([byte]))
                assert requests.get(f"{limited.url}/v2/", timeout=5).status_code == 200
                served += 1
                time.sleep(0.3)
        except (BrokenPipeError, ConnectionResetError):
            pass
        _, received = _closed_after(slow)
        elapsed = time.monotonic() - started
    assert received.startswith(b"HTTP/1.1 408 ")
    assert HEADER_TIMEOUT - 0.5 < elapsed < HEADER_TIMEOUT + 2
    assert served >= 3


@pytest.mark.parametrize("sent", [b"", b"PATCH /v2/x/blobs/uploads/u HTTP/1.1\r\nHost: x\r\n"
                                    b"Content-Length: 100\r\n\r\n0123456789"],
                         ids=["silent", "stalled-body"])
def test_idle_connections_are_closed(limited: ApplianceServer, sent: bytes) -> None:
    """A connection that sends nothing, or stops in the middle of a body, is closed after
    `idletimeout`."""
    with _connect(limited) as idle:
        idle.sendall(sent)
        elapsed, _ = _closed_after(idle)
    assert IDLE_TIMEOUT - 0.5 < elapsed < IDLE_TIMEOUT + 3


def _too_many(response: requests.Response, limit: str) -> None:
    assert response.status_code == 429, response.text
    error = response.json()["errors"][0]
    assert error["code"] == "TOOMANYREQUESTS" and error["detail"]["limit"] == limit
    assert limit in error["message"]
    assert 1 <= int(response.headers["Retry-After"]) <= UPLOAD_IDLE + 10


def test_upload_sessions_are_capped_per_repository_and_in_all(few_uploads: ApplianceServer) -> None:
    """Two open sessions fill a repository (429 on the third, also for a monolithic push);
    cancelling one frees its slot; three fill the registry. Abandoned sessions stop counting
    after `uploadidle`, so nobody is locked out."""
    client = V2Client(few_uploads.url)
    first = client.start_upload("caps/a").headers["Location"]
    client.start_upload("caps/a")
    per_repository = "appliance.limits.maxrepositoryuploads"
    _too_many(client.request("POST", "/v2/caps/a/blobs/uploads/"), per_repository)
    monolithic = {"digest": "sha256:" + "0" * 64}
    _too_many(client.request("POST", "/v2/caps/a/blobs/uploads/", params=monolithic, data=b"x"),
              per_repository)
    assert client.request("DELETE", first).status_code == 204
    client.start_upload("caps/a")
    client.start_upload("caps/b")
    _too_many(client.request("POST", "/v2/caps/c/blobs/uploads/"), "appliance.limits.maxuploads")
    time.sleep(UPLOAD_IDLE + 0.5)  # nobody writes to them: they stop counting
    client.push_blob("caps/c", b"after the idle window")
    client.start_upload("caps/a")
