"""Upload purging: remove uploads abandoned for longer than `age`, as Distribution does."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime

from appliance.storage import paths
from appliance.storage.driver import PathNotFound, StorageDriver

from .catalog import repositories_holding


@dataclass
class PurgeResult:
    dry_run: bool
    started: float
    finished: float = 0.0
    uploads: list[dict[str, str]] = field(default_factory=list)
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
