"""The content-addressed caches: the LRU's bounds, and manifest bodies read once per digest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from appliance.registry import Registry, RegistryError
from appliance.registry.lru import LruCache
from appliance.storage.filesystem import FilesystemDriver
from tests.gc.store import push_image


def test_lru_drops_least_recently_used_by_weight() -> None:
    cache: LruCache[str, bytes] = LruCache(10, len)
    cache.put("a", b"1234")
    cache.put("b", b"1234")
    assert cache.get("a") == b"1234"  # now b is the least recently used
    cache.put("c", b"1234")
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (b"1234", None, b"1234")
    cache.put("huge", b"x" * 11)
    assert cache.get("huge") is None, "an entry over the whole limit is not kept"
    cache.put("a", b"12")  # replacing an entry frees its old weight
    cache.put("d", b"1234")
    assert (cache.get("a"), cache.get("c"), cache.get("d")) == (b"12", b"1234", b"1234")


class CountingDriver(FilesystemDriver):
    def __init__(self, root: str) -> None:
        super().__init__(root)
        self.reads: list[str] = []

    def get_content(self, path: str) -> bytes:
        self.reads.append(path)
        return super().get_content(path)


def open_registry(driver: Any, cache: bool) -> Registry:
    return Registry.open(driver, delete_enabled=True, max_manifest_bytes=4 << 20, blob_cache=cache)


def test_manifest_bodies_are_read_once_per_digest_with_the_cache(tmp_path: Path) -> None:
    """With storage.cache.blobdescriptor, a second GET of a manifest reads only its links, and
    a deleted manifest is still unknown at once (the revision link is always checked)."""
    driver = CountingDriver(str(tmp_path))
    registry = open_registry(driver, cache=True)
    image = push_image(registry, "cached/app", "v1", [b"layer"])
    driver.reads.clear()
    for _ in range(3):
        assert registry.manifests.get("cached/app", image.digest).digest == image.digest
    assert sum(path.endswith("/data") for path in driver.reads) == 1
    registry.manifests.delete("cached/app", image.digest)
    uncached = open_registry(CountingDriver(str(tmp_path)), cache=False)
    for store in (registry, uncached):
        with pytest.raises(RegistryError) as unknown:
            store.manifests.get("cached/app", image.digest)
        assert unknown.value.code == "MANIFEST_UNKNOWN"
