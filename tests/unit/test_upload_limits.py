"""`UploadLimits`: sessions counted from storage, so every worker sees the same ones; idle ones
stop counting; the total is refreshed from storage and kept up to date by this process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from appliance.registry import Registry
from appliance.registry.uploadlimits import TooManyUploads, UploadLimits
from appliance.storage.filesystem import FilesystemDriver


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def worker(root: Path, clock: Clock, **caps: int) -> Registry:
    """A registry as one worker process opens it: its own limits object over shared storage."""
    driver = FilesystemDriver(str(root))
    limits = UploadLimits(driver, idle=60, clock=clock, total_refresh=10, **caps)
    return Registry.open(driver, delete_enabled=True, max_manifest_bytes=4 << 20,
                         upload_limits=limits)


def age(root: Path, seconds: float) -> None:
    """Make every upload file's last write `seconds` before the clock's start (files written
    now are years after it, so they count as just written)."""
    for directory, _, files in os.walk(root / "docker/registry/v2/repositories"):
        for name in files:
            os.utime(os.path.join(directory, name), (1_000_000 - seconds,) * 2)


def test_a_repository_cap_counts_sessions_of_every_worker(tmp_path: Path) -> None:
    """Sessions started by one worker fill the repository for another; cancelling frees one."""
    clock = Clock()
    one, two = worker(tmp_path, clock, per_repository=2), worker(tmp_path, clock, per_repository=2)
    first = one.uploads.start("team/app")
    one.uploads.start("team/app")
    with pytest.raises(TooManyUploads) as refused:
        two.uploads.start("team/app")
    assert refused.value.code == "TOOMANYREQUESTS"
    assert refused.value.detail["limit"] == "appliance.limits.maxrepositoryuploads"
    assert 1 <= refused.value.retry_after <= 60
    two.uploads.start("team/other")
    one.uploads.cancel("team/app", first)
    two.uploads.start("team/app")


def test_idle_sessions_stop_counting(tmp_path: Path) -> None:
    """A session with no write for `idle` no longer counts, though it still exists."""
    clock = Clock()
    registry = worker(tmp_path, clock, per_repository=1)
    abandoned = registry.uploads.start("team/app")
    age(tmp_path, 61)
    registry.uploads.start("team/app")
    assert registry.uploads.size("team/app", abandoned) == 0


def test_the_total_is_refreshed_from_storage(tmp_path: Path) -> None:
    """Across repositories: this worker's own sessions count at once, another worker's (and
    their end) from its next refresh."""
    clock = Clock()
    one, two = worker(tmp_path, clock, total=3), worker(tmp_path, clock, total=3)
    two.uploads.start("x")
    started = [one.uploads.start("a"), one.uploads.start("b")]
    with pytest.raises(TooManyUploads) as refused:
        one.uploads.start("c")
    assert refused.value.detail["limit"] == "appliance.limits.maxuploads"
    two.uploads.start("y")  # counted before `one` started anything: it has not seen them yet
    clock.now += 10
    with pytest.raises(TooManyUploads):
        two.uploads.start("z")
    for upload_id, name in zip(started, "ab", strict=True):
        one.uploads.cancel(name, upload_id)
    clock.now += 10
    two.uploads.start("z")
