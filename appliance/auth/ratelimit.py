"""Failed logins per user and per client address, in a sliding window.

After `max_failures` failures within `window` seconds for a user (or `max_address_failures`
for an address), further password checks are refused with 429 until the window moves on.

The failures live in SQLite: in memory for one process, or in a file that all workers of
`serve --workers N` open, so an attacker gets the same budget whichever worker answers
(`CLOCK_MONOTONIC` is one clock for the whole host, so the workers' times compare).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable

__all__ = ["LoginLimiter"]

_SCHEMA = "CREATE TABLE IF NOT EXISTS failures (key TEXT NOT NULL, at REAL NOT NULL)"
_INDEX = "CREATE INDEX IF NOT EXISTS failures_by_key ON failures (key, at)"


class LoginLimiter:
    def __init__(
        self,
        max_failures: int = 10,
        max_address_failures: int = 50,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        path: str = ":memory:",
    ) -> None:
        self.max_failures = max_failures
        self.max_address_failures = max_address_failures
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._db = _connect(path)
        if path != ":memory:":
            self._db.execute("PRAGMA synchronous=OFF")  # losing it in a crash costs nothing
        self._db.execute(_SCHEMA)
        self._db.execute(_INDEX)

    @staticmethod
    def create_store(path: str) -> None:
        """Make the file the workers share, once, before they start: switching a database to
        WAL takes a lock that several workers starting at once would fight over."""
        with contextlib.closing(_connect(path)) as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(_SCHEMA)
            db.execute(_INDEX)

    def retry_after(self, user: str, address: str) -> float | None:
        """Seconds until `user` from `address` may try again, or None when not limited."""
        since = self._clock() - self.window
        waits = [
            self._wait("user:" + user, self.max_failures, since),
            self._wait("addr:" + address, self.max_address_failures, since),
        ]
        limited = [w for w in waits if w is not None]
        return max(limited) if limited else None

    def failed(self, user: str, address: str) -> None:
        now = self._clock()
        with self._lock:
            self._db.executemany("INSERT INTO failures VALUES (?, ?)",
                                 [("user:" + user, now), ("addr:" + address, now)])
            self._db.execute("DELETE FROM failures WHERE at <= ?", (now - self.window,))

    def _wait(self, key: str, limit: int, since: float) -> float | None:
        """When the `limit`-th newest failure leaves the window, if `limit` are in it."""
        with self._lock:
            row = self._db.execute(
                "SELECT at FROM failures WHERE key = ? AND at > ? ORDER BY at DESC "
                "LIMIT 1 OFFSET ?", (key, since, limit - 1)).fetchone()
        if row is None:
            return None
        return row[0] - since


def _connect(path: str) -> sqlite3.Connection:
    return sqlite3.connect(path, timeout=5.0, isolation_level=None, check_same_thread=False)
