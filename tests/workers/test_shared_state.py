"""What `serve --workers 3` shares between its workers: webhook delivery, /metrics and the
failed-login budget. Every request goes on a new connection, so the kernel spreads them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from appliance.auth import htpasswd
from tests.api.client import digest_of
from tests.observe.receiver import Receiver
from tests.observe.test_health_metrics import scrape, value
from tests.server import ApplianceServer, base_config, free_port
from tests.workers.test_workers import access, fresh, wait_for

USER = ("alice", "alice-password")


@dataclass
class Workers:
    server: ApplianceServer
    receiver: Receiver
    debug_url: str


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:
    workdir = tmp_path_factory.mktemp("shared")
    (workdir / "htpasswd").write_text(f"{USER[0]}:{htpasswd.hash_password(USER[1])}\n")
    receiver = Receiver().start()
    debug_port = free_port()
    config = base_config(workdir)
    config["log"]["formatter"] = "json"
    config["auth"] = {"htpasswd": {"realm": "test", "path": str(workdir / "htpasswd")}}
    config["http"]["debug"] = {"addr": f"127.0.0.1:{debug_port}", "prometheus": {"enabled": True}}
    config["notifications"] = {"endpoints": [{"name": "hook", "url": receiver.url,
                                              "timeout": "2s", "backoff": "100ms"}]}
    server = ApplianceServer(workdir, config, args=["--workers", "3"]).start()
    wait_for(lambda: "all 3 workers are ready" in server.log(), 20)
    try:
        yield Workers(server, receiver, f"http://127.0.0.1:{debug_port}")
    finally:
        server.stop()
        receiver.stop()
    assert "Traceback" not in server.log(), server.log()


def push_blob(server: ApplianceServer, name: str, data: bytes) -> str:
    started = fresh("POST", f"{server.url}/v2/{name}/blobs/uploads/", auth=USER)
    assert started.status_code == 202, started.text
    digest = digest_of(data)
    done = fresh("PUT", started.headers["Location"], params={"digest": digest}, data=data,
                 auth=USER)
    assert done.status_code == 201, done.text
    return digest


def test_every_workers_events_arrive_once_in_order(workers: Workers) -> None:
    """Pushes answered by different workers each send one event; worker 0 delivers them all,
    in the order they were made, none twice."""
    pushed = [push_blob(workers.server, "events/app", os.urandom(64) + bytes([n]))
              for n in range(15)]
    events = workers.receiver.wait_for(15)
    pushes = [e["target"]["digest"] for e in events if e["action"] == "push"]
    assert pushes == pushed
    answered_by = {r["worker"] for r in access(workers.server)
                   if r.get("method") == "PUT" and "/events/app/" in r.get("uri", "")}
    assert len(answered_by) > 1, "all pushes hit one worker: the test proves nothing"
    queued = workers.server.root / "appliance" / "events" / "hook"
    wait_for(lambda: not os.listdir(queued), 5)


def test_metrics_sum_every_worker(workers: Workers) -> None:
    """/metrics on worker 0's debug port counts the requests every worker answered."""
    before = scrape(workers)  # type: ignore[arg-type]
    for _ in range(30):
        assert fresh("GET", f"{workers.server.url}/v2/", auth=USER).status_code == 200
    after = scrape(workers)  # type: ignore[arg-type]
    labels = {"method": "GET", "route": "base", "code": "200"}
    counted = value(after, "registry_http_requests_total", **labels) - value(
        before, "registry_http_requests_total", **labels)
    assert counted == 30
    answered_by = {r["worker"] for r in access(workers.server) if r.get("uri") == "/v2/"}
    assert len(answered_by) > 1


def test_failed_logins_count_across_workers(workers: Workers) -> None:
    """Ten failed logins for one user, spread over the workers, make every worker refuse that
    user's next password checks (each worker alone saw only a few); other users are not locked
    out. (A password already proven in the last minute keeps working: its verdict is cached.)"""
    url = f"{workers.server.url}/v2/"
    for _ in range(10):
        assert fresh("GET", url, auth=(USER[0], "wrong")).status_code == 401
    refused = [fresh("GET", url, auth=(USER[0], "another guess")) for _ in range(6)]
    assert {r.status_code for r in refused} == {429}
    assert all(r.json()["errors"][0]["code"] == "TOOMANYREQUESTS" for r in refused)
    answered_by = {r["worker"] for r in access(workers.server)
                   if r.get("uri") == "/v2/" and r.get("status") in (401, 429)}
    assert len(answered_by) > 1
    assert fresh("GET", url, auth=("mallory", "guess")).status_code == 401


def test_the_shared_folder_goes_when_the_server_stops(tmp_path: Path) -> None:
    """The parent's private folder (logins, metric files) is removed when it stops."""
    config = base_config(tmp_path)
    config["log"]["formatter"] = "json"
    server = ApplianceServer(tmp_path, config, args=["--workers", "2"]).start()
    try:
        wait_for(lambda: "all 2 workers are ready" in server.log(), 20)
        pid = server.process.pid
        child = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()[0]
        args = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        folder = args[args.index(b"--shared-dir") + 1].decode()
        assert os.path.isdir(folder) and oct(os.stat(folder).st_mode & 0o777) == "0o700"
    finally:
        server.stop()
    assert not os.path.exists(folder)
