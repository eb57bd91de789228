"""Zero-downtime upgrade with socket activation: the listening socket outlives the server.

The test plays systemd: it binds the socket itself and hands it to each server as fd 3.
A new server starts on the same socket, then the old one gets SIGTERM, while a client pulls an
image in a loop, each request on a new connection; not one request may fail.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.api.client import DOCKER_MANIFEST, V2Client
from tests.e2e import tools

from .harness import SOURCE, start_server


class Puller(threading.Thread):
    """Pulls manifest and blobs in a loop (bounded) and records every failure."""

    def __init__(self, url: str, ca: str, repository: str) -> None:
        super().__init__(daemon=True)
        self.url, self.ca, self.repository = url, ca, repository
        self.pulls = 0
        self.failures: list[str] = []
        self.halt = threading.Event()

    def get(self, path: str, **headers: str) -> bytes:
        response = requests.get(self.url + path, headers=headers, verify=self.ca, timeout=10)
        if response.status_code != 200:
            raise AssertionError(f"{path}: {response.status_code} {response.text[:200]}")
        return response.content

    def run(self) -> None:
        deadline = time.monotonic() + 120
        while not self.halt.is_set() and time.monotonic() < deadline:
            try:
                path = f"/v2/{self.repository}/manifests/v1"
                manifest = json.loads(self.get(path, Accept=DOCKER_MANIFEST))
                for blob in (manifest["config"], *manifest["layers"]):
                    self.get(f"/v2/{self.repository}/blobs/{blob['digest']}")
                self.pulls += 1
            except Exception as error:  # every kind of failure is what the test looks for
                self.failures.append(repr(error))

    def wait_for_pulls(self, more: int) -> None:
        target = self.pulls + more
        tools.wait_for(lambda: self.pulls >= target or self.failures, timeout=60,
                       what=f"{more} pulls")


@pytest.mark.parametrize("build", ["source", pytest.param("binary", marks=pytest.mark.e2e)])
def test_restart_on_an_inherited_socket_fails_no_request(
    build: str, request: pytest.FixtureRequest, tls_config: dict[str, Any], workdir: Path
) -> None:
    """Old server SIGTERMed once the new one is ready on the same socket: every pull succeeds,
    both servers answered some, and neither bound http.addr."""
    command = SOURCE if build == "source" else (str(request.getfixturevalue("frozen_binary")),)
    listening = socket.create_server(("127.0.0.1", 0), backlog=128)
    url = f"https://localhost:{listening.getsockname()[1]}"
    ca = str(Path(tls_config["http"]["tls"]["certificate"]).with_name("ca.crt"))
    servers = []
    try:
        old = start_server(command, tls_config, workdir / "old", listening)
        servers.append(old)
        old.ready()
        layers = [os.urandom(4096), os.urandom(300_000)]
        V2Client(url, verify=ca).push_image("team/app", "v1", layers)
        puller = Puller(url, ca, "team/app")
        puller.start()
        puller.wait_for_pulls(5)

        tls_config["appliance"]["admin"]["socket"] = str(workdir / "admin-new.sock")
        new = start_server(command, tls_config, workdir / "new", listening)
        servers.append(new)
        new.ready()
        puller.wait_for_pulls(5)
        old.process.send_signal(signal.SIGTERM)
        old.notify.wait_for("STOPPING=1", 10)
        assert old.process.wait(60) == 0
        puller.wait_for_pulls(10)
        puller.halt.set()
        puller.join(30)

        assert puller.failures == []
        assert "GET /v2/team/app/blobs/" in old.log()
        assert "GET /v2/team/app/blobs/" in new.log()
        host, port = tls_config["http"]["addr"].rsplit(":", 1)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((host, int(port)), timeout=2)
    finally:
        for server in servers:
            server.stop()
        listening.close()
