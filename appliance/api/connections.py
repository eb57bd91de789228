"""The site's open connections and the requests in flight on them, so a stop can drain them.

A graceful stop closes idle keep-alive connections at once, lets each busy one finish its
response (uploads included) and then close, and waits until every connection is gone: the
reactor's own shutdown would cut them off, response bytes still unsent. A connection accepted
just before the stop that has not sent its first request yet is given `FRESH_GRACE` seconds
for it (its request line is usually on the way): closing it at once would reset a client that
did nothing wrong, which with several workers handing over a socket happens often.

With a header timeout, a connection whose request line and headers do not all arrive within it
is answered 408 and closed: Twisted's idle timeout restarts on every byte, so a client that
trickles headers (slowloris) would otherwise hold its connection for ever.
"""

from __future__ import annotations

from twisted.internet import defer
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IProtocol, IReactorTime
from twisted.protocols.policies import ProtocolWrapper
from twisted.protocols.tls import TLSMemoryBIOProtocol
from twisted.python.failure import Failure
from twisted.web.server import Request

__all__ = ["Connections"]

FRESH_GRACE = 2.0


class Connections:
    """Wraps each connection's protocol (L{wrap}) to know when it closes."""

    def __init__(self, clock: IReactorTime | None = None, header_timeout: float = 0) -> None:
        """`header_timeout` (seconds, on `clock`): how long a request's headers may take;
        0 = no limit."""
        self._clock = clock
        self._header_timeout = header_timeout
        self._open: set[ProtocolWrapper] = set()
        self._requests: set[Request] = set()
        self._served: set[object] = set()  # connections that have had a request
        self._waiters: list[Deferred[None]] = []
        self.draining = False

    def __len__(self) -> int:
        """Requests in flight."""
        return len(self._requests)

    def wrap(self, protocol: IProtocol) -> ProtocolWrapper:
        if self._clock is not None and self._header_timeout:
            return _HeaderDeadline(self, protocol, self._clock, self._header_timeout)
        return ProtocolWrapper(self, protocol)  # type: ignore[arg-type]

    def registerProtocol(self, connection: ProtocolWrapper) -> None:
        """Called by the wrapper when its connection is made."""
        self._open.add(connection)

    def unregisterProtocol(self, connection: ProtocolWrapper) -> None:
        """Called by the wrapper when its connection is lost."""
        self._open.discard(connection)
        self._served.discard(connection)
        if not self._open:
            waiters, self._waiters = self._waiters, []
            for waiter in waiters:
                if not waiter.called:
                    waiter.callback(None)

    def started(self, request: Request) -> None:
        """Called once a request's headers are in (`gotLength`), before its body arrives."""
        self._requests.add(request)
        self._served.add(request.channel.transport)
        connection = request.channel.transport
        if isinstance(connection, _HeaderDeadline):
            connection.headers_received(request)
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
            if connection in self._served:
                _close_when_sent(connection)
        if self._open - busy - self._served:
            clock.callLater(FRESH_GRACE, self._close_idle)
        if not self._open:
            return succeed(0)
        closed: Deferred[None] = Deferred()
        self._waiters.append(closed)
        closed.addTimeout(timeout, clock)

        def left(failure: Failure) -> int:
            failure.trap(defer.TimeoutError)
            return len(self._requests)

        return closed.addCallbacks(lambda _: 0, left)

    def _close_idle(self) -> None:
        """Close what still waits for a request; busy ones close after their response."""
        busy = {request.channel.transport for request in self._requests}
        for connection in self._open - busy:
            _close_when_sent(connection)


def _close_when_sent(connection: ProtocolWrapper) -> None:
    """Close a connection with no request (left) on it once what it still buffers is sent.

    Not `abortConnection`: that resets the connection, and a response the server has finished
    but the client has not read yet (it sits in the socket buffers) is lost with it. Over TLS
    not `loseConnection` alone either: that waits for the client's close_notify, which an idle
    keep-alive client never sends, so one such client held every stop for its whole timeout.
    So TLS flushes and sends its close_notify, and the TCP connection below closes after it.
    """
    transport = connection.transport
    transport.loseConnection()
    if isinstance(transport, TLSMemoryBIOProtocol):
        transport.transport.loseConnection()


def _close_after(request: Request) -> None:
    """Close the connection after this response; say so while the headers can still change."""
    request.channel.persistent = False
    if not request.startedWriting:
        request.setHeader(b"connection", b"close")
    connection = request.channel.transport
    request.notifyFinish().addBoth(lambda _: _close_when_sent(connection))


class _HeaderDeadline(ProtocolWrapper):
    """Starts a clock at the first byte of each request; the headers must be in before it rings."""

    def __init__(self, connections: Connections, protocol: IProtocol, clock: IReactorTime,
                 timeout: float) -> None:
        super().__init__(connections, protocol)  # type: ignore[arg-type]
        self._clock = clock
        self._timeout = timeout
        self._deadline: IDelayedCall | None = None
        self._busy = False

    def dataReceived(self, data: bytes) -> None:
        if self._deadline is None and not self._busy:
            self._deadline = self._clock.callLater(self._timeout, self._too_slow)
        super().dataReceived(data)

    def headers_received(self, request: Request) -> None:
        self._stop_clock()
        self._busy = True
        request.notifyFinish().addBoth(self._request_done)

    def _request_done(self, _: object) -> None:
        self._busy = False

    def _too_slow(self) -> None:
        self._deadline = None
        self.transport.write(b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
                             b"Content-Length: 0\r\n\r\n")
        self.transport.loseConnection()

    def _stop_clock(self) -> None:
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None

    def connectionLost(self, reason: Failure) -> None:
        self._stop_clock()
        super().connectionLost(reason)
