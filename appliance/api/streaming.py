"""Send a blob to a client: reads in the storage thread pool, writes as fast as the client takes.

Drivers' readers block (a local file, an S3 or Swift response body), so reads never run on
the reactor. The next chunk is read while the current one is being sent, and sending pauses
whenever the transport's buffer is full (push-producer backpressure), so memory stays at a
few chunks per download whatever the blob's size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, BinaryIO

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IPushProducer
from twisted.web.server import Request
from zope.interface import implementer

CHUNK = 256 * 1024


@implementer(IPushProducer)
class _Backpressure:
    """Turns the transport's pause/resume calls into something a coroutine can await."""

    def __init__(self) -> None:
        self.stopped = False
        self._paused: Deferred[None] | None = None

    def writable(self) -> Deferred[None]:
        return self._paused if self._paused is not None else succeed(None)

    def pauseProducing(self) -> None:
        if self._paused is None:
            self._paused = Deferred()

    def resumeProducing(self) -> None:
        paused, self._paused = self._paused, None
        if paused is not None:
            paused.callback(None)

    def stopProducing(self) -> None:
        self.stopped = True
        self.resumeProducing()


async def send(source: BinaryIO, length: int, request: Request,
               in_pool: Callable[..., Deferred[Any]]) -> None:
    """Write `length` bytes of `source` to `request`; `in_pool` runs a call in the thread pool."""
    flow = _Backpressure()
    request.registerProducer(flow, True)
    remaining = length
    pending: Deferred[bytes] | None = in_pool(source.read, min(CHUNK, remaining))
    try:
        while pending is not None and not flow.stopped:
            chunk, pending = await pending, None
            if not chunk:
                raise OSError(f"blob ended {remaining} bytes early")
            remaining -= len(chunk)
            if remaining > 0:
                pending = in_pool(source.read, min(CHUNK, remaining))
            request.write(chunk)
            await flow.writable()
    finally:
        request.unregisterProducer()
        closing = pending if pending is not None else succeed(b"")
        closing.addBoth(lambda _: in_pool(source.close))
