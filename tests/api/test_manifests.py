"""Manifests: HEAD/GET/PUT/DELETE by tag and digest for each type, validation, negotiation."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from appliance.oci.digest import Digest
from appliance.storage import paths
from tests.server import ApplianceServer
from tests.api.client import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    DOCKER_SCHEMA1_SIGNED,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    PushedImage,
    V2Client,
    descriptor,
    digest_of,
    image_manifest,
    index_manifest,
)

ARTIFACT = "application/vnd.example.sbom.v1+json"


def _platform(arch: str) -> dict[str, Any]:
    return {"platform": {"os": "linux", "architecture": arch}}


def _two_platform_images(
    client: V2Client, name: str, media_type: str
) -> tuple[PushedImage, PushedImage]:
    arm = client.push_image(
        name,
        "arm64",
        [os.urandom(100)],
        media_type,
        config=json.dumps({"architecture": "arm64", "os": "linux", "r": name}).encode(),
    )
    amd = client.push_image(
        name,
        "amd64",
        [os.urandom(100)],
        media_type,
        config=json.dumps({"architecture": "amd64", "os": "linux", "r": name}).encode(),
    )
    return arm, amd


def _check_served(
    client: V2Client,
    name: str,
    reference: str,
    body: bytes,
    media_type: str,
    accept: str | None = None,
) -> None:
    headers = {"Accept": accept or media_type}
    got = client.request("GET", f"/v2/{name}/manifests/{reference}", headers=headers)
    assert got.status_code == 200, got.text
    assert got.content == body
    assert got.headers["Content-Type"] == media_type
    assert got.headers["Docker-Content-Digest"] == digest_of(body)
    assert got.headers["ETag"] == f'"{digest_of(body)}"'
    assert got.headers["Content-Length"] == str(len(body))
    head = client.request("HEAD", f"/v2/{name}/manifests/{reference}", headers=headers)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["Docker-Content-Digest"] == digest_of(body)
    assert head.headers["Content-Length"] == str(len(body))
    assert head.headers["Content-Type"] == media_type


@pytest.mark.parametrize("media_type", [DOCKER_MANIFEST, OCI_MANIFEST])
def test_image_manifest_put_get_head_by_tag_and_digest(client: V2Client, media_type: str) -> None:
    """An image manifest PUT by tag is 201 with Location and digest; served by tag and digest."""
    name = f"manifests/image-{media_type.split('.')[2]}"
    config, layer = os.urandom(200), os.urandom(3000)
    client.push_blob(name, config)
    client.push_blob(name, layer)
    body = image_manifest(config, [layer], media_type)
    put = client.put_manifest(name, "v1", body, media_type)
    assert put.status_code == 201, put.text
    assert put.headers["Docker-Content-Digest"] == digest_of(body)
    assert put.headers["Location"] == f"{client.url}/v2/{name}/manifests/{digest_of(body)}"
    assert "OCI-Subject" not in put.headers
    for reference in ("v1", digest_of(body)):
        _check_served(client, name, reference, body, media_type)


@pytest.mark.parametrize("media_type", [DOCKER_LIST, OCI_INDEX])
def test_index_put_get_head_by_tag_and_digest(client: V2Client, media_type: str) -> None:
    """A manifest list / OCI index of pushed images is 201 and served by tag and digest."""
    name = f"manifests/index-{media_type.split('.')[2]}"
    child_type = DOCKER_MANIFEST if media_type == DOCKER_LIST else OCI_MANIFEST
    arm, amd = _two_platform_images(client, name, child_type)
    body = index_manifest(
        [arm.descriptor(**_platform("arm64")), amd.descriptor(**_platform("amd64"))], media_type
    )
    put = client.put_manifest(name, "multi", body, media_type)
    assert put.status_code == 201, put.text
    assert put.headers["Docker-Content-Digest"] == digest_of(body)
    for reference in ("multi", digest_of(body)):
        _check_served(client, name, reference, body, media_type)


def test_put_by_digest_stores_untagged_manifest(client: V2Client) -> None:
    """PUT by the manifest's digest is 201 and serves it by digest without adding a tag."""
    name = "manifests/by-digest"
    client.push_image(name, "tagged", [os.urandom(10)])
    config = os.urandom(50)
    client.push_blob(name, config)
    body = image_manifest(config, [], OCI_MANIFEST)
    put = client.put_manifest(name, digest_of(body), body, OCI_MANIFEST)
    assert put.status_code == 201
    assert put.headers["Docker-Content-Digest"] == digest_of(body)
    _check_served(client, name, digest_of(body), body, OCI_MANIFEST)
    assert client.request("GET", f"/v2/{name}/tags/list").json()["tags"] == ["tagged"]


def test_put_by_sha512_digest(client: V2Client) -> None:
    """PUT by a sha512 digest is 201 and the manifest is served under that digest."""
    name = "manifests/sha512"
    config = os.urandom(50)
    client.push_blob(name, config)
    body = image_manifest(config, [], OCI_MANIFEST)
    reference = digest_of(body, "sha512")
    put = client.put_manifest(name, reference, body, OCI_MANIFEST)
    assert put.status_code == 201, put.text
    assert put.headers["Docker-Content-Digest"] == reference
    got = client.request("GET", f"/v2/{name}/manifests/{reference}")
    assert got.content == body
    assert got.headers["Docker-Content-Digest"] == reference


def test_put_by_wrong_digest_is_400_digest_invalid(client: V2Client) -> None:
    """PUT by a digest that is not the body's is 400 DIGEST_INVALID and nothing is stored."""
    name = "manifests/wrong-digest"
    config = os.urandom(50)
    client.push_blob(name, config)
    body = image_manifest(config, [], OCI_MANIFEST)
    wrong = digest_of(body + b" ")
    put = client.put_manifest(name, wrong, body, OCI_MANIFEST)
    assert put.status_code == 400
    assert client.error_code(put) == "DIGEST_INVALID"
    assert client.request("GET", f"/v2/{name}/manifests/{wrong}").status_code == 404
    assert client.request("GET", f"/v2/{name}/manifests/{digest_of(body)}").status_code == 404


def test_get_without_accept_returns_stored_bytes_and_true_digest(client: V2Client) -> None:
    """GET without Accept returns the bytes as pushed (odd whitespace kept) with their digest."""
    name = "manifests/raw-bytes"
    config = os.urandom(60)
    client.push_blob(name, config)
    document = json.loads(image_manifest(config, [], DOCKER_MANIFEST))
    body = ("\n" + json.dumps(document, indent=7, sort_keys=True) + "\n\n").encode()
    assert client.put_manifest(name, "odd", body, DOCKER_MANIFEST).status_code == 201
    got = client.request("GET", f"/v2/{name}/manifests/odd", headers={"Accept": ""})
    assert got.status_code == 200
    assert got.content == body
    assert got.headers["Docker-Content-Digest"] == digest_of(body)
    assert got.headers["Content-Type"] == DOCKER_MANIFEST


def test_oci_manifest_without_media_type_field(client: V2Client) -> None:
    """An OCI manifest without a mediaType field is stored and served as an OCI manifest."""
    name = "manifests/implicit-type"
    config = os.urandom(60)
    client.push_blob(name, config)
    document = json.loads(image_manifest(config, [], OCI_MANIFEST))
    del document["mediaType"]
    body = json.dumps(document).encode()
    assert client.put_manifest(name, "v1", body, OCI_MANIFEST).status_code == 201
    got = client.request("GET", f"/v2/{name}/manifests/v1")
    assert got.content == body
    assert got.headers["Content-Type"] == OCI_MANIFEST


@pytest.mark.parametrize("index_type", [DOCKER_LIST, OCI_INDEX])
def test_index_asked_for_only_image_types_returns_linux_amd64_child(
    client: V2Client, index_type: str
) -> None:
    """An index fetched accepting only the docker v2 manifest type returns the linux/amd64 child."""
    name = f"manifests/negotiate-{index_type.split('.')[2]}"
    arm, amd = _two_platform_images(client, name, DOCKER_MANIFEST)
    body = index_manifest(
        [arm.descriptor(**_platform("arm64")), amd.descriptor(**_platform("amd64"))], index_type
    )
    assert client.put_manifest(name, "multi", body, index_type).status_code == 201
    got = client.request("GET", f"/v2/{name}/manifests/multi", headers={"Accept": DOCKER_MANIFEST})
    assert got.status_code == 200
    assert got.content == amd.manifest
    assert got.headers["Docker-Content-Digest"] == amd.digest
    assert got.headers["Content-Type"] == DOCKER_MANIFEST
    both = client.request(
        "GET", f"/v2/{name}/manifests/multi", headers={"Accept": f"{DOCKER_MANIFEST}, {index_type}"}
    )
    assert both.content == body
    assert both.headers["Content-Type"] == index_type


def test_index_without_amd64_child_is_served_as_is(client: V2Client) -> None:
    """An index with no linux/amd64 child is served as stored, even to a client taking images."""
    name = "manifests/no-amd64"
    arm, _ = _two_platform_images(client, name, DOCKER_MANIFEST)
    body = index_manifest([arm.descriptor(**_platform("arm64"))], DOCKER_LIST)
    assert client.put_manifest(name, "arm-only", body, DOCKER_LIST).status_code == 201
    got = client.request(
        "GET", f"/v2/{name}/manifests/arm-only", headers={"Accept": DOCKER_MANIFEST}
    )
    assert got.content == body
    assert got.headers["Content-Type"] == DOCKER_LIST


def test_oci_manifest_with_subject_and_artifact_type_returns_oci_subject(client: V2Client) -> None:
    """A manifest with `subject` and `artifactType` is 201 with OCI-Subject: the subject digest."""
    name = "manifests/subject"
    image = client.push_image(name, "v1", [os.urandom(100)], OCI_MANIFEST)
    client.push_blob(name, b"{}")
    sbom = os.urandom(300)
    client.push_blob(name, sbom)
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": ARTIFACT,
            "config": descriptor(OCI_EMPTY, b"{}"),
            "layers": [descriptor("application/spdx+json", sbom)],
            "subject": image.descriptor(),
        }
    ).encode()
    put = client.put_manifest(name, digest_of(body), body, OCI_MANIFEST)
    assert put.status_code == 201, put.text
    assert put.headers["OCI-Subject"] == image.digest
    _check_served(client, name, digest_of(body), body, OCI_MANIFEST)


def test_oci_index_with_subject_and_artifact_type(client: V2Client) -> None:
    """An OCI index with `artifactType` and `subject` is 201 with OCI-Subject and served."""
    name = "manifests/index-subject"
    subject = client.push_image(name, "v1", [os.urandom(100)], OCI_MANIFEST)
    child = client.push_image(name, "child", [os.urandom(100)], OCI_MANIFEST)
    body = index_manifest(
        [child.descriptor()], OCI_INDEX, artifactType=ARTIFACT, subject=subject.descriptor()
    )
    put = client.put_manifest(name, "signed", body, OCI_INDEX)
    assert put.status_code == 201, put.text
    assert put.headers["OCI-Subject"] == subject.digest
    _check_served(client, name, "signed", body, OCI_INDEX)


def test_subject_need_not_exist(client: V2Client) -> None:
    """A manifest whose subject is not in the registry is still accepted (the spec allows it)."""
    name = "manifests/dangling-subject"
    client.push_blob(name, b"{}")
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": ARTIFACT,
            "config": descriptor(OCI_EMPTY, b"{}"),
            "layers": [],
            "subject": descriptor(OCI_MANIFEST, b"missing subject"),
        }
    ).encode()
    put = client.put_manifest(name, digest_of(body), body, OCI_MANIFEST)
    assert put.status_code == 201
    assert put.headers["OCI-Subject"] == digest_of(b"missing subject")


def test_missing_layer_or_config_is_400_manifest_blob_unknown(client: V2Client) -> None:
    """A manifest referencing a blob not in the repository is 400 MANIFEST_BLOB_UNKNOWN."""
    name = "manifests/missing-blob"
    config, layer = os.urandom(80), os.urandom(80)
    client.push_blob(name, config)
    body = image_manifest(config, [layer], DOCKER_MANIFEST)
    put = client.put_manifest(name, "v1", body, DOCKER_MANIFEST)
    assert put.status_code == 400
    assert client.error_code(put) == "MANIFEST_BLOB_UNKNOWN"
    assert {"digest": digest_of(layer)} in put.json()["errors"][0]["detail"]
    no_config = client.put_manifest(
        name, "v2", image_manifest(os.urandom(10), [], OCI_MANIFEST), OCI_MANIFEST
    )
    assert client.error_code(no_config) == "MANIFEST_BLOB_UNKNOWN"
    assert client.request("GET", f"/v2/{name}/manifests/v1").status_code == 404


def test_blob_in_another_repository_does_not_satisfy_manifest(client: V2Client) -> None:
    """A layer that exists only in another repository is MANIFEST_BLOB_UNKNOWN here."""
    config, layer = os.urandom(80), os.urandom(80)
    client.push_blob("manifests/elsewhere", layer)
    client.push_blob("manifests/here", config)
    put = client.put_manifest(
        "manifests/here", "v1", image_manifest(config, [layer]), DOCKER_MANIFEST
    )
    assert put.status_code == 400
    assert client.error_code(put) == "MANIFEST_BLOB_UNKNOWN"


def test_foreign_layers_need_not_be_present(client: V2Client) -> None:
    """A docker foreign layer (with urls) is not required to be in the registry."""
    name = "manifests/foreign"
    config = os.urandom(80)
    client.push_blob(name, config)
    document = json.loads(image_manifest(config, [], DOCKER_MANIFEST))
    document["layers"] = [
        descriptor(
            "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
            b"windows base",
            urls=["https://example.invalid/layer"],
        )
    ]
    put = client.put_manifest(name, "win", json.dumps(document).encode(), DOCKER_MANIFEST)
    assert put.status_code == 201, put.text


@pytest.mark.parametrize("index_type", [DOCKER_LIST, OCI_INDEX])
def test_index_with_missing_child_is_400_manifest_blob_unknown(
    client: V2Client, index_type: str
) -> None:
    """An index whose child manifest is not in the repository is 400 MANIFEST_BLOB_UNKNOWN."""
    name = f"manifests/index-missing-{index_type.split('.')[2]}"
    present = client.push_image(name, "present", [os.urandom(40)])
    absent = descriptor(DOCKER_MANIFEST, b'{"not": "pushed"}', **_platform("arm64"))
    body = index_manifest([present.descriptor(**_platform("amd64")), absent], index_type)
    put = client.put_manifest(name, "multi", body, index_type)
    assert put.status_code == 400
    assert client.error_code(put) == "MANIFEST_BLOB_UNKNOWN"
    assert put.json()["errors"][0]["detail"] == [{"digest": absent["digest"]}]


def test_index_child_that_is_only_a_blob_is_refused(client: V2Client) -> None:
    """An index child pushed as a plain blob (not as a manifest) does not count as present."""
    name = "manifests/index-blob-child"
    fake = image_manifest(os.urandom(10), [])
    client.push_blob(name, fake)
    body = index_manifest([descriptor(DOCKER_MANIFEST, fake, **_platform("amd64"))], OCI_INDEX)
    put = client.put_manifest(name, "multi", body, OCI_INDEX)
    assert put.status_code == 400
    assert client.error_code(put) == "MANIFEST_BLOB_UNKNOWN"


def test_manifest_over_4_mib_is_413(client: V2Client) -> None:
    """A manifest larger than 4 MiB is refused with 413 and not stored."""
    name = "manifests/huge"
    config = os.urandom(40)
    client.push_blob(name, config)
    body = image_manifest(config, [], OCI_MANIFEST, annotations={"pad": "x" * (4 * 1024 * 1024)})
    assert len(body) > 4 * 1024 * 1024
    put = client.put_manifest(name, "huge", body, OCI_MANIFEST)
    assert put.status_code == 413
    assert put.json()["errors"][0]["code"] == "SIZE_INVALID"
    assert client.request("GET", f"/v2/{name}/manifests/huge").status_code == 404


def test_manifest_just_under_limit_is_accepted(client: V2Client) -> None:
    """A manifest a little under 4 MiB (spooled to disk on the way in) is accepted."""
    name = "manifests/big"
    config = os.urandom(40)
    client.push_blob(name, config)
    body = image_manifest(
        config, [], OCI_MANIFEST, annotations={"pad": "x" * (4 * 1024 * 1024 - 1000)}
    )
    assert len(body) <= 4 * 1024 * 1024
    put = client.put_manifest(name, "big", body, OCI_MANIFEST)
    assert put.status_code == 201
    assert client.request("GET", f"/v2/{name}/manifests/big").content == body


@pytest.mark.parametrize(
    ("label", "body", "media_type"),
    [
        ("not json", b"{not json", DOCKER_MANIFEST),
        ("empty", b"", DOCKER_MANIFEST),
        ("not an object", b"[1, 2, 3]", OCI_MANIFEST),
        ("deeply nested", b"[" * 100_000 + b"]" * 100_000, OCI_MANIFEST),
        (
            "schema1",
            json.dumps(
                {"schemaVersion": 1, "name": "x", "tag": "v1", "fsLayers": [], "signatures": []}
            ).encode(),
            DOCKER_SCHEMA1_SIGNED,
        ),
        (
            "no schemaVersion",
            json.dumps({"mediaType": OCI_MANIFEST, "config": {}, "layers": []}).encode(),
            OCI_MANIFEST,
        ),
        (
            "unknown mediaType",
            json.dumps(
                {"schemaVersion": 2, "mediaType": "text/plain", "config": {}, "layers": []}
            ).encode(),
            "text/plain",
        ),
        (
            "no config",
            json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []}).encode(),
            OCI_MANIFEST,
        ),
        (
            "config not object",
            json.dumps(
                {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": "x", "layers": []}
            ).encode(),
            OCI_MANIFEST,
        ),
        (
            "layers not list",
            json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": descriptor(OCI_EMPTY, b"{}"),
                    "layers": {},
                }
            ).encode(),
            OCI_MANIFEST,
        ),
        (
            "bad digest",
            json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": OCI_EMPTY, "digest": "sha256:xyz", "size": 2},
                    "layers": [],
                }
            ).encode(),
            OCI_MANIFEST,
        ),
        (
            "digest not string",
            json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": OCI_EMPTY, "digest": 5, "size": 2},
                    "layers": [],
                }
            ).encode(),
            OCI_MANIFEST,
        ),
        (
            "negative size",
            json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": descriptor(OCI_EMPTY, b"{}", size=-1),
                    "layers": [],
                }
            ).encode(),
            OCI_MANIFEST,
        ),
        (
            "size not int",
            json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": descriptor(OCI_EMPTY, b"{}", size="2"),
                    "layers": [],
                }
            ).encode(),
            OCI_MANIFEST,
        ),
        (
            "no descriptor mediaType",
            json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": {"digest": digest_of(b"{}"), "size": 2},
                    "layers": [],
                }
            ).encode(),
            OCI_MANIFEST,
        ),
        (
            "annotations not strings",
            json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": descriptor(OCI_EMPTY, b"{}"),
                    "layers": [],
                    "annotations": {"a": 1},
                }
            ).encode(),
            OCI_MANIFEST,
        ),
        (
            "bad subject",
            json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": descriptor(OCI_EMPTY, b"{}"),
                    "layers": [],
                    "subject": {"mediaType": OCI_MANIFEST},
                }
            ).encode(),
            OCI_MANIFEST,
        ),
        (
            "index manifests not list",
            json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": None}).encode(),
            OCI_INDEX,
        ),
        ("type mismatch", image_manifest(b"{}", [], OCI_MANIFEST), DOCKER_MANIFEST),
    ],
)
def test_invalid_manifest_is_400_manifest_invalid(
    client: V2Client, label: str, body: bytes, media_type: str
) -> None:
    """Bad JSON, schema 1, unknown types and bad descriptors are 400 MANIFEST_INVALID."""
    name = "manifests/invalid"
    client.push_blob(name, b"{}")
    put = client.put_manifest(name, "bad", body, media_type)
    assert put.status_code == 400, (label, put.text)
    assert client.error_code(put) == "MANIFEST_INVALID", label
    assert client.request("GET", f"/v2/{name}/manifests/bad").status_code == 404


def test_delete_by_tag_removes_only_that_tag(client: V2Client) -> None:
    """DELETE by tag is 202 and removes just that tag: a sibling tag on the digest still pulls."""
    name = "manifests/delete-tag"
    image = client.push_image(name, "one", [os.urandom(100)])
    assert client.put_manifest(name, "two", image.manifest, DOCKER_MANIFEST).status_code == 201
    deleted = client.request("DELETE", f"/v2/{name}/manifests/one")
    assert deleted.status_code == 202
    gone = client.request("GET", f"/v2/{name}/manifests/one")
    assert gone.status_code == 404
    assert client.error_code(gone) == "MANIFEST_UNKNOWN"
    _check_served(client, name, "two", image.manifest, DOCKER_MANIFEST)
    _check_served(client, name, image.digest, image.manifest, DOCKER_MANIFEST)
    assert client.request("GET", f"/v2/{name}/tags/list").json()["tags"] == ["two"]


def test_delete_by_digest_removes_manifest_and_its_tags(client: V2Client) -> None:
    """DELETE by digest is 202 and removes the manifest and every tag on it, leaving other tags."""
    name = "manifests/delete-digest"
    image = client.push_image(name, "a", [os.urandom(100)])
    client.put_manifest(name, "b", image.manifest, DOCKER_MANIFEST)
    other = client.push_image(name, "c", [os.urandom(100)])
    deleted = client.request("DELETE", f"/v2/{name}/manifests/{image.digest}")
    assert deleted.status_code == 202
    for reference in ("a", "b", image.digest):
        response = client.request("GET", f"/v2/{name}/manifests/{reference}")
        assert response.status_code == 404
        assert client.error_code(response) == "MANIFEST_UNKNOWN"
        assert client.request("HEAD", f"/v2/{name}/manifests/{reference}").status_code == 404
    assert client.request("GET", f"/v2/{name}/tags/list").json()["tags"] == ["c"]
    _check_served(client, name, "c", other.manifest, DOCKER_MANIFEST)
    again = client.request("DELETE", f"/v2/{name}/manifests/{image.digest}")
    assert again.status_code == 404
    assert client.error_code(again) == "MANIFEST_UNKNOWN"


@pytest.mark.parametrize("media_type", [DOCKER_MANIFEST, DOCKER_LIST, OCI_MANIFEST, OCI_INDEX])
def test_delete_by_tag_then_digest_for_every_type(client: V2Client, media_type: str) -> None:
    """For each type, DELETE by tag keeps the sibling tag; DELETE by digest removes the rest."""
    name = f"manifests/delete-{media_type.split('.')[2]}-{media_type.rsplit('.', 2)[-2]}"
    if media_type in (DOCKER_LIST, OCI_INDEX):
        child_type = DOCKER_MANIFEST if media_type == DOCKER_LIST else OCI_MANIFEST
        child = client.push_image(name, "child", [os.urandom(30)], child_type)
        body = index_manifest([child.descriptor(**_platform("amd64"))], media_type)
    else:
        config = os.urandom(30)
        client.push_blob(name, config)
        body = image_manifest(config, [], media_type)
    for tag in ("first", "second"):
        assert client.put_manifest(name, tag, body, media_type).status_code == 201
    assert client.request("DELETE", f"/v2/{name}/manifests/first").status_code == 202
    assert client.request("GET", f"/v2/{name}/manifests/first").status_code == 404
    _check_served(client, name, "second", body, media_type)
    assert client.request("DELETE", f"/v2/{name}/manifests/{digest_of(body)}").status_code == 202
    for reference in ("second", digest_of(body)):
        response = client.request(
            "GET", f"/v2/{name}/manifests/{reference}", headers={"Accept": media_type}
        )
        assert response.status_code == 404
        assert client.error_code(response) == "MANIFEST_UNKNOWN"


def test_deleted_manifest_can_be_pushed_again(client: V2Client) -> None:
    """After DELETE by digest the same manifest can be pushed again and pulled."""
    name = "manifests/repush"
    image = client.push_image(name, "v1", [os.urandom(100)])
    assert client.request("DELETE", f"/v2/{name}/manifests/{image.digest}").status_code == 202
    assert client.put_manifest(name, "v1", image.manifest, DOCKER_MANIFEST).status_code == 201
    _check_served(client, name, "v1", image.manifest, DOCKER_MANIFEST)


def test_retagging_moves_the_tag(client: V2Client) -> None:
    """PUT of another manifest under an existing tag points the tag at the new one."""
    name = "manifests/retag"
    client.push_image(name, "latest", [os.urandom(100)])
    newer = client.push_image(name, "latest", [os.urandom(100)])
    _check_served(client, name, "latest", newer.manifest, DOCKER_MANIFEST)


def test_unknown_manifest_is_404_manifest_unknown(client: V2Client) -> None:
    """GET, HEAD and DELETE of an unknown tag or digest are 404 MANIFEST_UNKNOWN."""
    name = "manifests/unknown"
    client.push_image(name, "exists", [os.urandom(10)])
    for reference in ("nope", digest_of(b"nope")):
        for method in ("GET", "DELETE"):
            response = client.request(method, f"/v2/{name}/manifests/{reference}")
            assert response.status_code == 404, (method, reference)
            assert client.error_code(response) == "MANIFEST_UNKNOWN"
        assert client.request("HEAD", f"/v2/{name}/manifests/{reference}").status_code == 404
    unknown_repo = client.request("GET", "/v2/manifests/no-such-repo/manifests/latest")
    assert unknown_repo.status_code == 404
    assert client.error_code(unknown_repo) == "MANIFEST_UNKNOWN"


def test_manifest_of_one_repository_is_unknown_in_another(client: V2Client) -> None:
    """A manifest pushed to repo A is 404 MANIFEST_UNKNOWN by digest in repo B."""
    image = client.push_image("manifests/owner", "v1", [os.urandom(10)])
    response = client.request("GET", f"/v2/manifests/stranger/manifests/{image.digest}")
    assert response.status_code == 404
    assert client.error_code(response) == "MANIFEST_UNKNOWN"


def test_manifest_delete_refused_when_deletes_disabled(nodelete_client: V2Client) -> None:
    """With deletes disabled, DELETE by tag or digest is 405 UNSUPPORTED and the manifest stays."""
    name = "manifests/nodelete"
    image = nodelete_client.push_image(name, "v1", [os.urandom(10)])
    for reference in ("v1", image.digest):
        response = nodelete_client.request("DELETE", f"/v2/{name}/manifests/{reference}")
        assert response.status_code == 405
        assert nodelete_client.error_code(response) == "UNSUPPORTED"
    assert nodelete_client.request("GET", f"/v2/{name}/manifests/v1").content == image.manifest


def test_a_corrupted_manifest_is_not_served(server: ApplianceServer, client: V2Client) -> None:
    """A manifest whose stored bytes no longer match its digest is answered as unknown (404
    MANIFEST_UNKNOWN) by tag and by digest, GET and HEAD, never served; pushing it again
    repairs it."""
    image = client.push_image("corrupt/app", "v1", [b"layer of a manifest to corrupt"])
    digest = Digest.parse(image.digest)
    stored = server.root / paths.blob_data(digest).lstrip("/")
    stored.write_bytes(image.manifest.replace(b"{", b"[", 1))
    for method in ("GET", "HEAD"):
        for reference in ("v1", image.digest):
            answer = client.request(method, f"/v2/corrupt/app/manifests/{reference}",
                                    headers={"Accept": DOCKER_MANIFEST})
            assert answer.status_code == 404, (method, reference)
            if method == "GET":
                assert answer.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    again = client.request("PUT", "/v2/corrupt/app/manifests/v1", data=image.manifest,
                           headers={"Content-Type": DOCKER_MANIFEST})
    assert again.status_code == 201
    served = client.request("GET", f"/v2/corrupt/app/manifests/{image.digest}",
                            headers={"Accept": DOCKER_MANIFEST})
    assert served.status_code == 200 and served.content == image.manifest
