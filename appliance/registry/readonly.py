"""Read-only mode, kept in storage so every worker and instance on the backend obeys it.

Each process reads the flag at most once per `refresh` call (the server calls it every
second); requests only look at the remembered value, which costs nothing.
"""

from __future__ import annotations

import json
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

    def refresh(self) -> bool:
        """Read the stored flag (blocking). A missing or unreadable flag means writable."""
        try:
            record = json.loads(self.driver.get_content(paths.READONLY))
            self.enabled = bool(record.get("enabled", False))
            self.changed_at = float(record.get("changed_at", 0)) or None
        except PathNotFound:
            self.enabled, self.changed_at = False, None
        except (ValueError, AttributeError, TypeError):
            self.enabled = False
        return self.enabled

    def set(self, enabled: bool) -> None:
        """Store the flag for everyone (blocking); this process sees it at once."""
        now = self.clock()
        self.driver.put_content(paths.READONLY, json.dumps({"enabled": enabled, "changed_at": now}).encode())
        self.enabled, self.changed_at = enabled, now
