"""Blobs streamed from the upstream while stored: a corrupt upstream stores nothing and the
client never gets a complete wrong blob; a client that leaves mid-way leaves nothing
half-written visible, and the fetch still completes into the cache."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.server import ApplianceServer

from .servers import cache, serving

GOOD = bytes(range(256)) * 4096  # 1 MiB
DIGEST = "sha256:" + hashlib.sha256(GOOD).hexdigest()


class FakeUpstream:
    """`library/bad` serves other bytes than the digest says; `library/slow` serves GOOD in
    16 pieces, the last one only once `release` is set. Counts blob requests."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.hits: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                owner.hits.append(self.path)
                if self.path.startswith("/v2/library/bad/blobs/"):
                    body = GOOD[:-1] + b"!"
                    self._head(200, len(body))
                    self.wfile.write(body)
                elif self.path.startswith("/v2/library/slow/blobs/") and len(owner.hits) == 1:
                    self._head(200, len(GOOD))
                    piece = len(GOOD) // 16
                    for start in range(0, len(GOOD), piece):
                        if start + piece >= len(GOOD):
                            owner.release.wait(30)
                        self.wfile.write(GOOD[start:start + piece])
                        self.wfile.flush()
                else:
                    self._head(404, 0)

            def _head(self, status: int, length: int) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(length))
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeUpstream:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture
def mirror(tmp_path: Path, upstream: FakeUpstream) -> Iterator[ApplianceServer]:
    with serving(cache(tmp_path / "cache", upstream.url, credentials=False)) as server:
        yield server


def stored(server: ApplianceServer) -> Path:
    return server.root / f"docker/registry/v2/blobs/sha256/{DIGEST[7:9]}/{DIGEST[7:]}/data"


def incoming(server: ApplianceServer) -> list[Path]:
    folder = server.root / "appliance/proxy/incoming"
    return list(folder.iterdir()) if folder.exists() else []


def test_corrupt_upstream_blob_is_not_stored(
        upstream: FakeUpstream, mirror: ApplianceServer) -> None:
    """Bytes that do not match the digest: the client's download breaks short of the end and
    nothing is kept; the next request goes upstream again."""
    for attempt in (1, 2):
        try:
            response = requests.get(f"{mirror.url}/v2/hub/library/bad/blobs/{DIGEST}", timeout=30)
            body = response.content
        except requests.exceptions.RequestException:
            body = b""
        assert len(body) < len(GOOD)
        assert len(upstream.hits) == attempt
    assert not stored(mirror).exists()
    assert incoming(mirror) == []


def test_client_leaving_midway(upstream: FakeUpstream, mirror: ApplianceServer) -> None:
    """The client reads a little and hangs up: no blob is visible until the whole fetch is
    verified; then it is cached and served without the upstream."""
    with socket.create_connection(("127.0.0.1", mirror.port), timeout=10) as sock:
        sock.sendall(f"GET /v2/hub/library/slow/blobs/{DIGEST} HTTP/1.1\r\n"
                     f"Host: 127.0.0.1\r\n\r\n".encode())
        assert sock.recv(65536)
    time.sleep(0.5)
    assert not stored(mirror).exists()
    upstream.release.set()
    deadline = time.monotonic() + 20
    while not stored(mirror).exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert stored(mirror).read_bytes() == GOOD
    served = requests.get(f"{mirror.url}/v2/hub/library/slow/blobs/{DIGEST}", timeout=30)
    assert served.content == GOOD
    assert len(upstream.hits) == 1
    assert incoming(mirror) == []
