"""Caps on open upload sessions, per repository and in all, counted from storage.

Sessions live in storage (`_uploads/<id>/`), so every worker and instance counts the same ones.
A session counts while it is active: its last write (the data or a chunk, else `startedat`)
is younger than `idle`. An abandoned session stops counting after `idle`, so it cannot lock a
repository for ever; it can still be resumed, and upload purging deletes it later.

A repository's count is one listing of its `_uploads/`, on each new session. The total walks
every repository, so it is refreshed at most every `total_refresh` seconds, plus the sessions
this process started since and has not ended. Checks and starts are not atomic across workers:
concurrent POSTs may overshoot a limit by their number, and sessions other workers end are
seen at the next refresh.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from appliance.storage import paths
from appliance.storage.driver import PathNotFound, StorageDriver

from .catalog import repositories_holding
from .errors import RegistryError


class TooManyUploads(RegistryError):
    """429 TOOMANYREQUESTS; `retry_after` (seconds) is when a slot is expected to free up."""

    def __init__(self, message: str, limit: str, retry_after: float) -> None:
        self.retry_after = max(1, math.ceil(retry_after))
        super().__init__("TOOMANYREQUESTS", message,
                         {"limit": limit, "retryAfter": self.retry_after})


class UploadLimits:
    def __init__(self, driver: StorageDriver, *, per_repository: int = 0, total: int = 0,
                 idle: float = 3600.0, clock: Callable[[], float] = time.time,
                 total_refresh: float = 10.0) -> None:
        """`per_repository`, `total`: the caps (0 = none); `idle`: seconds a session counts after
        its last write."""
        self.driver = driver
        self.per_repository = per_repository
        self.total = total
        self.idle = idle
        self.clock = clock
        self.total_refresh = total_refresh
        self._guard = threading.Lock()
        self._counted_at = -math.inf
        self._counted: list[float] = []
        self._started: dict[str, float] = {}  # by this process since `_counted_at`: when

    def check(self, name: str, upload_id: str) -> None:
        """Raise `TooManyUploads` when a new session in `name` would pass a cap; else count
        `upload_id` as started."""
        now = self.clock()
        if self.per_repository:
            active = self._active(name, now)
            if len(active) >= self.per_repository:
                raise TooManyUploads(
                    f"{name} has {len(active)} upload sessions in progress, the most allowed "
                    "(appliance.limits.maxrepositoryuploads); finish or cancel one, or retry "
                    "later",
                    "appliance.limits.maxrepositoryuploads",
                    min(self.idle, min(active) + self.idle - now))  # storage clocks may be ahead
        if self.total:
            with self._guard:
                if now - self._counted_at >= self.total_refresh:
                    self._counted = [last for repo in repositories_holding(self.driver, "_uploads")
                                     for last in self._active(repo, now)]
                    self._counted_at = now
                    self._started.clear()
                count = sum(last > now - self.idle
                            for last in (*self._counted, *self._started.values()))
                if count >= self.total:
                    raise TooManyUploads(
                        f"{count} upload sessions are in progress, the most allowed "
                        f"(appliance.limits.maxuploads); retry later",
                        "appliance.limits.maxuploads", self._counted_at + self.total_refresh - now)
                self._started[upload_id] = now

    def ended(self, upload_id: str) -> None:
        """A session this process counted was finished or cancelled."""
        with self._guard:
            self._started.pop(upload_id, None)

    def _active(self, name: str, now: float) -> list[float]:
        """The last write time of each of `name`'s sessions that still counts."""
        uploads = f"{paths.repository(name)}/_uploads/"
        last: dict[str, float] = {}
        try:
            for info in self.driver.walk(uploads.rstrip("/")):
                if not info.is_dir and info.path.startswith(uploads):
                    upload_id = info.path[len(uploads):].split("/", 1)[0]
                    last[upload_id] = max(last.get(upload_id, 0.0), info.modified)
        except PathNotFound:
            return []
        return [when for when in last.values() if when > now - self.idle]
