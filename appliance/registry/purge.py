"""Upload purging: remove uploads abandoned for longer than `age`, as Distribution does; and
the pull-through cache's partial fetches (`/appliance/proxy/incoming/`) left by a fetch that
broke or a process that died; and request bodies a killed process left in the spool folder.
A fetch in flight writes as bytes arrive, so one untouched for
`FETCH_AGE` (or `age`, when shorter) is abandoned."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime

from appliance.storage import paths
from appliance.storage.driver import PathNotFound, StorageDriver

from .catalog import repositories_holding

FETCH_AGE = 3600.0


@dataclass
class PurgeResult:
    dry_run: bool
    started: float
    finished: float = 0.0
    uploads: list[dict[str, str]] = field(default_factory=list)
    fetches: list[str] = field(default_factory=list)  # ids of partial pull-through fetches
    spooled: int = 0  # abandoned request bodies removed from the spool folder
    bytes_freed: int = 0

    def to_json(self) -> dict:
        return asdict(self)


def _started_at(text: bytes) -> float | None:
    try:
        return datetime.fromisoformat(text.decode().strip().replace("Z", "+00:00")).timestamp()
    except (ValueError, UnicodeDecodeError):
        return None


class UploadPurger:
    def __init__(self, driver: StorageDriver, clock: Callable[[], float] = time.time) -> None:
        self.driver = driver
        self.clock = clock

    def run(self, age: float, dry_run: bool = False) -> PurgeResult:
        """Uploads whose `startedat` (or, when unreadable, data mtime) is older than `age`."""
        result = PurgeResult(dry_run, self.clock())
        cutoff = result.started - age
        for name in repositories_holding(self.driver, "_uploads"):
            for upload in self._list(f"{paths.repository(name)}/_uploads"):
                upload_id = upload.rsplit("/", 1)[1]
                started, size = self._describe(name, upload_id)
                if started is None or started >= cutoff:
                    continue
                if not dry_run:
                    try:
                        self.driver.delete(paths.upload_dir(name, upload_id))
                    except PathNotFound:
                        continue
                result.uploads.append({"repository": name, "upload": upload_id})
                result.bytes_freed += size
        self._purge_spool(result, age)
        return self._purge_fetches(result, age)

    def _purge_spool(self, result: PurgeResult, age: float) -> None:
        """Request bodies a killed process left in the local spool folder. A body is written as
        it arrives and handed over (renamed or deleted) when its request ends, so one untouched
        for `FETCH_AGE` (or `age`, when shorter) is abandoned."""
        directory = self.driver.spool_directory()
        if directory is None:
            return
        cutoff = result.started - min(age, FETCH_AGE)
        with os.scandir(directory) as entries:
            for entry in entries:
                try:
                    info = entry.stat()
                    if not entry.is_file() or info.st_mtime >= cutoff:
                        continue
                    if not result.dry_run:
                        os.unlink(entry.path)
                except FileNotFoundError:
                    continue
                result.spooled += 1
                result.bytes_freed += info.st_size

    def fetches(self, age: float, dry_run: bool = False) -> PurgeResult:
        """Only the partial fetches: one listing, cheap enough for every start."""
        return self._purge_fetches(PurgeResult(dry_run, self.clock()), age)

    def _purge_fetches(self, result: PurgeResult, age: float) -> PurgeResult:
        cutoff = result.started - min(age, FETCH_AGE)
        try:
            partial = [info for info in self.driver.walk(paths.PROXY_INCOMING) if not info.is_dir]
        except PathNotFound:
            partial = []
        for info in partial:
            if info.modified >= cutoff:
                continue
            if not result.dry_run:
                try:
                    self.driver.delete(info.path)
                except PathNotFound:
                    continue
            result.fetches.append(info.path.rsplit("/", 1)[1])
            result.bytes_freed += info.size
        result.finished = self.clock()
        return result

    def _describe(self, name: str, upload_id: str) -> tuple[float | None, int]:
        try:  # `data` on a filesystem, `chunks/*` on object stores
            size = sum(info.size for info in self.driver.walk(paths.upload_dir(name, upload_id))
                       if not info.is_dir and not info.path.endswith("/startedat"))
        except PathNotFound:
            size = 0
        try:
            started = _started_at(self.driver.get_content(paths.upload_started_at(name, upload_id)))
        except PathNotFound:
            started = None
        if started is None:
            try:
                started = self.driver.stat(paths.upload_dir(name, upload_id)).modified
            except PathNotFound:
                return None, 0
        return started, size

    def _list(self, path: str) -> list[str]:
        try:
            return self.driver.list(path)
        except PathNotFound:
            return []
