"""The Twisted `Site`: spooled request bodies, size caps and timeouts, one log line per request."""

from __future__ import annotations

import time
from typing import Any

from twisted.logger import Logger
from twisted.web.http import HTTPChannel
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
        keep = site.max_manifest_bytes if _manifest_put(self.channel) else None
        body = self.content = SpooledBody(site.spool_directory, length, keep)
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
                 metrics: Any = None, *, max_manifest_bytes: int | None = None,
                 max_header_bytes: int = 16384, max_headers: int = 500,
                 idle_timeout: float = 60.0, header_timeout: float = 0.0,
                 reactor: Any = None) -> None:
        """`metrics`: an `appliance.metrics.Metrics` that counts every request, or None.
        Of a manifest PUT's body at most `max_manifest_bytes` are spooled (more is refused).
        `max_header_bytes`/`max_headers` cap a request's line and headers (over them: 400 and
        the connection closes); a connection idle for `idle_timeout` seconds is closed, and one
        whose headers take longer than `header_timeout` (0 = no limit) gets 408."""
        super().__init__(resource, timeout=idle_timeout, reactor=reactor)
        self.metrics = metrics
        self.noisy = False
        self.displayTracebacks = False
        self.spool_directory = spool_directory
        self.max_body_bytes = max_body_bytes
        self.max_manifest_bytes = max_manifest_bytes
        self.max_header_bytes = max_header_bytes
        self.max_headers = max_headers
        self.connections = Connections(self.reactor, header_timeout)

    def buildProtocol(self, addr: object) -> object:
        """Each connection is tracked, so a graceful stop can wait for it to close."""
        protocol = super().buildProtocol(addr)
        channel = protocol._channel  # type: ignore[union-attr]  # the HTTP/1.1 channel it wraps
        _limit_headers(channel, self.max_header_bytes, self.max_headers)
        return self.connections.wrap(protocol)

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


def _manifest_put(channel: HTTPChannel) -> bool:
    """Whether the request whose headers just arrived is a manifest PUT. `gotLength` runs before
    the request knows its method and path; only the channel's private attributes have them."""
    return (getattr(channel, "_command", None) == b"PUT"
            and b"/manifests/" in getattr(channel, "_path", b""))


def _limit_headers(channel: HTTPChannel, total: int, count: int) -> None:
    """Twisted's `HTTPChannel` caps headers with class attributes; set them per site. One line
    may be as long as the whole allowance, and a longer one is answered 400 like the other caps
    (`LineReceiver` would drop the connection without a word)."""
    channel.totalHeadersSize = total
    channel.maxHeaders = count
    channel.MAX_LENGTH = total
    channel.lineLengthExceeded = lambda line: channel._respondToBadRequestAndDisconnect()
