"""A graceful stop does not wait on idle keep-alive clients, over TLS too (found by the soak:
a TLS close waits for the client's close_notify, which an idle client never sends)."""

from __future__ import annotations

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
