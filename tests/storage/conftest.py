"""`driver_factory`: one parameter per storage driver, each over a real backend.

Every call of the factory returns a new driver over the *same* storage (same folder, or same
bucket and rootdirectory), so tests can check that state lives in storage, not in a driver.
Keyword arguments are driver options (`chunksize=...`); a driver ignores those it lacks.

To add a driver: write `_make_<name>(request, tmp_path, **options)` and add it to `DRIVERS`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from appliance.storage.driver import StorageDriver
from appliance.storage.filesystem import FilesystemDriver
from appliance.storage.s3 import S3Driver, S3Options
from appliance.storage.swift import SwiftDriver, SwiftOptions

DriverFactory = Callable[..., StorageDriver]


def _make_filesystem(request: pytest.FixtureRequest, tmp_path: Path, **options: Any) -> StorageDriver:
    return FilesystemDriver(str(tmp_path / "root"))


def _make_s3(request: pytest.FixtureRequest, tmp_path: Path, **options: Any) -> StorageDriver:
    seaweedfs = request.getfixturevalue("seaweedfs")
    bucket = request.getfixturevalue("s3_bucket")
    root = getattr(request.node, "_s3_root", None) or f"/contract/{uuid.uuid4().hex[:12]}"
    request.node._s3_root = root
    settings = {**seaweedfs.storage_config(bucket, root), **options}
    return S3Driver(S3Options(
        bucket=settings["bucket"], region=settings["region"],
        regionendpoint=settings["regionendpoint"], accesskey=settings["accesskey"],
        secretkey=settings["secretkey"], secure=settings["secure"],
        chunksize=settings["chunksize"], rootdirectory=settings["rootdirectory"],
        multipartcopythresholdsize=settings.get("multipartcopythresholdsize", 32 << 20),
        multipartcopychunksize=settings.get("multipartcopychunksize", 32 << 20),
        spooldirectory=str(tmp_path / "spool"),
    ))


def _make_swift(request: pytest.FixtureRequest, tmp_path: Path, **options: Any) -> StorageDriver:
    """1 MiB segments (Distribution's smallest), so the suite's 5 MiB files are segmented."""
    swift = request.getfixturevalue("swift_server")
    container = getattr(request.node, "_swift_container", None) or swift.new_container("contract")
    request.node._swift_container = container
    settings = swift.storage_config(container, chunksize=options.get("chunksize", 1 << 20))
    return SwiftDriver(SwiftOptions(**settings, spooldirectory=str(tmp_path / "spool")))


DRIVERS: dict[str, Callable[..., StorageDriver]] = {
    "filesystem": _make_filesystem,
    "s3": _make_s3,
    "swift": _make_swift,
}


@pytest.fixture(params=list(DRIVERS))
def driver_factory(request: pytest.FixtureRequest, tmp_path: Path) -> DriverFactory:
    make = DRIVERS[request.param]
    return lambda **options: make(request, tmp_path, **options)


@pytest.fixture
def driver(driver_factory: DriverFactory) -> StorageDriver:
    return driver_factory()
