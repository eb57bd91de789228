"""A graceful stop does not wait on idle keep-alive clients, over TLS too (found by the soak:
a TLS close waits for the client's close_notify, which an idle client never sends)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.api.client import V2Client
from tests.server import ApplianceServer, base_config

from .tls import enable_tls

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("tls", [True, False], ids=["tls", "plain"])
def test_sigterm_with_idle_keepalive_clients_stops_at_once(tmp_path: Path, tls: bool) -> None:
    """SIGTERM with idle keep-alive connections open: the server exits 0 well before the
    30 s shutdown timeout."""
    config = base_config(tmp_path)
    verify: str | bool = False
    if tls:
        verify = str(enable_tls(config, tmp_path / "certs").ca_cert)
    server = ApplianceServer(tmp_path / "server", config, args=["--workers", "2"]).start()
    clients = [V2Client(server.url, verify=verify) for _ in range(4)]
    for client in clients:  # each keeps its connection open, idle, after this
        assert client.request("GET", "/v2/").status_code == 200
    assert server.process is not None
    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    code = server.process.wait(timeout=40)
    took = time.monotonic() - started
    assert code == 0
    assert took < 10, f"stop took {took:.1f} s"
    assert "Traceback" not in server.log()


@pytest.mark.parametrize("tls", [True, False], ids=["tls", "plain"])
def test_sigterm_keeps_a_finished_response_the_client_has_not_read_yet(
        tmp_path: Path, tls: bool) -> None:
    """A blob GET the server has finished sending (the bytes wait in the socket buffers) when
    SIGTERM comes: the client still reads all of it (found in CI: an idle connection was
    reset, and its unread response with it)."""
    config = base_config(tmp_path)
    verify: str | bool = False
    if tls:
        verify = str(enable_tls(config, tmp_path / "certs").ca_cert)
    server = ApplianceServer(tmp_path / "server", config, args=["--workers", "1"]).start()
    try:
        client = V2Client(server.url, verify=verify)
        blob = os.urandom(300_000)
        digest = client.push_blob("team/app", blob)
        response = client.session.get(f"{server.url}/v2/team/app/blobs/{digest}", verify=verify,
                                      stream=True, timeout=30)
        assert response.status_code == 200
        deadline = time.monotonic() + 10
        while f"GET /v2/team/app/blobs/{digest} 200" not in server.log():
            assert time.monotonic() < deadline, "the blob GET was never logged as done"
            time.sleep(0.05)
        assert server.process is not None
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=40) == 0
        assert response.raw.read() == blob
    finally:
        server.stop()


def test_sigterm_during_a_download_lets_it_finish_then_stops_at_once(tmp_path: Path) -> None:
    """SIGTERM while a TLS client is still downloading a blob (its response already promised
    keep-alive): the download completes, and the server does not then wait the shutdown timeout
    for the client, idle in its pool, to answer the TLS close."""
    config = base_config(tmp_path)
    verify = str(enable_tls(config, tmp_path / "certs").ca_cert)
    server = ApplianceServer(tmp_path / "server", config, args=["--workers", "1"]).start()
    try:
        client = V2Client(server.url, verify=verify)
        blob = os.urandom(32 * 1024 * 1024)
        digest = client.push_blob("team/app", blob)
        response = client.session.get(f"{server.url}/v2/team/app/blobs/{digest}", verify=verify,
                                      stream=True, timeout=30)
        assert response.status_code == 200
        assert "close" not in response.headers.get("Connection", "")
        first = response.raw.read(1024 * 1024)
        assert server.process is not None
        server.process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        time.sleep(0.5)  # the stop has begun while the response is still being sent
        assert server.process.poll() is None
        assert first + response.raw.read() == blob
        response.close()  # back to the pool, open and idle: this client never closes it
        assert server.process.wait(timeout=40) == 0
        took = time.monotonic() - started
        assert took < 10, f"stop took {took:.1f} s"
    finally:
        server.stop()
