"""Failed logins per user and per client address, in a sliding window.

After `max_failures` failures within `window` seconds for a user (or `max_address_failures`
for an address), further password checks are refused with 429 until the window moves on.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

__all__ = ["LoginLimiter"]


class LoginLimiter:
    def __init__(
        self,
        max_failures: int = 10,
        max_address_failures: int = 50,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.max_address_failures = max_address_failures
        self.window = window
        self._clock = clock
        self._users: dict[str, deque[float]] = {}
        self._addresses: dict[str, deque[float]] = {}

    def retry_after(self, user: str, address: str) -> float | None:
        """Seconds until `user` from `address` may try again, or None when not limited."""
        now = self._clock()
        waits = [
            self._wait(self._users, user, self.max_failures, now),
            self._wait(self._addresses, address, self.max_address_failures, now),
        ]
        limited = [w for w in waits if w is not None]
        return max(limited) if limited else None

    def failed(self, user: str, address: str) -> None:
        now = self._clock()
        for table, key in ((self._users, user), (self._addresses, address)):
            table.setdefault(key, deque()).append(now)
        if len(self._users) + len(self._addresses) > 100000:
            self._users.clear()
            self._addresses.clear()

    def _wait(
        self, table: dict[str, deque[float]], key: str, limit: int, now: float
    ) -> float | None:
        times = table.get(key)
        if not times:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del table[key]
            return None
        if len(times) < limit:
            return None
        return times[0] + self.window - now
