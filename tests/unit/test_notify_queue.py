"""The per-endpoint queue: retries with threshold and backoff on a fake clock, order, durability."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock

from appliance.config.model import EndpointConfig
from appliance.notify.queue import Endpoint


class ImmediateReactor(Clock):
    def callFromThread(self, function: Any, *args: Any, **kwargs: Any) -> None:
        function(*args, **kwargs)


class InlinePool:
    """Runs "thread pool" work at once, so file writes are done when enqueue returns."""

    def callInThreadWithCallback(self, on_result: Any, function: Any, *args: Any) -> None:
        try:
            result = function(*args)
        except Exception as error:
            on_result(False, error)
        else:
            on_result(True, result)


class FakeReceiver:
    def __init__(self) -> None:
        self.answers: list[int | Exception] = []
        self.attempts: list[bytes] = []

    def post(self, url: str, body: bytes, headers: Any, timeout: float) -> Deferred[int]:
        self.attempts.append(body)
        answer = self.answers.pop(0) if self.answers else 200
        return fail(answer) if isinstance(answer, Exception) else succeed(answer)


def endpoint(directory: Path, receiver: FakeReceiver, clock: Clock, maxqueue: int = 100
             ) -> Endpoint:
    config = EndpointConfig("hook", "http://receiver/", threshold=3, backoff=5.0)
    made = Endpoint(config, str(directory), maxqueue, "application/json", receiver.post, clock,
                    InlinePool())  # type: ignore[arg-type]
    Deferred.fromCoroutine(made.start())
    return made


def test_retries_at_once_up_to_threshold_then_every_backoff(tmp_path: Path) -> None:
    """Three failures are retried at once; after that one attempt per `backoff`, until a 2xx."""
    clock, receiver = ImmediateReactor(), FakeReceiver()
    receiver.answers = [ConnectionRefusedError(), 500, 503, 500, 502]
    queue = endpoint(tmp_path, receiver, clock)
    queue.enqueue(b"first", "first")
    assert len(receiver.attempts) == 3
    clock.advance(4.9)
    assert len(receiver.attempts) == 3
    clock.advance(0.1)
    assert len(receiver.attempts) == 4
    clock.advance(5)
    clock.advance(5)
    assert receiver.attempts == [b"first"] * 6
    status = queue.status()
    assert (status["queued"], status["delivered"], status["failures"]) == (0, 1, 5)
    assert status["last_error"] == "HTTP 502"
    assert os.listdir(tmp_path) == []


def test_order_is_kept_and_nothing_is_skipped(tmp_path: Path) -> None:
    """An event that fails blocks the ones after it: they go out in order once it is through."""
    clock, receiver = ImmediateReactor(), FakeReceiver()
    receiver.answers = [500, 500, 500]
    queue = endpoint(tmp_path, receiver, clock)
    for body in (b"1", b"2", b"3"):
        queue.enqueue(body, body.decode())
    queued = sorted(os.listdir(tmp_path))
    assert [(tmp_path / name).read_bytes() for name in queued] == [b"1", b"2", b"3"]
    clock.advance(5)
    assert receiver.attempts == [b"1"] * 4 + [b"2", b"3"]
    assert os.listdir(tmp_path) == []


def test_queued_events_survive_a_restart(tmp_path: Path) -> None:
    """Events left on disk are delivered by the next process, oldest first, an older release's
    numbered files first of all; a stale half-written temporary file is discarded."""
    clock, receiver = ImmediateReactor(), FakeReceiver()
    receiver.answers = [500] * 3
    first = endpoint(tmp_path, receiver, clock)
    first.enqueue(b"a", "a")
    first.enqueue(b"b", "b")
    first.stop()
    (tmp_path / "00000000000000000007.json").write_bytes(b"from an older release")
    partial = tmp_path / "00000000000000000008.json.tmp"
    partial.write_bytes(b"partial")
    os.utime(partial, (0, 0))
    receiver.attempts.clear()
    second = endpoint(tmp_path, receiver, ImmediateReactor())
    assert receiver.attempts == [b"from an older release", b"a", b"b"]
    second.enqueue(b"c", "c")
    assert receiver.attempts == [b"from an older release", b"a", b"b", b"c"]
    assert os.listdir(tmp_path) == []


def test_a_full_queue_drops_new_events(tmp_path: Path) -> None:
    """At maxqueue events waiting, enqueue refuses new events and counts them as dropped."""
    clock, receiver = ImmediateReactor(), FakeReceiver()
    receiver.answers = [500] * 10
    queue = endpoint(tmp_path, receiver, clock, maxqueue=2)
    queued = [queue.enqueue(body, "e") for body in (b"1", b"2", b"3")]
    assert [result.result for result in queued] == [True, True, False]
    assert (queue.status()["queued"], queue.status()["dropped"]) == (2, 1)


def test_workers_queue_and_worker_zero_delivers_in_order(tmp_path: Path) -> None:
    """Workers other than 0 only write files; worker 0 looks at the folder before it sends an
    event of its own `poll` seconds later, so every worker's events go out oldest first, once."""
    clock, receiver = ImmediateReactor(), FakeReceiver()
    config = EndpointConfig("hook", "http://receiver/", threshold=3, backoff=5.0)

    def worker(index: int) -> Endpoint:
        made = Endpoint(config, str(tmp_path), 100, "application/json", receiver.post, clock,
                        InlinePool(), worker=index, delivers=index == 0,  # type: ignore[arg-type]
                        poll=0.5)
        Deferred.fromCoroutine(made.start())
        return made

    deliverer, other = worker(0), worker(1)
    other.enqueue(b"1 from worker 1", "1")
    deliverer.enqueue(b"2 from worker 0", "2")
    other.enqueue(b"3 from worker 1", "3")
    assert receiver.attempts == [b"1 from worker 1"], "found on disk when worker 0 woke up"
    clock.advance(0.4)
    assert receiver.attempts == [b"1 from worker 1"], "its own event waits for a later look"
    clock.advance(0.1)
    assert receiver.attempts == [b"1 from worker 1", b"2 from worker 0", b"3 from worker 1"]
    assert os.listdir(tmp_path) == []
    assert other.status()["delivered"] == 0 and deliverer.status()["delivered"] == 3


def test_a_worker_that_only_queues_respects_maxqueue(tmp_path: Path) -> None:
    """A queueing-only worker counts the files waiting in the shared folder."""
    config = EndpointConfig("hook", "http://receiver/")
    other = Endpoint(config, str(tmp_path), 2, "application/json", FakeReceiver().post,
                     ImmediateReactor(), InlinePool(), worker=1,  # type: ignore[arg-type]
                     delivers=False, poll=0.5)
    queued = [other.enqueue(body, "e").result for body in (b"1", b"2", b"3")]
    assert queued == [True, True, False]
    assert len(os.listdir(tmp_path)) == 2 and other.status()["dropped"] == 1
