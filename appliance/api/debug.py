"""`/debug/health` and `/metrics`: the resources of `http.debug.addr` (health is on the main
port too, as in Distribution)."""

from __future__ import annotations

import json

from twisted.web.resource import Resource
from twisted.web.server import Request

from appliance.health import HealthChecks
from appliance.metrics import CONTENT_TYPE_LATEST, Metrics

HEALTH_PATH = b"/debug/health"


def render_health(health: HealthChecks | None, request: Request) -> bytes:
    """200 `{}` when every check passes, else 503 with the failing checks' messages."""
    failing = health.failing() if health is not None else {}
    request.setResponseCode(503 if failing else 200)
    request.setHeader("Content-Type", "application/json; charset=utf-8")
    request.setHeader("Cache-Control", "no-cache")
    body = json.dumps(failing).encode()
    request.setHeader("Content-Length", str(len(body)))
    return b"" if request.method == b"HEAD" else body


class DebugResource(Resource):
    isLeaf = True

    def __init__(self, health: HealthChecks | None, metrics: Metrics | None,
                 metrics_path: str) -> None:
        super().__init__()
        self._health = health
        self._metrics = metrics
        self._metrics_path = metrics_path.encode()

    def render(self, request: Request) -> bytes:
        if request.method not in (b"GET", b"HEAD"):
            request.setResponseCode(405)
            request.setHeader("Allow", "GET, HEAD")
            return b""
        if request.path == HEALTH_PATH:
            return render_health(self._health, request)
        if self._metrics is not None and request.path == self._metrics_path:
            body = self._metrics.exposition()
            request.setHeader("Content-Type", CONTENT_TYPE_LATEST)
            request.setHeader("Content-Length", str(len(body)))
            return b"" if request.method == b"HEAD" else body
        request.setResponseCode(404)
        request.setHeader("Content-Type", "text/plain; charset=utf-8")
        return b"404 page not found\n"
