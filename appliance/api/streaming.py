"""Send a file-like object to a request with backpressure, in large chunks."""

from __future__ import annotations

from typing import BinaryIO

from twisted.internet.defer import Deferred
from twisted.web.server import Request
from zope.interface import implementer
from twisted.internet.interfaces import IPullProducer

CHUNK = 256 * 1024


@implementer(IPullProducer)
class RangeSender:
    """Writes `length` bytes from `source` when the transport asks for more (pull producer)."""

    def __init__(self, source: BinaryIO, length: int, request: Request) -> None:
        self._source = source
        self._remaining = length
        self._request = request
        self.done: Deferred[None] = Deferred()
        request.registerProducer(self, False)

    def resumeProducing(self) -> None:
        if self.done.called:
            return
        chunk = self._source.read(min(CHUNK, self._remaining)) if self._remaining else b""
        if not chunk:
            self._finish()
            return
        self._remaining -= len(chunk)
        self._request.write(chunk)

    def stopProducing(self) -> None:
        """The client went away."""
        self._finish()

    def _finish(self) -> None:
        if self.done.called:
            return
        self._source.close()
        self._request.unregisterProducer()
        self.done.callback(None)
