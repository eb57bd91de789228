"""`serve --workers 3` under a (fake) systemd, on a socket-activated TLS socket."""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.e2e import tools
from tests.packaging.harness import SOURCE, start_server
from tests.server import base_config


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = tools.scratch_dir("wrk")
    yield path
    tools.remove_tree(path)


def test_ready_reload_and_stop_cover_every_worker(workdir: Path) -> None:
    """READY=1 comes once all three workers listen on the inherited socket (TLS on each);
    SIGHUP gives RELOADING=1 then READY=1 after every worker reloaded; SIGTERM gives
    STOPPING=1, the parent exits 0 and the port refuses connections."""
    certs = tools.make_certs(workdir / "certs")
    config = base_config(workdir)
    config["http"]["tls"] = {"certificate": str(certs.server_cert), "key": str(certs.server_key)}
    config["appliance"] = {"admin": {"socket": str(workdir / "admin.sock")}}
    listening = socket.create_server(("127.0.0.1", 0), backlog=128)
    port = listening.getsockname()[1]
    server = start_server(SOURCE, config, workdir / "server", listening, args=["--workers", "3"])
    listening.close()  # the server holds it now, as systemd would
    try:
        server.ready()
        assert server.log().count("registry-appliance listening on https://") == 3
        assert server.notify.received == ["READY=1\nSTATUS=serving with 3 workers"]
        for _ in range(12):
            response = requests.get(f"https://localhost:{port}/v2/", verify=str(certs.ca_cert),
                                    headers={"Connection": "close"}, timeout=10)
            assert response.status_code == 200

        server.process.send_signal(signal.SIGHUP)
        assert server.notify.wait_for("READY=1", 20) == ["RELOADING=1", "READY=1"]
        assert server.log().count("reloaded htpasswd, TLS certificate") == 3

        server.process.send_signal(signal.SIGTERM)
        server.notify.wait_for("STOPPING=1", 10)
        assert server.process.wait(30) == 0
        assert "all workers stopped" in server.log()
        time.sleep(0.2)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2)
    finally:
        server.stop()
