"""One endpoint's queue: events wait on local disk until the endpoint answers 2xx, in order.

Each event is a file named by a sequence number that only grows (`00000000000000000042.json`),
written to a temporary name, fsynced and renamed, and deleted after a 2xx. A restart reads the
folder back and goes on from the oldest event, so nothing is lost while a receiver is down;
what a receiver may see twice is a retry of an event it already got (same `id`).

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
_EVENT_FILE = re.compile(r"^(\d{20})\.json$")

# (url, body, headers, timeout) -> Deferred firing with the response's status code.
Post = Callable[[str, bytes, dict[bytes, list[bytes]], float], Deferred[int]]


@dataclass
class _Item:
    sequence: int
    body: bytes
    written: Deferred[None]


class DurableQueue:
    """The files of one endpoint's queued events; blocking methods run in the file pool."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def load(self) -> list[tuple[int, bytes]]:
        """Queued events, oldest first; unfinished temporary files are removed."""
        os.makedirs(self.directory, exist_ok=True)
        found = []
        for entry in os.listdir(self.directory):
            path = os.path.join(self.directory, entry)
            match = _EVENT_FILE.match(entry)
            if match is None:
                if entry.endswith(".tmp"):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path)
                continue
            with open(path, "rb") as file:
                found.append((int(match[1]), file.read()))
        return sorted(found)

    def write(self, sequence: int, body: bytes) -> None:
        final = self._path(sequence)
        temporary = final + ".tmp"
        with open(temporary, "wb") as file:
            file.write(body)
            file.flush()
            os.fsync(file.fileno())
        os.rename(temporary, final)
        _fsync_directory(self.directory)

    def delete(self, sequence: int) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(sequence))

    def _path(self, sequence: int) -> str:
        return os.path.join(self.directory, f"{sequence:020d}.json")


def _fsync_directory(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Endpoint:
    """Delivers one endpoint's events, one POST per event, oldest first.

    After `threshold` failures in a row it waits `backoff` between attempts, as Distribution's
    retrying sink does; an event is never skipped. At `maxqueue` events waiting, new events are
    dropped with a log line (and counted), not the old ones.
    """

    def __init__(self, config: EndpointConfig, directory: str, maxqueue: int, content_type: str,
                 post: Post, reactor: Any, files: ThreadPool,
                 observe: Callable[[str, str, float], None] = lambda name, what, value: None) -> None:
        self.config = config
        self._disk = DurableQueue(directory)
        self._maxqueue = maxqueue
        self._post = post
        self._reactor = reactor
        self._files = files
        self._observe = observe
        self._pending: deque[_Item] = deque()
        self._next_sequence = 1
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
        for sequence, body in await self._in_files(self._disk.load):
            self._pending.append(_Item(sequence, body, succeed(None)))
            self._next_sequence = sequence + 1
        if self._pending:
            log.info("notifications endpoint {name}: {count} events queued by a previous run",
                     name=self.name, count=len(self._pending))
        self._gauge()
        self._running = True
        self._loop = Deferred.fromCoroutine(self._deliver_all())
        self._loop.addErrback(lambda failure: failure.trap(CancelledError))
        self._loop.addErrback(lambda failure: log.failure(
            "notifications endpoint {name}: delivery stopped", failure, name=self.name))

    def stop(self) -> None:
        self._running = False
        if self._loop is not None:
            self._loop.cancel()

    def enqueue(self, body: bytes, description: str) -> bool:
        """Queue one event (written to disk in order); False when the queue is full."""
        if len(self._pending) >= self._maxqueue:
            self.dropped += 1
            self._observe(self.name, "dropped", 1)
            log.error("notifications endpoint {name}: queue full ({maxqueue} events waiting), "
                      "dropping {event} ({dropped} dropped so far)", name=self.name,
                      maxqueue=self._maxqueue, event=description, dropped=self.dropped)
            return False
        sequence, self._next_sequence = self._next_sequence, self._next_sequence + 1
        written = self._in_files(self._disk.write, sequence, body)
        written.addErrback(lambda failure: log.failure(
            "notifications endpoint {name}: cannot persist event {sequence}", failure,
            name=self.name, sequence=sequence))
        self._pending.append(_Item(sequence, body, written))
        self._gauge()
        if self._wake is not None:
            wake, self._wake = self._wake, None
            wake.callback(None)
        return True

    def status(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "url": self.config.url,
            "disabled": False,
            "queued": len(self._pending),
            "delivered": self.delivered,
            "failures": self.failures,
            "dropped": self.dropped,
            "last_success": self.last_success,
            "last_failure": self.last_failure,
            "last_error": self.last_error,
        }

    def _gauge(self) -> None:
        self._observe(self.name, "queued", len(self._pending))

    async def _deliver_all(self) -> None:
        in_a_row = 0
        while self._running:
            if not self._pending:
                self._wake = Deferred()
                await self._wake
                continue
            item = self._pending[0]
            await item.written
            error = await self._try(item)
            if error is None:
                in_a_row = 0
                self._pending.popleft()
                self.delivered += 1
                self.last_success = time.time()
                self._observe(self.name, "delivered", 1)
                self._gauge()
                await self._in_files(self._disk.delete, item.sequence)
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

    async def _try(self, item: _Item) -> str | None:
        """None when the endpoint took the event, else why not."""
        try:
            status = await self._post(self.config.url, item.body, self._headers,
                                      self.config.timeout)
        except Exception as error:
            return f"{type(error).__name__}: {error}".strip()[:300]
        if 200 <= status < 300:
            return None
        return f"HTTP {status}"
