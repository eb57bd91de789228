"""Garbage collection rules, run straight on a filesystem store."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from appliance.oci.digest import Digest
from appliance.registry import Registry, RegistryError
from appliance.registry.gc import GarbageCollector, history
from appliance.storage import paths

from .store import Image, open_registry, pull_blob_bytes, pulls_completely, push_blob, push_image, push_index

LATER = 3600.0  # a clock one hour ahead makes everything written so far older than a 0 s grace


def collector(registry: Registry, grace: float = 0.0, ahead: float = LATER) -> GarbageCollector:
    return GarbageCollector(registry.driver, registry.blobs, grace, clock=lambda: time.time() + ahead)


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return open_registry(str(tmp_path / "data"))


def blob_exists(registry: Registry, digest: Digest) -> bool:
    return os.path.exists(registry.driver.root + paths.blob_data(digest))


def test_dry_run_lists_exactly_what_a_real_run_removes(registry: Registry) -> None:
    """A dry run reports the unreferenced blobs and their bytes; the real run then removes those."""
    kept = push_image(registry, "app", "v1", [b"shared", b"kept-layer"])
    orphan = push_blob(registry, "app", b"x" * 1000)
    dropped = push_image(registry, "app", "old", [b"shared", b"only-old" * 50])
    registry.manifests.delete(dropped.name, dropped.digest)
    dry = collector(registry).run(dry_run=True)
    expected = {str(orphan), str(dropped.digest), str(dropped.blobs[0]), str(dropped.blobs[2])}
    assert set(dry.blobs) == expected
    assert all(blob_exists(registry, Digest.parse(d)) for d in expected)
    real = collector(registry).run()
    assert set(real.blobs) == expected and real.bytes_freed == dry.bytes_freed > 1400
    assert not any(blob_exists(registry, Digest.parse(d)) for d in expected)
    assert pulls_completely(registry, kept)
    assert history(registry.driver)[0]["blobs"] == real.blobs


def test_young_blobs_are_kept(registry: Registry) -> None:
    """Blobs written within the grace period survive even when nothing references them."""
    orphan = push_blob(registry, "app", b"just uploaded")
    result = collector(registry, grace=600, ahead=0).run()
    assert result.blobs == [] and blob_exists(registry, orphan)


def test_recently_linked_old_blob_is_kept(registry: Registry) -> None:
    """An old blob linked again (a mount or re-upload) within the grace period survives."""
    orphan = push_blob(registry, "app", b"old data")
    data_path = registry.driver.root + paths.blob_data(orphan)
    os.utime(data_path, (time.time() - 7200, time.time() - 7200))
    assert registry.blobs.mount("other", "app", orphan) is not None
    for link in (paths.layer_link("app", orphan),):
        full = registry.driver.root + link
        os.utime(full, (time.time() - 7200, time.time() - 7200))
    assert collector(registry, grace=600, ahead=0).run().blobs == []
    assert blob_exists(registry, orphan)


def test_delete_untagged_keeps_children_and_referrers_of_tagged(registry: Registry) -> None:
    """Untagged manifests go; children of a tagged index and referrers of a kept image stay."""
    amd, arm = push_image(registry, "multi", None, [b"amd"]), push_image(registry, "multi", None, [b"arm"])
    index = push_index(registry, "multi", "latest", [amd, arm])
    signature = push_image(registry, "multi", None, [b"sig"], subject=amd, artifact_type="application/x-sig")
    stray = push_image(registry, "multi", None, [b"stray"])
    result = collector(registry).run(delete_untagged=True)
    assert result.manifests == [{"repository": "multi", "digest": str(stray.digest)}]
    for image in (amd, arm, signature):
        assert pulls_completely(registry, image)
    assert registry.manifests.get("multi", "latest").digest == index.digest
    with pytest.raises(RegistryError):
        registry.manifests.get("multi", stray.digest)
    assert not blob_exists(registry, stray.blobs[1])


def test_without_delete_untagged_untagged_manifests_stay(registry: Registry) -> None:
    """Plain GC keeps every manifest revision, tagged or not, and what it references."""
    stray = push_image(registry, "app", None, [b"untagged but kept"])
    assert collector(registry).run().manifests == []
    assert pulls_completely(registry, stray)


def test_emptied_repository_leaves_the_catalog(registry: Registry) -> None:
    """A repository whose last manifest was removed by delete-untagged disappears from the catalog."""
    image = push_image(registry, "gone/soon", "v1", [b"a"])
    push_image(registry, "stays", "v1", [b"b"])
    registry.manifests.delete_tag("gone/soon", "v1")
    result = collector(registry).run(delete_untagged=True)
    assert result.repositories == ["gone/soon"]
    assert registry.catalog.repositories() == ["stays"]
    assert not blob_exists(registry, image.blobs[1])


def test_trashed_blob_comes_back_for_a_reader(registry: Registry) -> None:
    """A blob left in the trash by a killed GC is taken back by the first read."""
    image = push_image(registry, "app", "v1", [b"layer"])
    registry.driver.move(paths.blob_data(image.blobs[1]), paths.trash(image.blobs[1]))
    assert pulls_completely(registry, image)


def test_next_run_restores_a_killed_runs_trash(registry: Registry) -> None:
    """GC first takes back everything a killed run left in its trash, then collects normally."""
    image = push_image(registry, "app", "v1", [b"layer"])
    registry.driver.move(paths.blob_data(image.blobs[1]), paths.trash(image.blobs[1]))
    result = collector(registry).run()
    assert result.restored == [str(image.blobs[1])] and result.blobs == []
    assert blob_exists(registry, image.blobs[1])


def test_manifest_push_takes_back_a_trashed_blob(registry: Registry) -> None:
    """A manifest pushed while its old layer sits in the trash restores the layer and succeeds."""
    layer = push_blob(registry, "app", b"reused layer")
    config = push_blob(registry, "app", b'{"os":"linux"}')
    for digest in (layer, config):
        registry.driver.move(paths.blob_data(digest), paths.trash(digest))
    body = (
        '{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",'
        f'"config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"{config}","size":14}},'
        f'"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"{layer}","size":12}}]}}'
    ).encode()
    digest, _ = registry.manifests.put("app", "v1", body, None)
    assert pulls_completely(registry, Image("app", "v1", digest, (config, layer)))


def test_manifest_push_fails_cleanly_when_a_blob_is_gone(registry: Registry) -> None:
    """A manifest whose layer was swept is refused and leaves no revision or tag behind."""
    layer = push_blob(registry, "app", b"swept layer")
    config = push_blob(registry, "app", b"{}")
    registry.driver.delete(paths.blob_data(layer))
    body = (
        '{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",'
        f'"config":{{"mediaType":"x","digest":"{config}","size":2}},'
        f'"layers":[{{"mediaType":"x","digest":"{layer}","size":11}}]}}'
    ).encode()
    with pytest.raises(RegistryError) as caught:
        registry.manifests.put("app", "v1", body, None)
    assert caught.value.code == "MANIFEST_BLOB_UNKNOWN"
    with pytest.raises(RegistryError) as listing:  # not even a `_manifests` folder was made
        registry.manifests.tags("app")
    assert listing.value.code == "NAME_UNKNOWN"


def test_unreadable_manifest_stops_the_sweep(registry: Registry) -> None:
    """A revision whose manifest cannot be parsed makes GC refuse to remove anything."""
    orphan = push_blob(registry, "app", b"orphan")
    junk = b"not json at all"
    junk_digest = Digest.of(junk)
    registry.driver.put_content(paths.blob_data(junk_digest), junk)
    registry.driver.put_content(paths.revision_link("app", junk_digest), str(junk_digest).encode())
    with pytest.raises(Exception, match="cannot be read"):
        collector(registry).run()
    assert blob_exists(registry, orphan)


def test_schema1_layers_are_marked(registry: Registry) -> None:
    """Layers of an old schema 1 manifest (registry:2 data) are kept."""
    layer = push_blob(registry, "old", b"schema1 layer")
    body = f'{{"schemaVersion":1,"name":"old","tag":"v1","fsLayers":[{{"blobSum":"{layer}"}}]}}'.encode()
    digest = Digest.of(body)
    registry.driver.put_content(paths.blob_data(digest), body)
    registry.driver.put_content(paths.revision_link("old", digest), str(digest).encode())
    assert collector(registry).run().blobs == []
    assert pull_blob_bytes(registry, "old", layer) == b"schema1 layer"
