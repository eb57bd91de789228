"""`serve --workers 3`: real worker processes sharing one port and one filesystem root."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from appliance.admin.client import AdminClient
from tests.api.client import digest_of
from tests.server import ApplianceServer, base_config

WORKERS = 3


@pytest.fixture
def server(tmp_path: Any) -> Iterator[ApplianceServer]:
    config = base_config(tmp_path)
    config["log"]["formatter"] = "json"  # every line names its worker
    running = ApplianceServer(tmp_path, config, args=["--workers", str(WORKERS)]).start()
    wait_for(lambda: "all 3 workers are ready" in running.log(), 20)
    try:
        yield running
    finally:
        running.stop()
    assert "Traceback" not in running.log(), running.log()


def wait_for(check: Callable[[], bool], timeout: float) -> float:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, "not seen in time"
        time.sleep(0.05)
    return time.monotonic() - started


def records(server: ApplianceServer) -> list[dict[str, Any]]:
    lines = []
    for line in server.log().splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            continue
    return lines


def access(server: ApplianceServer) -> list[dict[str, Any]]:
    return [r for r in records(server) if r.get("logger") == "registry.access"]


def worker_pids(server: ApplianceServer) -> dict[int, int]:
    """The latest pid of each worker, from the supervisor's "started worker" lines."""
    pids = {}
    for record in records(server):
        if record.get("logger") == "appliance.workers" and record["msg"].startswith("started "):
            pids[record["index"]] = record["pid"]
    return pids


def fresh(method: str, url: str, **kwargs: Any) -> requests.Response:
    """One request on its own connection, so the kernel may hand it to any worker."""
    headers = {"Connection": "close", **kwargs.pop("headers", {})}
    return requests.request(method, url, headers=headers, timeout=30, allow_redirects=False,
                            **kwargs)


def chunked_upload(server: ApplianceServer, name: str, chunks: list[bytes]) -> str:
    """POST, one PATCH per chunk, PUT: each on a new connection. Returns the upload's uuid."""
    started = fresh("POST", f"{server.url}/v2/{name}/blobs/uploads/")
    assert started.status_code == 202, started.text
    location, uuid = started.headers["Location"], started.headers["Docker-Upload-UUID"]
    offset = 0
    for chunk in chunks:
        target = location if location.startswith("http") else server.url + location
        response = fresh("PATCH", target, data=chunk, headers={
            "Content-Type": "application/octet-stream",
            "Content-Range": f"{offset}-{offset + len(chunk) - 1}"})
        assert response.status_code == 202, response.text
        offset += len(chunk)
        location = response.headers["Location"]
    digest = digest_of(b"".join(chunks))
    target = location if location.startswith("http") else server.url + location
    done = fresh("PUT", target, params={"digest": digest})
    assert done.status_code == 201, done.text
    return uuid


def test_concurrent_chunked_uploads_spread_over_workers(server: ApplianceServer) -> None:
    """24 chunked uploads at once, every request on a new connection, land on several workers
    (one upload's PATCHes too) and each blob reads back with its digest."""
    uploads = [[os.urandom(256 * 1024 + n) for n in range(4)] for _ in range(24)]

    def push(index: int) -> tuple[str, list[bytes]]:
        return chunked_upload(server, f"spread/app{index % 4}", uploads[index]), uploads[index]

    with ThreadPoolExecutor(8) as pool:
        done = list(pool.map(push, range(len(uploads))))
    for index, (_, chunks) in enumerate(done):
        blob = b"".join(chunks)
        response = fresh("GET", f"{server.url}/v2/spread/app{index % 4}/blobs/{digest_of(blob)}")
        assert response.status_code == 200
        assert digest_of(response.content) == digest_of(blob)
    lines = [r for r in access(server) if "/blobs/uploads/" in r.get("uri", "")]
    assert len({r["worker"] for r in lines}) > 1
    per_upload: dict[str, set[str]] = {}
    for record in lines:
        match = re.search(r"/blobs/uploads/([0-9a-f-]{36})", record["uri"])
        if match:
            per_upload.setdefault(match.group(1), set()).add(record["worker"])
    assert any(len(workers) > 1 for workers in per_upload.values()), "no upload changed workers"


def test_read_only_reaches_every_worker(server: ApplianceServer) -> None:
    """Read-only switched on through the admin API (worker 0's socket) is obeyed by all three
    workers as soon as the API has answered; switched off, all of them accept uploads again."""
    post = f"{server.url}/v2/ro/app/blobs/uploads/"
    AdminClient(server.admin_socket).set_readonly(True)
    try:
        seen: set[str] = set()
        before = len(access(server))
        for _ in range(20):
            with ThreadPoolExecutor(6) as pool:
                statuses = list(pool.map(lambda _: fresh("POST", post).status_code, range(12)))
            assert set(statuses) == {405}
            seen = {r["worker"] for r in access(server)[before:] if r["uri"].startswith("/v2/ro/")}
            if len(seen) == WORKERS:
                break
        assert seen == {"0", "1", "2"}
    finally:
        AdminClient(server.admin_socket).set_readonly(False)
    with ThreadPoolExecutor(6) as pool:
        assert set(pool.map(lambda _: fresh("POST", post).status_code, range(12))) == {202}


def test_a_killed_worker_is_restarted(server: ApplianceServer) -> None:
    """SIGKILL of one worker: the supervisor logs it and starts a new one; requests keep working."""
    victim = worker_pids(server)[1]
    os.kill(victim, signal.SIGKILL)
    for _ in range(20):
        assert fresh("GET", f"{server.url}/v2/").status_code == 200
    wait_for(lambda: worker_pids(server)[1] != victim, 10)
    assert f"worker 1 (pid {victim}) exited with status -9; restarting it" in server.log()
    wait_for(lambda: sum("registry-appliance listening" in r["msg"]
                         for r in records(server)) == 4, 20)
    assert chunked_upload(server, "after/kill", [os.urandom(1000), os.urandom(1000)])


def test_sigterm_stops_every_worker(server: ApplianceServer) -> None:
    """SIGTERM to the supervisor stops all workers gracefully and the parent exits 0."""
    pids = worker_pids(server)
    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(20) == 0
    for pid in pids.values():
        wait_for(lambda pid=pid: not os.path.exists(f"/proc/{pid}") or _zombie(pid), 5)
    assert "all workers stopped" in server.log()


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True
