"""Run garbage collection and upload purging in the background of a live server, one at a time.

Plain threads, not Twisted: the admin API, the scheduler and tests all drive the same object.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from twisted.logger import Logger

from appliance.storage.driver import StorageDriver

from .blobs import BlobStore
from .gc import GarbageCollector, GCError, history
from .gclock import GCBusy
from .purge import PurgeResult, UploadPurger

log = Logger()


class Maintenance:
    def __init__(self, driver: StorageDriver, blobs: BlobStore, grace: float, purge_age: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.driver = driver
        self.blobs = blobs
        self.grace = grace
        self.purge_age = purge_age
        self.clock = clock
        self._gc: GarbageCollector | None = None
        self._gc_thread: threading.Thread | None = None
        self._gc_error: str | None = None
        self._purge_lock = threading.Lock()
        self.last_purge: PurgeResult | None = None
        # Called after each GC run with (dry_run, bytes_freed, error or None); for metrics.
        self.gc_listeners: list[Callable[[bool, int, str | None], None]] = []

    def start_gc(self, dry_run: bool, delete_untagged: bool) -> bool:
        """Start a GC in a thread; False when one is already running in this process."""
        if self._gc_thread is not None and self._gc_thread.is_alive():
            return False
        self._gc = GarbageCollector(self.driver, self.blobs, self.grace, self.clock)
        self._gc_error = None
        self._gc_thread = threading.Thread(
            target=self._run_gc, args=(self._gc, dry_run, delete_untagged), name="gc", daemon=True
        )
        self._gc_thread.start()
        return True

    def _run_gc(self, collector: GarbageCollector, dry_run: bool, delete_untagged: bool) -> None:
        freed = 0
        try:
            result = collector.run(dry_run=dry_run, delete_untagged=delete_untagged)
            freed = result.bytes_freed
            log.info("gc finished: {blobs} blobs, {manifests} manifests, {bytes} bytes {verb}",
                     blobs=len(result.blobs), manifests=len(result.manifests), bytes=result.bytes_freed,
                     verb="would be freed (dry run)" if dry_run else "freed")
        except (GCBusy, GCError) as error:
            self._gc_error = str(error)
            log.warn("gc did not run: {error}", error=error)
        except Exception as error:  # a thread must not die silently
            self._gc_error = f"gc failed: {error}"
            log.failure("gc failed")
        for listener in self.gc_listeners:
            listener(dry_run, freed, self._gc_error)

    def wait_gc(self, timeout: float | None = None) -> None:
        if self._gc_thread is not None:
            self._gc_thread.join(timeout)

    def gc_status(self) -> dict[str, Any]:
        running = self._gc_thread is not None and self._gc_thread.is_alive()
        progress = asdict(self._gc.progress) if self._gc is not None else None
        return {"running": running, "progress": progress, "error": self._gc_error, "history": history(self.driver)}

    def purge_uploads(self, dry_run: bool = False, age: float | None = None) -> PurgeResult:
        """Blocking; callers run it in a thread."""
        with self._purge_lock:
            result = UploadPurger(self.driver, self.clock).run(self.purge_age if age is None else age, dry_run)
            self.last_purge = result
        log.info("upload purge: {count} uploads, {bytes} bytes {verb}", count=len(result.uploads),
                 bytes=result.bytes_freed, verb="would be removed (dry run)" if dry_run else "removed")
        return result
