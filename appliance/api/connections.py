"""The site's open connections and the requests in flight on them, so a stop can drain them.

A graceful stop closes idle keep-alive connections at once, lets each busy one finish its
response (uploads included) and then close, and waits until every connection is gone: the
reactor's own shutdown would cut them off, response bytes still unsent.
"""

from __future__ import annotations

from twisted.internet import defer
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IProtocol, IReactorTime
from twisted.protocols.policies import ProtocolWrapper
from twisted.python.failure import Failure
from twisted.web.server import Request

__all__ = ["Connections"]


class Connections:
    """Wraps each connection's protocol (L{wrap}) to know when it closes."""

    def __init__(self) -> None:
        self._open: set[ProtocolWrapper] = set()
        self._requests: set[Request] = set()
        self._waiters: list[Deferred[None]] = []
        self.draining = False

    def __len__(self) -> int:
        """Requests in flight."""
        return len(self._requests)

    def wrap(self, protocol: IProtocol) -> ProtocolWrapper:
        return ProtocolWrapper(self, protocol)  # type: ignore[arg-type]

    def registerProtocol(self, connection: ProtocolWrapper) -> None:
        """Called by the wrapper when its connection is made."""
        self._open.add(connection)

    def unregisterProtocol(self, connection: ProtocolWrapper) -> None:
        """Called by the wrapper when its connection is lost."""
        self._open.discard(connection)
        if not self._open:
            waiters, self._waiters = self._waiters, []
            for waiter in waiters:
                if not waiter.called:
                    waiter.callback(None)

    def started(self, request: Request) -> None:
        """Called once a request's headers are in (`gotLength`), before its body arrives."""
        self._requests.add(request)
        if self.draining:
            _close_after(request)
        request.notifyFinish().addBoth(lambda _: self._requests.discard(request))

    def drain(self, clock: IReactorTime, timeout: float) -> Deferred[int]:
        """Fires with 0 once every connection has closed, or with the requests left at `timeout`."""
        self.draining = True
        for request in self._requests:
            _close_after(request)
        busy = {request.channel.transport for request in self._requests}
        for connection in self._open - busy:
            connection.loseConnection()
        if not self._open:
            return succeed(0)
        closed: Deferred[None] = Deferred()
        self._waiters.append(closed)
        closed.addTimeout(timeout, clock)

        def left(failure: Failure) -> int:
            failure.trap(defer.TimeoutError)
            return len(self._requests)

        return closed.addCallbacks(lambda _: 0, left)


def _close_after(request: Request) -> None:
    """Close the connection after this response; say so while the headers can still change."""
    request.channel.persistent = False
    if not request.startedWriting:
        request.setHeader(b"connection", b"close")
