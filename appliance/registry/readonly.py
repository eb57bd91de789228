"""Read-only mode, kept in storage so every worker and instance on the backend obeys it.

Each process reads the flag at most once per `refresh` call (the server calls it every
second); requests only look at the remembered value, which costs nothing. Workers of one
`serve --workers N` also share a local copy (`share_on_host`): the worker that switches the
flag writes it there too, and the others notice at their next request (one `stat`), so on one
host the switch holds for every worker once the admin API has answered.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable

from appliance.storage import paths
from appliance.storage.driver import PathNotFound, StorageDriver


class ReadOnlyFlag:
    def __init__(self, driver: StorageDriver, clock: Callable[[], float] = time.time) -> None:
        self.driver = driver
        self.clock = clock
        self._enabled = False
        self.changed_at: float | None = None
        self._lock = threading.Lock()
        self._local: str | None = None
        self._local_seen: tuple[int, int, int] | None = None

    def share_on_host(self, path: str) -> None:
        """Follow (and write) the local copy at `path`, shared with the other workers."""
        self._local = path

    @property
    def enabled(self) -> bool:
        if self._local is not None:
            self._follow_local()
        return self._enabled

    def _follow_local(self) -> None:
        try:
            stat = os.stat(self._local)  # type: ignore[arg-type]
        except FileNotFoundError:
            return
        seen = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if seen == self._local_seen:
            return
        self._local_seen = seen
        try:
            with open(self._local, "rb") as file:  # type: ignore[arg-type]
                self._apply(*_parse(file.read()))
        except (OSError, ValueError, AttributeError, TypeError):
            return

    def refresh(self) -> bool:
        """Read the stored flag (blocking). A missing or unreadable flag means writable.

        A read that started before this process's own `set` may return the older value: it is
        applied only when it is not older than what this process already knows.
        """
        try:
            enabled, changed_at = _parse(self.driver.get_content(paths.READONLY))
        except PathNotFound:
            enabled, changed_at = False, None
        except (ValueError, AttributeError, TypeError):
            enabled, changed_at = False, self.changed_at
        return self._apply(enabled, changed_at)

    def _apply(self, enabled: bool, changed_at: float | None) -> bool:
        with self._lock:
            if self.changed_at is None or (changed_at is not None and changed_at >= self.changed_at):
                self._enabled, self.changed_at = enabled, changed_at
            return self._enabled

    def set(self, enabled: bool) -> None:
        """Store the flag for everyone (blocking); this process sees it at once."""
        with self._lock:
            now = max(self.clock(), (self.changed_at or 0) + 1e-6)
            record = json.dumps({"enabled": enabled, "changed_at": now}).encode()
            self.driver.put_content(paths.READONLY, record)
            self._enabled, self.changed_at = enabled, now
            if self._local is not None:
                temporary = f"{self._local}.{os.getpid()}.tmp"
                with open(temporary, "wb") as file:
                    file.write(record)
                os.replace(temporary, self._local)


def _parse(record: bytes) -> tuple[bool, float | None]:
    """(enabled, changed_at) from the stored JSON."""
    parsed = json.loads(record)
    return bool(parsed.get("enabled", False)), float(parsed.get("changed_at", 0)) or None
