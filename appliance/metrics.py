"""Prometheus metrics, on their own registry (not the process-global one), served on
`http.debug.addr` at `http.debug.prometheus.path` when `http.debug.prometheus.enabled`.

Under `serve --workers N` the parent sets `PROMETHEUS_MULTIPROC_DIR` before the workers start:
prometheus_client then keeps every value in a per-process file there, and the exposition sums
the files of all workers (gauges: of the live ones).

Labels stay bounded: routes are handler names (`get_manifest`), never paths; storage
operations are driver method names; endpoints are configured names.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from appliance.storage.driver import PathNotFound

__all__ = ["CONTENT_TYPE_LATEST", "Metrics", "TimedDriver"]

_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
_TIMED = frozenset({"get_content", "put_content", "reader", "writer", "stat", "list", "move",
                    "delete", "walk", "create_exclusive", "put_file", "free_bytes"})


class Metrics:
    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self.requests = Counter("registry_http_requests_total", "HTTP requests answered",
                                ["method", "route", "code"], registry=registry)
        self.latency = Histogram("registry_http_request_duration_seconds",
                                 "Time from the request's headers to its last byte",
                                 ["method", "route"], buckets=_LATENCY, registry=registry)
        self.bytes_in = Counter("registry_http_request_bytes_total", "Request body bytes received",
                                ["route"], registry=registry)
        self.bytes_out = Counter("registry_http_response_bytes_total", "Response bytes sent",
                                 ["route"], registry=registry)
        self.uploads = Gauge("registry_http_uploads_in_progress",
                             "Upload requests (POST, PATCH, PUT of blob data) being handled",
                             registry=registry, multiprocess_mode="livesum")
        self.storage_latency = Histogram("registry_storage_operation_duration_seconds",
                                         "Storage driver call latency", ["driver", "operation"],
                                         buckets=_LATENCY, registry=registry)
        self.storage_errors = Counter("registry_storage_errors_total",
                                      "Storage driver calls that failed (not found is no error)",
                                      ["driver", "operation"], registry=registry)
        self.gc_runs = Counter("registry_gc_runs_total", "Garbage collections run",
                               ["result"], registry=registry)
        self.gc_bytes = Counter("registry_gc_bytes_freed_total", "Bytes freed by garbage collection",
                                registry=registry)
        self.queue = Gauge("registry_notifications_queue_depth",
                           "Events waiting for delivery", ["endpoint"], registry=registry,
                           multiprocess_mode="livemax")  # only the delivering worker sets it
        self.notification_counts = {
            what: Counter(f"registry_notifications_{what}_total", help_text, ["endpoint"],
                          registry=registry)
            for what, help_text in (("delivered", "Events an endpoint accepted"),
                                    ("failures", "Delivery attempts that failed"),
                                    ("dropped", "Events dropped because the queue was full"))
        }
        self.proxy_requests = Counter("registry_proxy_requests_total",
                                      "Pull-through cache lookups by outcome (hit, miss, ...)",
                                      ["kind", "result"], registry=registry)
        self.proxy_bytes = Counter("registry_proxy_fetched_bytes_total",
                                   "Bytes received from the pull-through cache's upstream",
                                   ["kind"], registry=registry)

    def observe_request(self, method: str, route: str, code: int, seconds: float,
                        received: int, sent: int) -> None:
        method = method if method in {"GET", "HEAD", "PUT", "POST", "PATCH", "DELETE",
                                      "OPTIONS"} else "OTHER"
        self.requests.labels(method, route, str(code)).inc()
        self.latency.labels(method, route).observe(seconds)
        self.bytes_in.labels(route).inc(received)
        self.bytes_out.labels(route).inc(sent)

    def observe_notification(self, endpoint: str, what: str, value: float) -> None:
        if what == "queued":
            self.queue.labels(endpoint).set(value)
        else:
            self.notification_counts[what].labels(endpoint).inc(value)

    def observe_proxy(self, kind: str, result: str, fetched: int) -> None:
        """`kind` manifest or blob; `result` hit, miss, revalidated, stale, unknown or error
        (appliance/proxy/cache.py says when)."""
        self.proxy_requests.labels(kind, result).inc()
        if fetched:
            self.proxy_bytes.labels(kind).inc(fetched)

    def observe_gc(self, dry_run: bool, bytes_freed: int, error: str | None) -> None:
        self.gc_runs.labels("error" if error else "dry_run" if dry_run else "ok").inc()
        if not dry_run and not error:
            self.gc_bytes.inc(bytes_freed)

    def exposition(self) -> bytes:
        shared = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if not shared:
            return generate_latest(self.registry)
        every_worker = CollectorRegistry()
        MultiProcessCollector(every_worker, path=shared)
        return generate_latest(every_worker)


class TimedDriver:
    """A storage driver that times every call into `metrics`; all else passes through."""

    def __init__(self, driver: Any, metrics: Metrics) -> None:
        self._driver = driver
        self._metrics = metrics

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._driver, name)
        if name not in _TIMED or not callable(value):
            return value
        return self._timed(name, value)

    def _timed(self, operation: str, function: Callable[..., Any]) -> Callable[..., Any]:
        driver = str(getattr(self._driver, "name", "unknown"))
        latency = self._metrics.storage_latency.labels(driver, operation)
        errors = self._metrics.storage_errors.labels(driver, operation)

        def call(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            except PathNotFound:
                raise
            except Exception:
                errors.inc()
                raise
            finally:
                latency.observe(time.perf_counter() - started)

        return call
