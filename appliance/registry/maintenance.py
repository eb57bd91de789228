"""Run garbage collection, fsck and upload purging in the background of a live server.

Plain threads, not Twisted: the admin API, the scheduler and tests all drive the same object.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from twisted.logger import Logger

from appliance.storage.driver import StorageDriver, StorageError

from .blobs import BlobStore
from .fsck import Fsck, FsckResult
from .gc import GarbageCollector, GCError, GCResult, history
from .gclock import GCBusy
from .jobs import Job
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
        self._gc = Job("gc", (GCBusy, GCError))
        self._fsck = Job("fsck", (GCBusy, StorageError))
        self._purge_lock = threading.Lock()
        self.last_purge: PurgeResult | None = None
        # Called after each GC run with (dry_run, bytes_freed, error or None); for metrics.
        self.gc_listeners: list[Callable[[bool, int, str | None], None]] = []

    def start_gc(self, dry_run: bool, delete_untagged: bool) -> bool:
        """Start a GC in a thread; False when one is already running in this process."""
        if self._gc.running:
            return False
        collector = GarbageCollector(self.driver, self.blobs, self.grace, self.clock)

        def run() -> GCResult:
            result = collector.run(dry_run=dry_run, delete_untagged=delete_untagged)
            log.info("gc finished: {blobs} blobs, {manifests} manifests, {bytes} bytes {verb}",
                     blobs=len(result.blobs), manifests=len(result.manifests),
                     bytes=result.bytes_freed,
                     verb="would be freed (dry run)" if dry_run else "freed")
            return result

        def finished(result: GCResult | None) -> None:
            for listener in self.gc_listeners:
                listener(dry_run, result.bytes_freed if result else 0, self._gc.error)

        return self._gc.start(collector, run, finished)

    def wait_gc(self, timeout: float | None = None) -> None:
        self._gc.wait(timeout)

    def gc_status(self) -> dict[str, Any]:
        return {**self._gc.status(), "history": history(self.driver)}

    def start_fsck(self, repair: bool, max_manifest_bytes: int, mirrored: str | None) -> bool:
        """Start an integrity check in a thread; False when one is already running here.
        `mirrored`: the pull-through cache's prefix, if any (see `Fsck`)."""
        if self._fsck.running:
            return False
        checker = Fsck(self.driver, max_manifest_bytes, mirrored, self.clock)

        def run() -> FsckResult:
            result = checker.run(repair)
            log.info("fsck finished: {problems} problems in {blobs} blobs, {manifests} manifests, "
                     "{links} links{repaired}", problems=len(result.problems), blobs=result.blobs,
                     manifests=result.manifests, links=result.links,
                     repaired=f"; quarantined in {result.quarantine}" if result.quarantine else "")
            return result

        return self._fsck.start(checker, run)

    def fsck_status(self) -> dict[str, Any]:
        """The run going on or the last one; `last` is its result once it finished."""
        status = self._fsck.status()  # first: once it says not running, the result is set
        last = self._fsck.result
        return {**status, "last": last.to_json() if last is not None else None}

    def purge_uploads(self, dry_run: bool = False, age: float | None = None) -> PurgeResult:
        """Blocking; callers run it in a thread."""
        with self._purge_lock:
            result = UploadPurger(self.driver, self.clock).run(self.purge_age if age is None else age, dry_run)
            self.last_purge = result
        log.info("upload purge: {count} uploads, {fetches} partial proxy fetches, {bytes} bytes "
                 "{verb}", count=len(result.uploads), fetches=len(result.fetches),
                 bytes=result.bytes_freed,
                 verb="would be removed (dry run)" if dry_run else "removed")
        return result

    def purge_fetches(self, dry_run: bool = False) -> PurgeResult:
        """At start: the pull-through cache's abandoned partial fetches only. Blocking."""
        result = UploadPurger(self.driver, self.clock).fetches(self.purge_age, dry_run)
        if result.fetches:
            log.info("{count} partial proxy fetches, {bytes} bytes {verb}",
                     count=len(result.fetches), bytes=result.bytes_freed,
                     verb="would be removed (dry run)" if dry_run else "removed")
        return result
