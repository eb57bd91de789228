"""Read-only mode, kept in storage so every worker and instance on the backend obeys it.

Each process reads the flag at most once per `refresh` call (the server calls it every
second); requests only look at the remembered value, which costs nothing.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

from appliance.storage import paths
from appliance.storage.driver import PathNotFound, StorageDriver


class ReadOnlyFlag:
    def __init__(self, driver: StorageDriver, clock: Callable[[], float] = time.time) -> None:
        self.driver = driver
        self.clock = clock
        self.enabled = False
        self.changed_at: float | None = None
        self._lock = threading.Lock()

    def refresh(self) -> bool:
        """Read the stored flag (blocking). A missing or unreadable flag means writable.

        A read that started before this process's own `set` may return the older value: it is
        applied only when it is not older than what this process already knows.
        """
        enabled, changed_at = False, None
        try:
            record = json.loads(self.driver.get_content(paths.READONLY))
            enabled = bool(record.get("enabled", False))
            changed_at = float(record.get("changed_at", 0)) or None
        except PathNotFound:
            pass
        except (ValueError, AttributeError, TypeError):
            changed_at = self.changed_at
        with self._lock:
            if self.changed_at is None or (changed_at is not None and changed_at >= self.changed_at):
                self.enabled, self.changed_at = enabled, changed_at
            return self.enabled

    def set(self, enabled: bool) -> None:
        """Store the flag for everyone (blocking); this process sees it at once."""
        with self._lock:
            now = max(self.clock(), (self.changed_at or 0) + 1e-6)
            self.driver.put_content(paths.READONLY, json.dumps({"enabled": enabled, "changed_at": now}).encode())
            self.enabled, self.changed_at = enabled, now
