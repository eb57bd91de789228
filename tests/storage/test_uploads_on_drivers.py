"""Uploads and blob reads over every driver: the domain on top of the driver contract.

Object stores cannot append, so their uploads keep one object per chunk; these tests pin that
both layouts give the same results, that an upload survives a change of process (two `Registry`
objects on the same storage), and what the blob descriptor cache may and may not remember.
"""

from __future__ import annotations

import hashlib
import os

import pytest

from appliance.oci.digest import Digest
from appliance.registry import Registry, RegistryError
from appliance.registry.purge import UploadPurger
from appliance.storage import paths
from appliance.storage.driver import PathNotFound, StorageDriver
from tests.gc.store import MemoryBody

from .conftest import DriverFactory

MiB = 1 << 20


def _registry(driver: StorageDriver, **options: bool) -> Registry:
    return Registry.open(driver, delete_enabled=True, max_manifest_bytes=4 << 20, **options)


def _files(driver: StorageDriver, path: str) -> dict[str, int]:
    return {info.path: info.size for info in driver.walk(path) if not info.is_dir}


@pytest.mark.parametrize("sizes", [[100], [100, 200, 300], [5 * MiB, 5 * MiB + 1, 10], [5 * MiB, 10, 5 * MiB]],
                         ids=["one", "small", "large", "small-in-the-middle"])
def test_chunked_upload_on_another_process(driver_factory: DriverFactory, sizes: list[int]) -> None:
    """Chunks sent to one process and finished by another (no running hash there: it re-reads
    what is stored) give the right blob, and the upload folder is gone."""
    first, second = _registry(driver_factory()), _registry(driver_factory())
    parts = [os.urandom(size) for size in sizes]
    data = b"".join(parts)
    upload = first.uploads.start("lib/app")
    offset = 0
    for number, part in enumerate(parts):
        owner = first if number % 2 == 0 else second
        offset = owner.uploads.append("lib/app", upload, MemoryBody(part), offset)
        assert second.uploads.size("lib/app", upload) == offset == first.uploads.size("lib/app", upload)
    digest = Digest.of(data)
    info = second.uploads.finish("lib/app", upload, digest, None)
    assert info.size == len(data)
    reader, _ = first.blobs.open("lib/app", digest)
    with reader:
        assert hashlib.sha256(reader.read()).digest() == hashlib.sha256(data).digest()
    assert _files(first.driver, paths.repository("lib/app")) == {paths.layer_link("lib/app", digest): 71}


def test_object_store_uploads_keep_one_object_per_chunk(driver_factory: DriverFactory) -> None:
    """Without appends each PATCH is its own object named by its offset; with them, Distribution's
    single `data` file is kept, exactly as before."""
    driver = driver_factory()
    registry = _registry(driver)
    upload = registry.uploads.start("lib/app")
    registry.uploads.append("lib/app", upload, MemoryBody(b"a" * 10), 0)
    registry.uploads.append("lib/app", upload, MemoryBody(b"b" * 5), 10)
    stored = _files(driver, paths.upload_dir("lib/app", upload))
    started = paths.upload_started_at("lib/app", upload)
    if driver.appends:
        assert set(stored) == {paths.upload_data("lib/app", upload), started}
        assert stored[paths.upload_data("lib/app", upload)] == 15
    else:
        assert {k: v for k, v in stored.items() if k != started} == {
            paths.upload_chunk("lib/app", upload, 0): 10, paths.upload_chunk("lib/app", upload, 10): 5}
        assert paths.upload_chunk("lib/app", upload, 10).endswith("/chunks/00000000000000000010")
    assert registry.uploads.size("lib/app", upload) == 15


def test_a_chunk_at_the_wrong_offset_is_refused(driver: StorageDriver) -> None:
    """A chunk that does not start where the upload ends is refused and stores nothing."""
    registry = _registry(driver)
    upload = registry.uploads.start("lib/app")
    registry.uploads.append("lib/app", upload, MemoryBody(b"x" * 10), 0)
    with pytest.raises(RegistryError) as refused:
        registry.uploads.append("lib/app", upload, MemoryBody(b"y" * 10), 5)
    assert refused.value.code == "BLOB_UPLOAD_INVALID"
    assert registry.uploads.size("lib/app", upload) == 10


def test_a_wrong_digest_cancels_the_upload(driver: StorageDriver) -> None:
    """Finishing with a digest that does not match drops the upload and stores no blob."""
    registry = _registry(driver)
    upload = registry.uploads.start("lib/app")
    registry.uploads.append("lib/app", upload, MemoryBody(b"x" * 10), 0)
    wrong = Digest.of(b"y")
    with pytest.raises(RegistryError) as refused:
        registry.uploads.finish("lib/app", upload, wrong, MemoryBody(b"z"))
    assert refused.value.code == "DIGEST_INVALID"
    with pytest.raises(RegistryError):
        registry.uploads.size("lib/app", upload)
    assert not registry.blobs.exists_global(wrong)


def test_a_whole_blob_in_one_request(driver: StorageDriver) -> None:
    """A monolithic upload (POST or PUT with the whole body) is checked and stored once."""
    registry = _registry(driver)
    data = os.urandom(70_000)
    upload = registry.uploads.start("lib/app")
    registry.uploads.finish("lib/app", upload, Digest.of(data), MemoryBody(data))
    assert driver.get_content(paths.blob_data(Digest.of(data))) == data
    with pytest.raises(PathNotFound):
        _files(driver, paths.upload_dir("lib/app", upload))
    empty = registry.uploads.start("lib/app")
    registry.uploads.finish("lib/app", empty, Digest.of(b""), None)
    assert driver.get_content(paths.blob_data(Digest.of(b""))) == b""


def test_purge_counts_the_bytes_of_either_layout(driver: StorageDriver) -> None:
    """Upload purging removes abandoned uploads and reports their size, chunks or data file."""
    registry = _registry(driver)
    upload = registry.uploads.start("lib/app")
    registry.uploads.append("lib/app", upload, MemoryBody(b"x" * 1000), 0)
    registry.uploads.append("lib/app", upload, MemoryBody(b"y" * 234), 1000)
    result = UploadPurger(driver, clock=lambda: 4e9).run(age=60)
    assert result.uploads == [{"repository": "lib/app", "upload": upload}]
    assert result.bytes_freed == 1234
    with pytest.raises(RegistryError):
        registry.uploads.size("lib/app", upload)


def test_blob_cache_never_hides_a_collected_blob(driver_factory: DriverFactory) -> None:
    """A cached size serves downloads, but once another process removed the blob, the next GET
    forgets it and answers BLOB_UNKNOWN; HEAD-style stats never trust the cache."""
    cached = _registry(driver_factory(), blob_cache=True)
    other = _registry(driver_factory())
    data = os.urandom(1000)
    upload = cached.uploads.start("lib/app")
    digest = Digest.of(data)
    cached.uploads.finish("lib/app", upload, digest, MemoryBody(data))
    assert cached.blobs.describe("lib/app", digest).size == 1000
    assert cached.blobs.cache is not None and cached.blobs.cache.get(digest) == 1000

    other.driver.delete(paths.blob_dir(digest))  # a GC elsewhere swept it
    assert cached.blobs.describe("lib/app", digest).size == 1000  # still remembered...
    with pytest.raises(RegistryError) as gone:
        cached.blobs.open("lib/app", digest, info=cached.blobs.describe("lib/app", digest))
    assert gone.value.code == "BLOB_UNKNOWN"
    assert cached.blobs.cache.get(digest) is None  # ...until a read failed
    for lookup in (cached.blobs.describe, cached.blobs.stat):
        with pytest.raises(RegistryError):
            lookup("lib/app", digest)


def test_blob_cache_follows_the_trash(driver_factory: DriverFactory) -> None:
    """A blob trashed by a GC in this process is forgotten at once; one trashed elsewhere is
    taken back from the trash by the GET that finds it missing."""
    registry = _registry(driver_factory(), blob_cache=True)
    data = os.urandom(500)
    digest = Digest.of(data)
    registry.uploads.finish("lib/app", registry.uploads.start("lib/app"), digest, MemoryBody(data))
    registry.blobs.describe("lib/app", digest)
    registry.blobs.trash(digest)
    assert registry.blobs.cache is not None and registry.blobs.cache.get(digest) is None
    registry.blobs.restore(digest)

    registry.blobs.describe("lib/app", digest)
    other = _registry(driver_factory())
    other.blobs.trash(digest)
    reader, info = registry.blobs.open("lib/app", digest, info=registry.blobs.describe("lib/app", digest))
    with reader:
        assert reader.read() == data
    assert info.size == 500


def test_redirects_only_where_the_driver_offers_them(driver_factory: DriverFactory) -> None:
    """With redirects on, drivers with presigned URLs give one (after checking the blob is
    there); the filesystem driver serves its blobs itself."""
    registry = _registry(driver_factory(), redirect=True)
    data = os.urandom(100)
    digest = Digest.of(data)
    registry.uploads.finish("lib/app", registry.uploads.start("lib/app"), digest, MemoryBody(data))
    found = registry.blobs.redirect_url("lib/app", digest)
    if getattr(registry.driver, "redirect_url", None) is None:
        assert found is None
    else:
        assert found is not None and found[1].size == 100 and found[0].startswith("http")
        with pytest.raises(RegistryError):  # not linked there: no URL to anyone
            registry.blobs.redirect_url("other/repo", digest)
    assert _registry(driver_factory()).blobs.redirect_url("lib/app", digest) is None
