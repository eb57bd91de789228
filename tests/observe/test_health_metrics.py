"""/debug/health and /metrics scraped over real HTTP from a real server process."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from appliance.admin.client import AdminClient
from tests.api.client import DOCKER_MANIFEST, V2Client
from tests.observe.receiver import Receiver
from tests.server import ApplianceServer, base_config, free_port


def listener(port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(16)
    return sock


class Setup:
    def __init__(self, workdir: Path) -> None:
        self.down_file = workdir / "down"
        self.tcp_port = free_port()
        self.tcp = listener(self.tcp_port)
        self.upstream = Receiver().start()
        self.debug_port = free_port()
        config = base_config(workdir)
        config["http"]["debug"] = {"addr": f"127.0.0.1:{self.debug_port}",
                                   "prometheus": {"enabled": True}}
        config["health"] = {
            "storagedriver": {"enabled": True, "interval": "200ms", "threshold": 1},
            "file": [{"file": str(self.down_file), "interval": "100ms"}],
            "tcp": [{"addr": f"127.0.0.1:{self.tcp_port}", "interval": "100ms",
                     "timeout": "1s", "threshold": 2}],
            "http": [{"uri": f"http://127.0.0.1:{self.upstream.port}/ping",
                      "interval": "100ms", "timeout": "1s", "statuscode": 200}],
        }
        # An endpoint that refuses connections, so the queue metrics have something to count.
        config["notifications"] = {"endpoints": [
            {"name": "nowhere", "url": f"http://127.0.0.1:{free_port()}/", "threshold": 1,
             "backoff": "50ms", "timeout": "500ms"}]}
        config["appliance"] = {"gc": {"grace": "0s"}}
        self.server = ApplianceServer(workdir, config)

    @property
    def debug_url(self) -> str:
        return f"http://127.0.0.1:{self.debug_port}"

    def close(self) -> None:
        self.server.stop()
        self.tcp.close()
        self.upstream.stop()


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    started = Setup(tmp_path_factory.mktemp("observe"))
    started.server.start()
    try:
        yield started
    finally:
        started.close()
    assert "Traceback" not in started.server.log(), started.server.log()


def health(url: str) -> tuple[int, Any]:
    response = requests.get(f"{url}/debug/health", timeout=5)
    return response.status_code, response.json()


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def scrape(setup: Setup) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = requests.get(f"{setup.debug_url}/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_healthy_answers_200_on_both_ports(setup: Setup) -> None:
    """With every check passing, /debug/health is 200 {} on the main and the debug port."""
    eventually(lambda: health(setup.debug_url) == (200, {}))
    assert health(setup.server.url) == (200, {})


def test_file_check_turns_unhealthy_and_back(setup: Setup) -> None:
    """While the health.file file exists, health is 503 naming it (and, as in Distribution,
    the registry answers 503 too); once removed, 200 again."""
    setup.down_file.write_text("maintenance")
    try:
        eventually(lambda: health(setup.debug_url)[0] == 503)
        assert health(setup.debug_url) == (503, {str(setup.down_file): "file exists"})
        assert health(setup.server.url) == (503, {str(setup.down_file): "file exists"})
        assert requests.get(f"{setup.server.url}/v2/", timeout=5).status_code == 503
    finally:
        setup.down_file.unlink()
    eventually(lambda: health(setup.debug_url) == (200, {}))
    assert requests.get(f"{setup.server.url}/v2/", timeout=5).status_code == 200


def test_tcp_check_turns_unhealthy_while_the_port_is_closed(setup: Setup) -> None:
    """A closed health.tcp address makes health 503 with its message; reopened, 200."""
    addr = f"127.0.0.1:{setup.tcp_port}"
    setup.tcp.close()
    try:
        eventually(lambda: health(setup.debug_url)[0] == 503)
        assert health(setup.debug_url) == (503, {addr: f"connection to {addr} failed"})
    finally:
        setup.tcp = listener(setup.tcp_port)
    eventually(lambda: health(setup.debug_url) == (200, {}))


def test_http_check_wants_its_status_code(setup: Setup) -> None:
    """A health.http target answering 500 instead of 200 makes health 503 until it recovers."""
    uri = f"http://127.0.0.1:{setup.upstream.port}/ping"
    setup.upstream.status = 500
    try:
        eventually(lambda: health(setup.debug_url)[0] == 503)
        assert health(setup.debug_url) == (
            503, {uri: "downstream service returned unexpected status: 500"})
    finally:
        setup.upstream.status = 200
    eventually(lambda: health(setup.debug_url) == (200, {}))


def test_request_metrics_count_exactly_the_requests_made(setup: Setup) -> None:
    """Counters, latency histogram and bytes for the manifest route go up by exactly what we did;
    unknown paths count under one `unknown` route, not their path."""
    eventually(lambda: health(setup.debug_url) == (200, {}))
    client = V2Client(setup.server.url)
    image = client.push_image("metrics/app", "v1", [b"metrics layer"])
    before = scrape(setup)
    for _ in range(3):
        response = client.request("GET", "/v2/metrics/app/manifests/v1",
                                  headers={"Accept": DOCKER_MANIFEST})
        assert response.status_code == 200
    assert client.request("GET", "/v2/metrics/app/manifests/nope").status_code == 404
    assert client.request("GET", "/v2/no/such/thing/at/all").status_code == 404
    after = scrape(setup)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    ok = {"method": "GET", "route": "get_manifest"}
    assert delta("registry_http_requests_total", **ok, code="200") == 3
    assert delta("registry_http_requests_total", **ok, code="404") == 1
    assert delta("registry_http_requests_total", method="GET", route="unknown", code="404") == 1
    assert delta("registry_http_request_duration_seconds_count", **ok) == 4
    assert delta("registry_http_response_bytes_total", route="get_manifest") >= 3 * len(
        image.manifest)
    assert value(after, "registry_http_request_bytes_total", route="put_manifest") >= len(
        image.manifest)
    assert value(after, "registry_http_uploads_in_progress") == 0
    assert value(after, "registry_storage_operation_duration_seconds_count",
                 driver="filesystem", operation="get_content") > 0
    routes = {labels for (name, labels) in after if name == "registry_http_requests_total"}
    assert all("/" not in dict(labels)["route"] for labels in routes)


def test_gc_and_notification_metrics(setup: Setup) -> None:
    """A GC run and the bytes it freed are counted; a refusing endpoint's queue depth and
    failures show up per endpoint."""
    client = V2Client(setup.server.url)
    orphan = b"an unreferenced blob " * 100
    client.push_blob("metrics/orphan", orphan)
    admin = AdminClient(setup.server.admin_socket)
    before = scrape(setup)
    admin.start_gc()
    eventually(lambda: not admin.gc_status()["running"])
    freed = admin.gc_status()["history"][-1]["bytes_freed"]
    assert freed >= len(orphan)
    after = scrape(setup)
    assert value(after, "registry_gc_runs_total", result="ok") - value(
        before, "registry_gc_runs_total", result="ok") == 1
    assert value(after, "registry_gc_bytes_freed_total") - value(
        before, "registry_gc_bytes_freed_total") == freed
    queued = admin.notifications()["endpoints"][0]["queued"]
    assert queued > 0
    eventually(lambda: value(scrape(setup), "registry_notifications_queue_depth",
                             endpoint="nowhere") == admin.notifications()["endpoints"][0]["queued"])
    eventually(lambda: value(scrape(setup), "registry_notifications_failures_total",
                             endpoint="nowhere") > 0)
