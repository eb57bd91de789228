"""The Twisted `Site`: spooled request bodies, a body-size cap, and one log line per request."""

from __future__ import annotations

import time
from typing import Any

from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from .body import SpooledBody
from .connections import Connections
from .resource import RegistryResource

access_log = Logger(namespace="registry.access")


class RegistryRequest(Request):
    user_name = "-"
    route_name = "unknown"  # the handler's name, for metrics: bounded, unlike paths

    def gotLength(self, length: int | None) -> None:
        site: RegistrySite = self.channel.site
        self.started = time.monotonic()
        # Bound to a local: `Request._cleanup` deletes `self.content` before notifying.
        body = self.content = SpooledBody(site.spool_directory, length)
        self.notifyFinish().addBoth(lambda _: body.discard())
        site.connections.started(self)
        if length is not None and site.max_body_bytes and length > site.max_body_bytes:
            self.channel.forceAbortClient()

    def _handleStar(self) -> None:
        """Twisted answers `OPTIONS *` (and 405s other `*` requests) without calling the resource:
        add the headers every response must carry."""
        resource = self.site.resource
        if isinstance(resource, RegistryResource):
            resource.set_common_headers(self)
        super()._handleStar()

    def handleContentChunk(self, data: bytes) -> None:
        site: RegistrySite = self.channel.site
        if site.max_body_bytes and self.content.size + len(data) > site.max_body_bytes:
            self.channel.forceAbortClient()
            return
        self.content.write(data)


class RegistrySite(Site):
    requestFactory = RegistryRequest

    def __init__(self, resource: Resource, spool_directory: str | None, max_body_bytes: int,
                 metrics: Any = None) -> None:
        """`metrics`: an `appliance.metrics.Metrics` that counts every request, or None."""
        super().__init__(resource)
        self.metrics = metrics
        self.noisy = False
        self.displayTracebacks = False
        self.spool_directory = spool_directory
        self.max_body_bytes = max_body_bytes
        self.connections = Connections()

    def buildProtocol(self, addr: object) -> object:
        """Each connection is tracked, so a graceful stop can wait for it to close."""
        return self.connections.wrap(super().buildProtocol(addr))

    def log(self, request: RegistryRequest) -> None:
        started = getattr(request, "started", None)
        if self.metrics is not None:
            content = getattr(request, "content", None)
            self.metrics.observe_request(
                request.method.decode("latin-1"), request.route_name, request.code,
                time.monotonic() - started if started else 0.0,
                getattr(content, "size", 0) or 0, request.sentLength)
        access_log.info(
            "{client} {user} {method} {uri} {status} {bytes_sent} {duration_ms:.1f}ms",
            client=getattr(request.getClientAddress(), "host", None) or "-",  # UNIX peers have none
            user=request.user_name,
            method=request.method.decode("latin-1"),
            uri=request.uri.decode("latin-1"),
            status=request.code,
            bytes_sent=request.sentLength,
            duration_ms=(time.monotonic() - started) * 1000 if started else 0.0,
            user_agent=(request.getHeader("user-agent") or "-"),
        )
