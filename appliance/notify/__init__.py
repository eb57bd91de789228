"""Webhook notifications, as Distribution sends them: events in, one durable queue per endpoint.

The HTTP layer calls `Notifier.emit` after a request succeeded; the domain never sees events.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool

from appliance.config.model import Config, EndpointConfig
from appliance.config.redact import redacted_url

from .events import ACTIONS, BLOB_MEDIA_TYPE, RequestInfo, envelope, make_event
from .queue import Endpoint, Post

__all__ = ["ACTIONS", "BLOB_MEDIA_TYPE", "Notifier", "RequestInfo", "treq_post"]

log = Logger()


def treq_post(reactor: Any) -> Post:
    """POST with treq over one persistent connection pool; fires with the status code."""
    import treq
    from twisted.web.client import Agent, HTTPConnectionPool

    pool = HTTPConnectionPool(reactor, persistent=True)
    pool.maxPersistentPerHost = 2
    client = treq.client.HTTPClient(Agent(reactor, pool=pool))

    async def post(url: str, body: bytes, headers: dict[bytes, list[bytes]],
                   timeout: float) -> int:
        response = await client.post(url, data=body, headers=headers, timeout=timeout)
        await treq.content(response)  # read it all so the connection can be reused
        return int(response.code)

    return lambda url, body, headers, timeout: Deferred.fromCoroutine(
        post(url, body, headers, timeout))


class Notifier:
    """Fans each event out to the endpoints that do not ignore it."""

    def __init__(self, config: Config, reactor: Any, post: Post | None = None,
                 observe: Callable[[str, str, float], None] = lambda name, what, value: None,
                 source_addr: str | None = None, worker: int = 0, delivers: bool = True,
                 poll: float | None = None) -> None:
        settings = config.appliance.notifications
        self.media_type = settings.mediatype
        self.include_references = config.notifications.include_references
        self.source = {"addr": source_addr or f"{socket.gethostname()}:{_port(config.http.addr)}",
                       "instanceID": str(uuid.uuid4())}
        self._files = ThreadPool(minthreads=0, maxthreads=1, name="events")
        self._reactor = reactor
        self.delivers = delivers
        self.disabled: list[EndpointConfig] = []
        self.endpoints: list[Endpoint] = []
        post = post or treq_post(reactor)
        for endpoint in config.notifications.endpoints:
            if endpoint.disabled:
                self.disabled.append(endpoint)
                continue
            self.endpoints.append(Endpoint(
                endpoint, os.path.join(settings.statedir, endpoint.name), settings.maxqueue,
                self.media_type, post, reactor, self._files, observe, worker, delivers, poll))

    @property
    def enabled(self) -> bool:
        return bool(self.endpoints)

    async def start(self) -> None:
        if not self.endpoints:
            return
        self._files.start()
        self._reactor.addSystemEventTrigger("after", "shutdown", self._files.stop)
        for endpoint in self.endpoints:
            await endpoint.start()
            if self.delivers:
                log.info("notifications: sending events to {name} ({url})",
                         name=endpoint.name, url=redacted_url(endpoint.config.url))

    def stop(self) -> None:
        for endpoint in self.endpoints:
            endpoint.stop()

    def emit(self, action: str, target: dict[str, Any], request: RequestInfo) -> None:
        """Queue an event for every endpoint that does not ignore its action or media type."""
        if not self.endpoints:
            return
        event = make_event(action, target, request, self.source, self.media_type)
        body = envelope([event])
        description = f"{action} event {event['id']} for {target.get('repository', '')}"
        media_type = target.get("mediaType")
        for endpoint in self.endpoints:
            if action in endpoint.config.ignored_actions:
                continue
            if media_type and media_type in endpoint.config.ignored_media_types:
                continue
            endpoint.enqueue(body, description)

    def status(self) -> dict[str, Any]:
        """For the admin API; a password in an endpoint's URL is redacted."""
        disabled = [{"name": e.name, "url": e.url, "disabled": True} for e in self.disabled]
        endpoints = [e.status() for e in self.endpoints] + disabled
        return {"mediatype": self.media_type,
                "endpoints": [{**e, "url": redacted_url(e["url"])} for e in endpoints]}


def _port(addr: str) -> str:
    return addr.rpartition(":")[2] or addr
