"""One endpoint's queue: events wait on local disk until the endpoint answers 2xx, in order.

Each event is one file, written to a temporary name, fsynced and renamed, and deleted after a
2xx. Names sort in the order events were made: `<ns since epoch>-<worker>-<count>.json` (older
releases wrote `<20-digit sequence>.json`, which sorts first and is still read). A restart
reads the folder back and goes on from the oldest event, so nothing is lost while a receiver is
down; what a receiver may see twice is a retry of an event it already got (same `id`).

With `serve --workers N` every worker writes its events into the same folder and worker 0
alone delivers them. It looks at the folder every `poll` seconds while idle, and sends an event
only after a look that began at least `poll` seconds after it learnt of the event, so an older
event another worker was still writing goes out first: all workers' events leave one at a time,
oldest first, at the cost of `poll` seconds of latency.

File work runs in a one-thread pool, so writes and deletes happen in the order they were asked.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool

from appliance.config.model import EndpointConfig

__all__ = ["DurableQueue", "Endpoint", "Post"]

log = Logger()
_EVENT_FILE = re.compile(r"^(?:\d{20}|\d{20}-\d{3}-\d{10})\.json$")

# (url, body, headers, timeout) -> Deferred firing with the response's status code.
Post = Callable[[str, bytes, dict[bytes, list[bytes]], float], Deferred[int]]


@dataclass
class _Item:
    name: str
    body: bytes | None  # None: written by another worker, read from disk when its turn comes
    written: Deferred[None]
    known_at: float = 0.0  # reactor time this process learnt of it


class EventNames:
    """File names that sort in the order this process made its events, and after older ones."""

    def __init__(self, worker: int, clock: Callable[[], int] = time.time_ns) -> None:
        self._worker = worker
        self._clock = clock
        self._last = 0
        self._count = 0

    def next(self) -> str:
        self._last = max(self._last + 1, self._clock())
        self._count = (self._count + 1) % 10**10
        return f"{self._last:020d}-{self._worker:03d}-{self._count:010d}.json"


class DurableQueue:
    """The files of one endpoint's queued events; blocking methods run in the file pool."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def names(self) -> list[str]:
        """Queued events, oldest first."""
        os.makedirs(self.directory, exist_ok=True)
        return sorted(entry for entry in os.listdir(self.directory) if _EVENT_FILE.match(entry))

    def discard_partial(self, older_than: float = 60.0) -> None:
        """Remove temporary files a killed process left; younger ones may be a worker's write."""
        os.makedirs(self.directory, exist_ok=True)
        for entry in os.listdir(self.directory):
            path = os.path.join(self.directory, entry)
            with contextlib.suppress(FileNotFoundError):
                if entry.endswith(".tmp") and time.time() - os.stat(path).st_mtime > older_than:
                    os.unlink(path)

    def read(self, name: str) -> bytes | None:
        """An event's body, or None when it is gone."""
        try:
            with open(os.path.join(self.directory, name), "rb") as file:
                return file.read()
        except FileNotFoundError:
            return None

    def write(self, name: str, body: bytes) -> None:
        final = os.path.join(self.directory, name)
        temporary = final + ".tmp"
        with open(temporary, "wb") as file:
            file.write(body)
            file.flush()
            os.fsync(file.fileno())
        os.rename(temporary, final)
        _fsync_directory(self.directory)

    def write_unless_full(self, name: str, body: bytes, maxqueue: int) -> bool:
        """Write the event unless `maxqueue` events already wait; for workers that only queue."""
        if len(self.names()) >= maxqueue:
            return False
        self.write(name, body)
        return True

    def delete(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.directory, name))


def _fsync_directory(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Endpoint:
    """Queues one endpoint's events and, in the delivering process, sends them, one POST per
    event, oldest first.

    After `threshold` failures in a row it waits `backoff` between attempts, as Distribution's
    retrying sink does; an event is never skipped. At `maxqueue` events waiting, new events are
    dropped with a log line (and counted), not the old ones.

    `delivers=False` (workers other than 0): events are only written to the folder.
    `poll`: while idle, look for events other workers wrote this often (None: only this
    process writes events, so there is nothing to look for).
    """

    def __init__(self, config: EndpointConfig, directory: str, maxqueue: int, content_type: str,
                 post: Post, reactor: Any, files: ThreadPool,
                 observe: Callable[[str, str, float], None] = lambda name, what, value: None,
                 worker: int = 0, delivers: bool = True, poll: float | None = None) -> None:
        self.config = config
        self._disk = DurableQueue(directory)
        self._names = EventNames(worker)
        self._maxqueue = maxqueue
        self._post = post
        self._reactor = reactor
        self._files = files
        self._observe = observe
        self._delivers = delivers
        self._poll = poll
        self._pending: deque[_Item] = deque()
        self._wake: Deferred[None] | None = None
        self._running = False
        self._loop: Deferred[None] | None = None
        self._headers: dict[bytes, list[bytes]] = {
            b"Content-Type": [content_type.encode()],
            **{name.encode(): [v.encode() for v in values]
               for name, values in config.headers.items()},
        }
        self.delivered = 0
        self.failures = 0
        self.dropped = 0
        self.last_success: float | None = None
        self.last_failure: float | None = None
        self.last_error: str | None = None

    @property
    def name(self) -> str:
        return self.config.name

    def _in_files(self, function: Callable[..., Any], *args: Any) -> Deferred[Any]:
        return deferToThreadPool(self._reactor, self._files, function, *args)

    async def start(self) -> None:
        """Read back what a previous run left queued, then start delivering."""
        if not self._delivers:
            return
        await self._in_files(self._disk.discard_partial)
        found = await self._find_new()
        if found:
            log.info("notifications endpoint {name}: {count} events queued by a previous run",
                     name=self.name, count=found)
        self._running = True
        self._loop = Deferred.fromCoroutine(self._deliver_all())
        self._loop.addErrback(lambda failure: failure.trap(CancelledError))
        self._loop.addErrback(lambda failure: log.failure(
            "notifications endpoint {name}: delivery stopped", failure, name=self.name))

    def stop(self) -> None:
        self._running = False
        if self._loop is not None:
            self._loop.cancel()

    def enqueue(self, body: bytes, description: str) -> Deferred[bool]:
        """Queue one event (written to disk in order); fires False when the queue was full."""
        name = self._names.next()
        if self._delivers and self._poll is None:  # the only writer: count in memory
            if len(self._pending) >= self._maxqueue:
                return succeed(self._drop(description))
            written = self._in_files(self._disk.write, name, body)
            written.addErrback(self._not_persisted, name)
            self._add(_Item(name, body, written, self._reactor.seconds()))
            return succeed(True)
        queued = self._in_files(self._disk.write_unless_full, name, body, self._maxqueue)
        queued.addCallback(self._queued, name, body, description)
        return queued.addErrback(self._not_persisted, name)

    def _queued(self, written: bool, name: str, body: bytes, description: str) -> bool:
        if not written:
            return self._drop(description)
        if self._delivers:
            self._add(_Item(name, body, succeed(None), self._reactor.seconds()))
        return True

    def _add(self, item: _Item) -> None:
        self._pending.append(item)
        self._gauge()
        self._wake_up()

    def _drop(self, description: str) -> bool:
        self.dropped += 1
        self._observe(self.name, "dropped", 1)
        log.error("notifications endpoint {name}: queue full ({maxqueue} events waiting), "
                  "dropping {event} ({dropped} dropped so far)", name=self.name,
                  maxqueue=self._maxqueue, event=description, dropped=self.dropped)
        return False

    def _not_persisted(self, failure: Any, name: str) -> bool:
        log.failure("notifications endpoint {name}: cannot persist event {event}", failure,
                    name=self.name, event=name)
        return False

    def status(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "url": self.config.url,
            "disabled": False,
            "queued": len(self._disk.names()) if self._poll else len(self._pending),
            "delivered": self.delivered,
            "failures": self.failures,
            "dropped": self.dropped,
            "last_success": self.last_success,
            "last_failure": self.last_failure,
            "last_error": self.last_error,
        }

    def _gauge(self) -> None:
        self._observe(self.name, "queued", len(self._pending))

    def _wake_up(self) -> None:
        if self._wake is not None:
            wake, self._wake = self._wake, None
            wake.callback(None)

    async def _find_new(self) -> int:
        """Add events on disk that this process does not know of yet, in name order. Found
        ones count as known for `poll` already: they were on disk when the look began."""
        began = self._reactor.seconds() - (self._poll or 0.0)
        names = await self._in_files(self._disk.names)
        known = {item.name for item in self._pending}  # after the listing: what came meanwhile
        new = [_Item(name, None, succeed(None), began) for name in names if name not in known]
        if new:
            self._pending = deque(sorted([*self._pending, *new], key=lambda item: item.name))
            self._gauge()
        return len(new)

    async def _idle(self) -> None:
        """Wait for an event of this process, or (with other writers) until the next look."""
        self._wake = Deferred()
        timer = self._reactor.callLater(self._poll, self._wake_up) if self._poll else None
        await self._wake
        if timer is not None and timer.active():
            timer.cancel()

    async def _deliver_all(self) -> None:
        in_a_row = 0
        looked = self._reactor.seconds()
        while self._running:
            if not self._pending:
                await self._idle()
                if self._poll:
                    looked = self._reactor.seconds()
                    await self._find_new()
                continue
            item = self._pending[0]
            if self._poll and looked < item.known_at + self._poll:
                wait = item.known_at + self._poll - self._reactor.seconds()
                if wait > 0:
                    await deferLater(self._reactor, wait, lambda: None)
                looked = self._reactor.seconds()
                await self._find_new()
                continue
            await item.written
            if item.body is None:
                item.body = await self._in_files(self._disk.read, item.name)
                if item.body is None:  # removed by hand: nothing left to send
                    self._pending.popleft()
                    continue
            error = await self._try(item.body)
            if error is None:
                in_a_row = 0
                self._pending.popleft()
                self.delivered += 1
                self.last_success = time.time()
                self._observe(self.name, "delivered", 1)
                self._gauge()
                await self._in_files(self._disk.delete, item.name)
                continue
            in_a_row += 1
            self.failures += 1
            self.last_failure, self.last_error = time.time(), error
            self._observe(self.name, "failures", 1)
            if in_a_row == self.config.threshold:
                log.warn("notifications endpoint {name}: {count} failures in a row ({error}); "
                         "retrying every {backoff}s", name=self.name, count=in_a_row,
                         error=error, backoff=self.config.backoff)
            if in_a_row >= self.config.threshold:
                await deferLater(self._reactor, self.config.backoff, lambda: None)

    async def _try(self, body: bytes) -> str | None:
        """None when the endpoint took the event, else why not."""
        try:
            status = await self._post(self.config.url, body, self._headers, self.config.timeout)
        except Exception as error:
            return f"{type(error).__name__}: {error}".strip()[:300]
        if 200 <= status < 300:
            return None
        return f"HTTP {status}"
