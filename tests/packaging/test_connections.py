"""Connections: a graceful stop closes idle connections and waits for busy ones, up to a timeout."""

from __future__ import annotations

from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from appliance.api.connections import FRESH_GRACE
from appliance.api.site import RegistrySite


class Held(Resource):
    """Answers nothing until the test finishes the request."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[Request] = []

    def render(self, request: Request) -> object:
        self.requests.append(request)
        return NOT_DONE_YET


def connect(site: RegistrySite) -> tuple[object, StringTransport]:
    protocol, transport = site.buildProtocol(None), StringTransport()
    protocol.makeConnection(transport)
    return protocol, transport


def test_drain_closes_idle_connections_and_waits_for_busy_ones() -> None:
    """Idle keep-alive connections close at once; a busy one answers with Connection: close,
    then closes, and only then does the drain fire."""
    held, clock = Held(), Clock()
    site = RegistrySite(held, None, 0)
    idle, idle_transport = connect(site)
    idle.dataReceived(b"GET /v2/ HTTP/1.1\r\nHost: registry\r\n\r\n")
    held.requests.pop().finish()  # answered: now an idle keep-alive connection
    busy, busy_transport = connect(site)
    busy.dataReceived(b"GET /v2/ HTTP/1.1\r\nHost: registry\r\n\r\n")
    assert len(site.connections) == 1

    done = site.connections.drain(clock, 30)
    assert idle_transport.disconnecting
    assert not busy_transport.disconnecting
    idle.connectionLost(Failure(ConnectionDone()))
    assert not done.called

    held.requests[0].write(b"{}")
    held.requests[0].finish()
    assert b"\r\nConnection: close\r\n" in busy_transport.value()
    assert busy_transport.disconnecting
    assert not done.called
    busy.connectionLost(Failure(ConnectionDone()))
    assert done.result == 0


def test_drain_waits_a_moment_for_the_first_request_of_a_new_connection() -> None:
    """A connection accepted just before the stop is not cut off: its request, arriving within
    FRESH_GRACE, is answered (with Connection: close); one that sends nothing is closed then."""
    held, clock = Held(), Clock()
    site = RegistrySite(held, None, 0)
    arriving, arriving_transport = connect(site)
    silent, silent_transport = connect(site)
    done = site.connections.drain(clock, 30)
    assert not arriving_transport.disconnecting and not silent_transport.disconnecting
    arriving.dataReceived(b"GET /v2/ HTTP/1.1\r\nHost: registry\r\n\r\n")
    clock.advance(FRESH_GRACE)
    assert silent_transport.disconnecting and not arriving_transport.disconnecting
    silent.connectionLost(Failure(ConnectionDone()))
    held.requests[0].finish()
    assert b"\r\nConnection: close\r\n" in arriving_transport.value()
    assert arriving_transport.disconnecting
    arriving.connectionLost(Failure(ConnectionDone()))
    assert done.result == 0


def test_drain_gives_up_after_the_timeout_with_the_requests_left() -> None:
    """A request still running at the timeout is counted, and the stop goes on without it."""
    held, clock = Held(), Clock()
    site = RegistrySite(held, None, 0)
    busy, _ = connect(site)
    busy.dataReceived(b"PUT /v2/x HTTP/1.1\r\nHost: registry\r\nContent-Length: 10\r\n\r\n12345")
    done = site.connections.drain(clock, 30)
    clock.advance(29)
    assert not done.called
    clock.advance(1)
    assert done.result == 1


def test_drain_with_no_connections_fires_at_once() -> None:
    """An idle server stops without waiting."""
    assert RegistrySite(Held(), None, 0).connections.drain(Clock(), 30).result == 0
