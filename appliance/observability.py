"""Webhooks, health checks and metrics, wired together for one server process.

Metrics exist only with `http.debug.prometheus.enabled`; health checks with a `health:`
section (an empty set always reports healthy); notifications with enabled endpoints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twisted.internet import endpoints
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool
from twisted.web.server import Site

from appliance.api.debug import DebugResource
from appliance.config import Config
from appliance.health import HealthChecks
from appliance.metrics import Metrics
from appliance.notify import Notifier
from appliance.workers import WorkerRole

__all__ = ["Observability", "new_metrics"]

log = Logger()
EVENT_POLL = 0.5  # with workers, how soon worker 0 sends an event another worker queued


def new_metrics(config: Config) -> Metrics | None:
    return Metrics() if config.http.debug.prometheus.enabled else None


class _QuietSite(Site):
    """Scrapes and probes every few seconds would drown the access log."""

    def log(self, request: Any) -> None:
        pass


@dataclass
class Observability:
    metrics: Metrics | None
    notifier: Notifier
    health: HealthChecks

    @classmethod
    def build(cls, config: Config, reactor: Any, driver: Any, pool: ThreadPool,
              metrics: Metrics | None, role: WorkerRole = WorkerRole()) -> Observability:
        observe = metrics.observe_notification if metrics is not None else (
            lambda name, what, value: None)
        notifier = Notifier(config, reactor, observe=observe, worker=role.index,
                            delivers=role.delivers_events,
                            poll=EVENT_POLL if role.shared_dir else None)
        health = HealthChecks.from_config(
            config.health, reactor, driver,
            lambda function, *args: deferToThreadPool(reactor, pool, function, *args))
        return cls(metrics, notifier, health)

    async def start(self, config: Config, reactor: Any, maintenance: Any) -> None:
        """Start checks and deliveries, and listen on `http.debug.addr` when it is set."""
        if self.metrics is not None:
            maintenance.gc_listeners.append(self.metrics.observe_gc)
        self.health.start()
        await self.notifier.start()
        reactor.addSystemEventTrigger("before", "shutdown", self.health.stop)
        reactor.addSystemEventTrigger("before", "shutdown", self.notifier.stop)
        debug = config.http.debug
        if not debug.addr:
            return
        host, _, port = debug.addr.rpartition(":")
        host = host.strip("[]") or "0.0.0.0"
        site = _QuietSite(DebugResource(self.health, self.metrics, debug.prometheus.path))
        site.noisy = False
        endpoint = (endpoints.TCP6ServerEndpoint if ":" in host else endpoints.TCP4ServerEndpoint)(
            reactor, int(port), interface=host)
        listening = await endpoint.listen(site)
        reactor.addSystemEventTrigger("before", "shutdown", listening.stopListening)
        address = listening.getHost()
        log.info("debug server on http://{host}:{port} (/debug/health{metrics})",
                 host=address.host, port=address.port,
                 metrics=f", {debug.prometheus.path}" if self.metrics is not None else "")
