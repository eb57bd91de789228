"""One garbage collector at a time per storage, across processes and hosts."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable

from appliance.storage import paths
from appliance.storage.driver import PathNotFound, StorageDriver

STALE_AFTER = 120.0
HEARTBEAT_EVERY = 10.0


class GCBusy(Exception):
    """Another garbage collection holds the lock."""


class GCLock:
    def __init__(self, driver: StorageDriver, clock: Callable[[], float] = time.time) -> None:
        self.driver = driver
        self.clock = clock
        self._beat = 0.0

    def acquire(self) -> None:
        for _ in range(2):
            if self.driver.create_exclusive(paths.GC_LOCK, self._record()):
                self._beat = self.clock()
                return
            holder = self._holder()
            if holder is not None and not self._is_stale(holder):
                raise GCBusy(
                    f"garbage collection already running (pid {holder.get('pid')} on {holder.get('host')})"
                )
            try:
                self.driver.delete(paths.GC_LOCK)
            except PathNotFound:
                pass
        raise GCBusy("could not take the garbage collection lock")

    def heartbeat(self) -> None:
        """Refresh the lock now and then so others can tell a live holder from a dead one."""
        if self.clock() - self._beat >= HEARTBEAT_EVERY:
            self.driver.put_content(paths.GC_LOCK, self._record())
            self._beat = self.clock()

    def release(self) -> None:
        try:
            self.driver.delete(paths.GC_LOCK)
        except PathNotFound:
            pass

    def _record(self) -> bytes:
        return json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "heartbeat": self.clock()}).encode()

    def _holder(self) -> dict | None:
        try:
            return json.loads(self.driver.get_content(paths.GC_LOCK))
        except (PathNotFound, ValueError):
            return None

    def _is_stale(self, holder: dict) -> bool:
        """Dead on this host, or silent for longer than STALE_AFTER anywhere."""
        if holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int):
            try:
                os.kill(holder["pid"], 0)
            except ProcessLookupError:
                return True
            except PermissionError:
                pass
        return self.clock() - float(holder.get("heartbeat", 0)) > STALE_AFTER
