"""The integrity check as a domain object on a filesystem store: the rules that keep a repair
safe beside a live server, and the cases the CLI tests do not reach."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from appliance.oci.digest import Digest
from appliance.registry import Registry, RegistryError
from appliance.registry.fsck import Fsck, FsckResult
from appliance.registry.gc import GarbageCollector, Progress
from appliance.storage import paths
from tests.gc.store import MemoryBody, open_registry, pull_blob_bytes, push_image, push_index

from .conftest import found


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return open_registry(str(tmp_path))


def file(registry: Registry, path: str) -> Path:
    return Path(registry.driver.root + path)  # type: ignore[attr-defined]


def run(registry: Registry, repair: bool = False, **options: object) -> FsckResult:
    return Fsck(registry.driver, **options).run(repair)  # type: ignore[arg-type]


def test_a_blob_that_appears_during_the_scan_is_not_missing(
    registry: Registry, tmp_path: Path
) -> None:
    """A layer absent while blobs were hashed but stored before its link is looked at (a push
    racing the scan) is no problem, and repair moves nothing."""
    image = push_image(registry, "race/app", "v1", [os.urandom(200)])
    layer = file(registry, paths.blob_data(image.blobs[1]))
    aside = tmp_path / "aside"
    layer.rename(aside)

    def push_lands(progress: Progress) -> None:
        if progress.phase == "repositories" and aside.exists():
            aside.rename(layer)

    result = Fsck(registry.driver, on_progress=push_lands).run(repair=True)

    assert (result.problems, result.quarantine) == ([], None)
    assert not file(registry, paths.QUARANTINE).exists()


def test_repair_leaves_what_was_fixed_after_the_scan(registry: Registry, tmp_path: Path) -> None:
    """A layer missing during the scan but back when repair reaches it is reported, and left
    in place with its link and manifest: repair asks again just before each move."""
    image = push_image(registry, "race/app", "v1", [os.urandom(200)])
    layer = file(registry, paths.blob_data(image.blobs[1]))
    aside = tmp_path / "aside"
    layer.rename(aside)

    def push_lands(progress: Progress) -> None:
        if progress.phase == "repair" and aside.exists():
            aside.rename(layer)

    result = Fsck(registry.driver, on_progress=push_lands).run(repair=True)

    assert found(result.to_json()) == {
        ("dangling_link", "race/app", str(image.blobs[1])),
        ("missing_reference", "race/app", str(image.digest)),
    }
    assert {p.action for p in result.problems} == {
        "left in place: sound again when repair came to it"
    }
    assert registry.manifests.get("race/app", "v1").digest == image.digest
    assert registry.blobs.is_linked("race/app", image.blobs[1])


def test_repair_never_moves_good_bytes_or_a_tag_a_push_just_moved(registry: Registry) -> None:
    """A corrupt layer pushed again, and a dangling tag pushed again, between the scan and
    the repair: both are reported, then left in place, with the links and manifest that
    need them, so the image pulls."""
    image = push_image(registry, "race/app", "v1", [os.urandom(200)])
    layer = file(registry, paths.blob_data(image.blobs[1]))
    good = layer.read_bytes()
    layer.write_bytes(b"corrupt")
    tag = file(registry, paths.tag_current_link("race/app", "next"))
    tag.parent.mkdir(parents=True)
    tag.write_text("sha256:" + "0" * 64)

    def pushes_land(progress: Progress) -> None:
        if progress.phase == "repair" and progress.done == 0:
            layer.write_bytes(good)
            tag.write_text(str(image.digest))

    result = Fsck(registry.driver, on_progress=pushes_land).run(repair=True)

    assert {p.kind for p in result.problems} == {
        "corrupt_blob",
        "dangling_link",
        "missing_reference",
    }
    assert {p.action for p in result.problems} == {
        "left in place: sound again when repair came to it"
    }
    assert registry.manifests.get("race/app", "next").digest == image.digest
    assert pull_blob_bytes(registry, "race/app", image.blobs[1]) == good
    assert run(registry).problems == []


def test_blobs_in_a_garbage_collectors_trash_count_as_present(registry: Registry) -> None:
    """A running GC moves blobs to its trash before it looks again; readers take them back,
    so the check does too and reports nothing."""
    image = push_image(registry, "trash/app", "v1", [os.urandom(200)])
    registry.blobs.trash(image.blobs[1])

    assert run(registry).problems == []


def test_uploads_in_progress_are_neither_read_nor_moved(registry: Registry) -> None:
    """Whatever is under `_uploads` (even a stray link) is not the check's business."""
    upload = registry.uploads.start("up/app")
    registry.uploads.append("up/app", upload, MemoryBody(os.urandom(1000)))
    stray = file(registry, paths.upload_dir("up/app", upload) + "/link")
    stray.write_text("not a digest")
    before = sorted(p for p in file(registry, paths.upload_dir("up/app", upload)).rglob("*"))

    result = run(registry, repair=True)

    assert result.problems == []
    assert (
        sorted(p for p in file(registry, paths.upload_dir("up/app", upload)).rglob("*")) == before
    )


def test_sha512_blobs_are_verified_with_sha512(registry: Registry) -> None:
    """A sha512 blob is hashed with sha512: sound when its bytes match, corrupt when not."""
    data = os.urandom(700)
    digest = Digest.of(data, "sha512")
    registry.driver.put_content(paths.blob_data(digest), data)
    registry.driver.put_content(paths.layer_link("long/app", digest), str(digest).encode())
    assert run(registry).problems == []

    registry.driver.put_content(paths.blob_data(digest), data[:-1])

    assert found(run(registry).to_json()) == {
        ("corrupt_blob", None, str(digest)),
        ("dangling_link", "long/app", str(digest)),
    }


def test_an_index_whose_child_is_broken_is_broken_and_repair_takes_both(registry: Registry) -> None:
    """A child image losing a layer breaks it and the index naming it; repair quarantines both
    revisions and the tags on them, so both answer MANIFEST_UNKNOWN, and leaves the rest."""
    broken = push_image(registry, "multi/app", "amd64", [os.urandom(200)])
    sound = push_image(registry, "multi/app", "arm64", [os.urandom(200)])
    index = push_index(registry, "multi/app", "v1", [broken, sound])
    file(registry, paths.blob_data(broken.blobs[1])).unlink()

    result = run(registry, repair=True)

    assert found(result.to_json()) == {
        ("dangling_link", "multi/app", str(broken.blobs[1])),
        ("missing_reference", "multi/app", str(broken.digest)),
        ("missing_reference", "multi/app", str(index.digest)),
    }
    for reference in ("v1", "amd64", index.digest, broken.digest):
        with pytest.raises(RegistryError, match="manifest unknown"):
            registry.manifests.get("multi/app", reference)
    assert registry.manifests.get("multi/app", "arm64").digest == sound.digest
    assert registry.manifests.tags("multi/app") == ["arm64"]
    assert run(registry).problems == []


def test_a_mirror_may_lack_blobs_it_never_fetched(registry: Registry) -> None:
    """Under the pull-through cache's prefix a manifest without its blobs is how the cache
    works (blobs come on demand); elsewhere it is a missing reference."""
    for name in ("hub/library/app", "team/app"):
        image = push_image(registry, name, "v1", [os.urandom(200)])
        registry.driver.delete(paths.blob_data(image.blobs[1]))
        registry.driver.delete(paths.layer_link(name, image.blobs[1]).rsplit("/", 1)[0])

    assert {p.repository for p in run(registry, mirrored="hub/").problems} == {"team/app"}
    assert {p.repository for p in run(registry, mirrored="").problems} == set()


def test_a_referrer_without_its_subject_is_reported_and_left(registry: Registry) -> None:
    """The spec lets a referrer arrive before its subject: reported, never quarantined."""
    subject = push_image(registry, "sig/app", "v1", [os.urandom(100)])
    referrer = push_image(registry, "sig/app", None, [], subject=subject, artifact_type="x/sig")
    registry.manifests.delete("sig/app", subject.digest)
    file(registry, paths.blob_data(subject.digest)).unlink()

    result = run(registry, repair=True)

    assert found(result.to_json()) == {("missing_subject", "sig/app", str(referrer.digest))}
    assert result.problems[0].action == "left in place: nothing to move"
    assert registry.manifests.get("sig/app", referrer.digest).digest == referrer.digest


def test_what_garbage_collection_leaves_is_counted_not_reported(registry: Registry) -> None:
    """GC removes an untagged image's blobs but, like Distribution's, leaves the layer links
    and the tag's history entry: links to nothing that nothing needs, clean for fsck."""
    push_image(registry, "team/app", "1.0", [os.urandom(200)])
    push_image(registry, "team/app", "1.0", [os.urandom(200)])  # the first is untagged now
    swept = GarbageCollector(registry.driver, registry.blobs, grace=0).run(delete_untagged=True)

    result = run(registry)

    assert len(swept.blobs) == 3
    assert (result.problems, result.stale_links) == ([], 3)  # config, layer, tag history
