"""Admin API writes: tag and digest deletes, server-side copy, read-only mode, disabled deletes."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from appliance.admin.client import AdminClient, AdminError
from tests.api.client import DOCKER_MANIFEST, OCI_INDEX, PushedImage, V2Client, digest_of
from tests.api.conftest import running, without_deletes
from tests.server import ApplianceServer

from .conftest import image_config, push_index

AMD64 = {"os": "linux", "architecture": "amd64"}
ARM64 = {"os": "linux", "architecture": "arm64"}


def pulls(v2: V2Client, name: str, reference: str, image: PushedImage) -> bool:
    """The manifest under `reference` is `image`'s, and every blob it names is served."""
    got = v2.request(
        "GET", f"/v2/{name}/manifests/{reference}", headers={"Accept": image.media_type}
    )
    if got.status_code != 200 or got.content != image.manifest:
        return False
    blobs = (image.config, *image.layers) if image.config else ()  # an index names no blobs
    return all(
        v2.request("GET", f"/v2/{name}/blobs/{digest_of(blob)}").content == blob for blob in blobs
    )


def test_deleting_a_tag_keeps_its_sibling(admin: AdminClient, v2: V2Client) -> None:
    """Deleting one of two tags on a digest removes only it; the other still pulls completely."""
    image = v2.push_image("writes/tag", "v1", [os.urandom(800)], config=image_config())
    v2.put_manifest("writes/tag", "stable", image.manifest, DOCKER_MANIFEST)
    assert admin.delete_tag("writes/tag", "v1") == {
        "name": "writes/tag",
        "tag": "v1",
        "digest": image.digest,
    }
    assert [t["tag"] for t in admin.tags("writes/tag")] == ["stable"]
    assert v2.request("GET", "/v2/writes/tag/manifests/v1").status_code == 404
    assert pulls(v2, "writes/tag", "stable", image)
    with pytest.raises(AdminError) as raised:
        admin.delete_tag("writes/tag", "v1")
    assert (raised.value.status, raised.value.code) == (404, "MANIFEST_UNKNOWN")


def test_deleting_a_digest_reports_the_tags_it_took(admin: AdminClient, v2: V2Client) -> None:
    """Deleting by digest removes the manifest and lists every tag that pointed at it."""
    image = v2.push_image("writes/digest", "a", [os.urandom(800)], config=image_config())
    v2.put_manifest("writes/digest", "b", image.manifest, DOCKER_MANIFEST)
    other = v2.push_image("writes/digest", "c", [os.urandom(800)], config=image_config())
    deleted = admin.delete_manifest("writes/digest", image.digest)
    assert deleted == {"name": "writes/digest", "digest": image.digest, "removed_tags": ["a", "b"]}
    assert v2.request("GET", f"/v2/writes/digest/manifests/{image.digest}").status_code == 404
    assert pulls(v2, "writes/digest", "c", other)


def test_deletes_name_the_right_endpoint(admin: AdminClient, v2: V2Client) -> None:
    """A tag on the digest endpoint, a digest on the tag endpoint: refused, nothing deleted."""
    image = v2.push_image("writes/mixup", "v1", [os.urandom(100)], config=image_config())
    for call, argument, code in [
        (admin.delete_manifest, "v1", "DIGEST_INVALID"),
        (admin.delete_tag, image.digest, "TAG_INVALID"),
    ]:
        with pytest.raises(AdminError) as raised:
            call("writes/mixup", argument)
        assert (raised.value.status, raised.value.code) == (400, code)
    assert pulls(v2, "writes/mixup", "v1", image)


def test_retag_across_repositories_then_pull(admin: AdminClient, v2: V2Client) -> None:
    """Copying repo:tag to another repository links its blobs there; the new tag pulls whole."""
    image = v2.push_image(
        "copy/src", "v1", [os.urandom(1200), os.urandom(300)], config=image_config()
    )
    copied = admin.copy("copy/src:v1", "copy/dst:released")
    assert copied == {
        "source": "copy/src:v1",
        "destination": "copy/dst:released",
        "digest": image.digest,
        "media_type": DOCKER_MANIFEST,
        "mounted": 3,
        "manifests": 1,
    }
    assert pulls(v2, "copy/dst", "released", image)
    assert admin.copy(f"copy/src@{image.digest}", "copy/dst:again")["mounted"] == 0
    assert admin.copy("copy/src:v1", "copy/src:v1-copy")["digest"] == image.digest
    assert pulls(v2, "copy/dst", "again", image)
    assert pulls(v2, "copy/src", "v1-copy", image)


def test_copying_an_index_brings_its_children(admin: AdminClient, v2: V2Client) -> None:
    """An index copied to another repository arrives with each child manifest and its blobs."""
    index, children = push_index(v2, "copy/multi", "v1", [AMD64, ARM64])
    copied = admin.copy("copy/multi:v1", "copy/multi-dst")
    assert (copied["destination"], copied["digest"], copied["manifests"]) == (
        "copy/multi-dst:v1",
        index.digest,
        3,
    )
    assert pulls(v2, "copy/multi-dst", "v1", index)
    for child in children:
        assert pulls(v2, "copy/multi-dst", child.digest, child)
    assert (
        v2.request(
            "GET", "/v2/copy/multi-dst/manifests/v1", headers={"Accept": OCI_INDEX}
        ).status_code
        == 200
    )


@pytest.mark.parametrize(
    ("source", "destination", "status", "code"),
    [
        ("copy/none:v1", "copy/x:v1", 404, "MANIFEST_UNKNOWN"),
        ("copy/src:v1", "Copy/X:v1", 400, "NAME_INVALID"),
        ("copy/src:v1", "copy/x:bad:tag", 400, "TAG_INVALID"),
        ("copy/src:v1", f"copy/x@{digest_of(b'x')}", 400, "BAD_REQUEST"),
        ("copy/src", "copy/x:v1", 400, "BAD_REQUEST"),
        ("copy/src@v1", "copy/x:v1", 400, "DIGEST_INVALID"),
    ],
)
def test_bad_copies_are_refused(
    admin: AdminClient, source: str, destination: str, status: int, code: str
) -> None:
    """Unknown sources, bad names or tags, a digest as destination: refused with their code."""
    with pytest.raises(AdminError) as raised:
        admin.copy(source, destination)
    assert (raised.value.status, raised.value.code) == (status, code)


def test_read_only_refuses_admin_writes_until_switched_off(
    admin: AdminClient, v2: V2Client
) -> None:
    """Read-only, admin deletes and copies are 405 UNSUPPORTED; switched off, they work."""
    image = v2.push_image("writes/ro", "v1", [os.urandom(100)], config=image_config())
    assert admin.readonly() is False
    assert admin.set_readonly(True) is True
    try:
        assert admin.readonly() is True
        assert admin.status()["read_only"] is True
        for attempt in (
            lambda: admin.delete_tag("writes/ro", "v1"),
            lambda: admin.delete_manifest("writes/ro", image.digest),
            lambda: admin.copy("writes/ro:v1", "writes/ro:v2"),
        ):
            with pytest.raises(AdminError) as raised:
                attempt()
            assert (raised.value.status, raised.value.code) == (405, "UNSUPPORTED")
            assert "read-only" in raised.value.message
        assert admin.purge_uploads(dry_run=True)["dry_run"] is True
    finally:
        assert admin.set_readonly(False) is False
    assert admin.copy("writes/ro:v1", "writes/ro:v2")["digest"] == image.digest
    assert admin.delete_tag("writes/ro", "v1")["digest"] == image.digest


@pytest.fixture(scope="module")
def nodelete(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApplianceServer]:
    with running(tmp_path_factory, "admin-nodelete", without_deletes) as started:
        yield started


def test_deletes_obey_storage_delete_enabled(nodelete: ApplianceServer) -> None:
    """`storage.delete.enabled: false`: admin deletes are 405 naming it; copies work."""
    v2, admin = V2Client(nodelete.url), AdminClient(nodelete.admin_socket)
    image = v2.push_image("nodelete/app", "v1", [os.urandom(100)])
    for attempt in (
        lambda: admin.delete_tag("nodelete/app", "v1"),
        lambda: admin.delete_manifest("nodelete/app", image.digest),
    ):
        with pytest.raises(AdminError) as raised:
            attempt()
        assert raised.value.status == 405
        assert "storage.delete.enabled" in raised.value.message
    assert admin.copy("nodelete/app:v1", "nodelete/app:v2")["digest"] == image.digest
    assert [t["tag"] for t in admin.tags("nodelete/app")] == ["v1", "v2"]
