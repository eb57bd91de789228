"""The referrers API: an OCI index of manifests with a given subject, by artifactType."""

from __future__ import annotations

import json
import os
from typing import Any

from tests.api.client import (
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    PushedImage,
    V2Client,
    descriptor,
    digest_of,
    index_manifest,
)

SBOM = "application/vnd.example.sbom.v1+json"
SIGNATURE = "application/vnd.example.signature.v1+json"


def _artifact(
    client: V2Client,
    name: str,
    subject: PushedImage,
    artifact_type: str | None,
    annotations: dict[str, str] | None = None,
    config_type: str = OCI_EMPTY,
) -> bytes:
    """Push an artifact manifest referring to `subject`; return its bytes."""
    config = b"{}" if config_type == OCI_EMPTY else json.dumps({"n": os.urandom(4).hex()}).encode()
    payload = os.urandom(64)
    client.push_blob(name, config)
    client.push_blob(name, payload)
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(config_type, config),
        "layers": [descriptor("application/octet-stream", payload)],
        "subject": subject.descriptor(),
    }
    if artifact_type:
        document["artifactType"] = artifact_type
    if annotations:
        document["annotations"] = annotations
    body = json.dumps(document).encode()
    put = client.put_manifest(name, digest_of(body), body, OCI_MANIFEST)
    assert put.status_code == 201, put.text
    assert put.headers["OCI-Subject"] == subject.digest
    return body


def _referrers(client: V2Client, name: str, digest: str, **params: str) -> Any:
    response = client.request("GET", f"/v2/{name}/referrers/{digest}", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == OCI_INDEX
    index = response.json()
    assert index["schemaVersion"] == 2
    assert index["mediaType"] == OCI_INDEX
    return response, index["manifests"]


def test_referrers_lists_manifests_with_that_subject(client: V2Client) -> None:
    """Referrers of an image lists each manifest with it as subject: digest, size, artifactType."""
    name = "referrers/listed"
    image = client.push_image(name, "v1", [os.urandom(100)], OCI_MANIFEST)
    other = client.push_image(name, "v2", [os.urandom(100)], OCI_MANIFEST)
    sbom = _artifact(client, name, image, SBOM, annotations={"org.example.kind": "sbom"})
    signature = _artifact(client, name, image, SIGNATURE)
    _artifact(client, name, other, SBOM)
    response, manifests = _referrers(client, name, image.digest)
    assert "OCI-Filters-Applied" not in response.headers
    assert sorted(manifests, key=lambda d: d["digest"]) == sorted(
        [
            {
                "mediaType": OCI_MANIFEST,
                "digest": digest_of(sbom),
                "size": len(sbom),
                "artifactType": SBOM,
                "annotations": {"org.example.kind": "sbom"},
            },
            {
                "mediaType": OCI_MANIFEST,
                "digest": digest_of(signature),
                "size": len(signature),
                "artifactType": SIGNATURE,
            },
        ],
        key=lambda d: d["digest"],
    )


def test_referrers_filtered_by_artifact_type(client: V2Client) -> None:
    """?artifactType= keeps only matching referrers and sets `OCI-Filters-Applied: artifactType`."""
    name = "referrers/filtered"
    image = client.push_image(name, "v1", [os.urandom(100)], OCI_MANIFEST)
    sbom = _artifact(client, name, image, SBOM)
    _artifact(client, name, image, SIGNATURE)
    response, manifests = _referrers(client, name, image.digest, artifactType=SBOM)
    assert response.headers["OCI-Filters-Applied"] == "artifactType"
    assert [d["digest"] for d in manifests] == [digest_of(sbom)]
    response, manifests = _referrers(client, name, image.digest, artifactType="application/x-none")
    assert response.headers["OCI-Filters-Applied"] == "artifactType"
    assert manifests == []


def test_artifact_type_falls_back_to_config_media_type(client: V2Client) -> None:
    """A referrer without artifactType is listed (and filtered) under its config's media type."""
    name = "referrers/config-type"
    image = client.push_image(name, "v1", [os.urandom(100)], OCI_MANIFEST)
    legacy = _artifact(
        client, name, image, None, config_type="application/vnd.example.legacy.config+json"
    )
    _, manifests = _referrers(
        client, name, image.digest, artifactType="application/vnd.example.legacy.config+json"
    )
    assert [(d["digest"], d["artifactType"]) for d in manifests] == [
        (digest_of(legacy), "application/vnd.example.legacy.config+json")
    ]


def test_index_with_subject_is_a_referrer(client: V2Client) -> None:
    """An OCI index with a subject is listed as a referrer with its artifactType."""
    name = "referrers/index"
    image = client.push_image(name, "v1", [os.urandom(100)], OCI_MANIFEST)
    child = client.push_image(name, "child", [os.urandom(100)], OCI_MANIFEST)
    body = index_manifest(
        [child.descriptor()], OCI_INDEX, artifactType=SBOM, subject=image.descriptor()
    )
    assert client.put_manifest(name, "sboms", body, OCI_INDEX).status_code == 201
    _, manifests = _referrers(client, name, image.digest)
    assert manifests == [
        {"mediaType": OCI_INDEX, "digest": digest_of(body), "size": len(body), "artifactType": SBOM}
    ]


def test_no_referrers_is_empty_index(client: V2Client) -> None:
    """A digest nothing refers to, even in an unknown repository, gives 200 with an empty index."""
    name = "referrers/empty"
    image = client.push_image(name, "v1", [os.urandom(100)], OCI_MANIFEST)
    assert _referrers(client, name, image.digest)[1] == []
    assert _referrers(client, "referrers/never-pushed", digest_of(b"x"))[1] == []


def test_deleted_referrer_is_no_longer_listed(client: V2Client) -> None:
    """After a referrer is deleted by digest it no longer appears in the referrers index."""
    name = "referrers/deleted"
    image = client.push_image(name, "v1", [os.urandom(100)], OCI_MANIFEST)
    sbom = _artifact(client, name, image, SBOM)
    assert client.request("DELETE", f"/v2/{name}/manifests/{digest_of(sbom)}").status_code == 202
    assert _referrers(client, name, image.digest)[1] == []


def test_referrers_are_per_repository(client: V2Client) -> None:
    """Referrers pushed in one repository are not listed for the same subject in another."""
    image = client.push_image(
        "referrers/repo-a",
        "v1",
        [os.urandom(100)],
        OCI_MANIFEST,
        config=json.dumps({"shared": True}).encode(),
    )
    _artifact(client, "referrers/repo-a", image, SBOM)
    assert _referrers(client, "referrers/repo-b", image.digest)[1] == []


def test_referrers_with_invalid_digest_is_400(client: V2Client) -> None:
    """GET referrers of a malformed digest is 400 DIGEST_INVALID."""
    response = client.request("GET", "/v2/referrers/bad/referrers/sha256:nothex")
    assert response.status_code == 400
    assert client.error_code(response) == "DIGEST_INVALID"


def test_referrers_only_accepts_get(client: V2Client) -> None:
    """Other methods on the referrers endpoint are 405 UNSUPPORTED."""
    response = client.request("DELETE", f"/v2/referrers/get-only/referrers/{digest_of(b'x')}")
    assert response.status_code == 405
    assert client.error_code(response) == "UNSUPPORTED"
