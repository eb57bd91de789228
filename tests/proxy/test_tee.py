"""The tee between the upstream, the client and the storage writer, driven by hand: every chunk
is stored in order before the fetch counts as done; storage that falls behind pauses the
upstream; a storage error stops the fetch."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from twisted.web.client import ResponseDone

from appliance.oci.digest import Digest
from appliance.proxy.cache import _BUFFER_LIMIT, _Tee


class Calls:
    """A storage thread pool that runs nothing until told: `finish()` runs the oldest call."""

    def __init__(self) -> None:
        self.waiting: list[tuple[Deferred[Any], Any, tuple[Any, ...]]] = []

    def run(self, function: Any, *args: Any) -> Deferred[Any]:
        done: Deferred[Any] = Deferred()
        self.waiting.append((done, function, args))
        return done

    def finish(self) -> None:
        done, function, args = self.waiting.pop(0)
        try:
            result = function(*args)
        except Exception:
            done.errback(Failure())
        else:
            done.callback(result)


class Writer:
    def __init__(self, fail: bool = False) -> None:
        self.writes: list[bytes] = []
        self.fail = fail

    def write(self, data: bytes) -> int:
        if self.fail:
            raise OSError("disk full")
        self.writes.append(data)
        return len(data)


class Upstream:
    """The upstream connection's producer side, as the tee sees it."""

    def __init__(self) -> None:
        self.paused = self.stopped = False

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False

    def stopProducing(self) -> None:
        self.stopped = True


class Client:
    def __init__(self) -> None:
        self.received = b""

    def write(self, data: bytes) -> None:
        self.received += data


def tee(writer: Writer, calls: Calls) -> tuple[_Tee, Upstream, Client]:
    client, upstream = Client(), Upstream()
    made = _Tee(client, writer, calls.run, Digest.of(b"", "sha256"))  # type: ignore[arg-type]
    made.makeConnection(upstream)  # type: ignore[arg-type]
    return made, upstream, client


def test_the_fetch_is_done_once_every_chunk_is_stored_in_order() -> None:
    """Chunks arriving faster than storage writes are stored in order, one write at a time;
    the end of the upstream body completes the fetch only after the last write."""
    calls, writer = Calls(), Writer()
    made, _, client = tee(writer, calls)
    for chunk in (b"a", b"b", b"c", b"d"):
        made.dataReceived(chunk)
    made.connectionLost(Failure(ResponseDone()))
    while calls.waiting:
        assert len(calls.waiting) == 1
        assert not made.done.called
        calls.finish()
    assert writer.writes == [b"a", b"b", b"c", b"d"]
    assert made.done.called
    assert made.done.result is None
    assert client.received == b"abc"  # the last chunk waits for the digest check
    made.release()
    assert client.received == b"abcd"


def test_storage_behind_pauses_the_upstream_until_it_catches_up() -> None:
    """Over `_BUFFER_LIMIT` bytes waiting for storage pause the upstream; written, it resumes."""
    calls, writer = Calls(), Writer()
    made, upstream, _ = tee(writer, calls)
    chunk = b"x" * (1 << 20)
    for _ in range(_BUFFER_LIMIT // len(chunk) + 1):
        made.dataReceived(chunk)
    assert upstream.paused
    while calls.waiting:
        calls.finish()
    assert not upstream.paused
    assert sum(map(len, writer.writes)) == len(chunk) * (_BUFFER_LIMIT // len(chunk) + 1)


def test_a_storage_error_stops_the_fetch() -> None:
    """A write that fails stops the upstream and fails the fetch with that error; chunks
    queued behind it are not written."""
    calls, writer = Calls(), Writer(fail=True)
    made, upstream, _ = tee(writer, calls)
    made.dataReceived(b"first")
    made.dataReceived(b"second")
    calls.finish()
    assert upstream.stopped
    assert calls.waiting == []  # "second" is dropped, not written
    made.connectionLost(Failure(ResponseDone()))
    failure = made.done.result
    made.done.addErrback(lambda _: None)
    assert isinstance(failure, Failure)
    assert failure.check(OSError)
    assert writer.writes == []
