"""Admin API reads on the socket: status, disk usage, tags, manifest details, and errors."""

from __future__ import annotations

import json
import os
import time

import pytest

from appliance import __version__
from appliance.admin.client import AdminClient, AdminError
from tests.api.client import (
    DOCKER_MANIFEST,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    V2Client,
    descriptor,
    digest_of,
)
from tests.server import ApplianceServer

from .conftest import image_config, push_index, raw

AMD64 = {"os": "linux", "architecture": "amd64"}
ARM64 = {"os": "linux", "architecture": "arm64", "variant": "v8"}


def test_status_reports_version_mode_driver_and_totals(
    server: ApplianceServer, admin: AdminClient, v2: V2Client
) -> None:
    """Status has version, uptime, read-only flag, driver, and totals matching the files on disk."""
    v2.push_image("status/a", "v1", [os.urandom(1000)])
    v2.push_image("status/b", "v1", [os.urandom(1000)])
    v2.put_manifest(
        "status/b", "v2", v2.request("GET", "/v2/status/b/manifests/v1").content, DOCKER_MANIFEST
    )
    status = admin.status()
    assert (status["version"], status["read_only"], status["storage_driver"]) == (
        __version__,
        False,
        "filesystem",
    )
    assert status["uptime_seconds"] > 0
    tree = server.root / "docker/registry/v2"
    blobs = list((tree / "blobs").rglob("data"))
    names = v2.request("GET", "/v2/_catalog").json()["repositories"]
    assert status["totals"] == {
        "repositories": len(names),
        "tags": sum(len(v2.request("GET", f"/v2/{n}/tags/list").json()["tags"]) for n in names),
        "manifests": len(
            {p.parent.name for p in tree.glob("repositories/**/_manifests/revisions/*/*/link")}
        ),
        "blobs": len(blobs),
        "bytes": sum(p.stat().st_size for p in blobs),
    }


def test_repositories_split_unique_and_shared_bytes(admin: AdminClient, v2: V2Client) -> None:
    """Two repositories sharing a layer: their own blobs are unique, the shared layer shared."""
    shared, own_a, own_b = os.urandom(3000), os.urandom(2000), os.urandom(1000)
    before = time.time()
    a = v2.push_image("du/a", "v1", [shared, own_a], config=image_config())
    v2.put_manifest("du/a", "latest", a.manifest, DOCKER_MANIFEST)
    b = v2.push_image("du/b", "v1", [shared, own_b], config=image_config())
    after = time.time()
    found = {r["name"]: r for r in admin.repositories()}
    assert found["du/a"]["tags"] == 2
    assert found["du/b"]["tags"] == 1
    assert found["du/a"]["manifests"] == 1
    assert found["du/a"]["unique_bytes"] == len(a.manifest) + len(a.config) + len(own_a)
    assert found["du/b"]["unique_bytes"] == len(b.manifest) + len(b.config) + len(own_b)
    assert found["du/a"]["shared_bytes"] == found["du/b"]["shared_bytes"] == len(shared)
    assert before - 1 <= found["du/a"]["last_push"] <= after + 1


def test_tags_describe_images_indexes_and_artifacts(admin: AdminClient, v2: V2Client) -> None:
    """Each tag has digest, media type, kind, stored size, config `created` and platforms."""
    name = "tags/app"
    layers = [os.urandom(1500), os.urandom(700)]
    config = image_config(created="2024-01-02T03:04:05Z")
    image = v2.push_image(name, "v1", layers, config=config)
    index, children = push_index(v2, name, "multi", [AMD64, ARM64])
    sbom = v2.push_image(
        name,
        "sbom",
        [os.urandom(100)],
        media_type=OCI_MANIFEST,
        extra={"artifactType": "application/vnd.example.sbom"},
    )
    tags = {t["tag"]: t for t in admin.tags(name)}
    assert sorted(tags) == ["multi", "multi-amd64", "multi-arm64", "sbom", "v1"]
    assert tags["v1"] == {
        "tag": "v1",
        "digest": image.digest,
        "media_type": DOCKER_MANIFEST,
        "kind": "image",
        "size": len(image.manifest) + len(config) + sum(map(len, layers)),
        "created": "2024-01-02T03:04:05Z",
        "platforms": [AMD64],
    }
    child_sizes = sum(len(c.manifest) + len(c.config) + len(c.layers[0]) for c in children)
    assert tags["multi"] == {
        "tag": "multi",
        "digest": index.digest,
        "media_type": OCI_INDEX,
        "kind": "index",
        "size": len(index.manifest) + child_sizes,
        "created": None,
        "platforms": [AMD64, ARM64],
    }
    assert (tags["sbom"]["kind"], tags["sbom"]["digest"]) == ("artifact", sbom.digest)


def test_manifest_details_show_config_layers_tags_and_referrers(
    admin: AdminClient, v2: V2Client
) -> None:
    """By tag or digest: the manifest, config summary, layers, every tag on it, its referrers."""
    name = "details/app"
    runtime = {"Entrypoint": ["/bin/app"], "Cmd": ["--serve"], "Labels": {"team": "infra"}}
    config = image_config(created="2025-05-06T07:08:09Z", config=runtime)
    image = v2.push_image(name, "v1", [os.urandom(900)], config=config)
    v2.put_manifest(name, "stable", image.manifest, DOCKER_MANIFEST)
    v2.push_blob(name, b"{}")
    signature = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.example.sig",
            "config": descriptor(OCI_EMPTY, b"{}"),
            "layers": [],
            "subject": image.descriptor(),
        }
    ).encode()
    assert v2.put_manifest(name, digest_of(signature), signature, OCI_MANIFEST).status_code == 201
    details = admin.manifest(name, "v1")
    assert admin.manifest(name, image.digest) == details
    assert (details["digest"], details["kind"], details["tags"]) == (
        image.digest,
        "image",
        ["stable", "v1"],
    )
    assert details["manifest"] == json.loads(image.manifest)
    assert details["config"] == {
        "digest": digest_of(config),
        "media_type": "application/vnd.docker.container.image.v1+json",
        "size": len(config),
        "created": "2025-05-06T07:08:09Z",
        "os": "linux",
        "architecture": "amd64",
        "variant": None,
        "entrypoint": ["/bin/app"],
        "cmd": ["--serve"],
        "labels": {"team": "infra"},
    }
    assert details["layers"] == [
        {
            "digest": digest_of(image.layers[0]),
            "size": 900,
            "media_type": "application/vnd.docker.image.rootfs.diff.tar.gzip",
        }
    ]
    assert details["referrers"] == [
        {
            "digest": digest_of(signature),
            "artifact_type": "application/vnd.example.sig",
            "media_type": OCI_MANIFEST,
            "size": len(signature),
        }
    ]
    assert (details["children"], details["subject"], details["artifact_type"]) == ([], None, None)
    referrer = admin.manifest(name, digest_of(signature))
    assert (referrer["kind"], referrer["subject"]) == ("artifact", image.digest)
    assert referrer["artifact_type"] == "application/vnd.example.sig"


def test_index_details_list_children_per_platform(admin: AdminClient, v2: V2Client) -> None:
    """An index's details list each child with its digest, size and platform."""
    _index, children = push_index(v2, "details/multi", "v1", [AMD64, ARM64])
    details = admin.manifest("details/multi", "v1")
    assert (details["kind"], details["config"], details["layers"]) == ("index", None, [])
    assert details["children"] == [
        {"digest": c.digest, "size": len(c.manifest), "media_type": OCI_MANIFEST, "platform": p}
        for c, p in zip(children, [AMD64, ARM64], strict=True)
    ]


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/admin/v1/nope", 404, "NOT_FOUND"),
        ("GET", "/admin/v1/repositories/never/pushed/tags", 404, "NAME_UNKNOWN"),
        ("GET", "/admin/v1/repositories/Bad/tags", 400, "NAME_INVALID"),
        ("GET", "/admin/v1/repositories/status/a/manifests/nope", 404, "MANIFEST_UNKNOWN"),
        ("GET", "/admin/v1/repositories/status/a/manifests/sha256:12", 400, "DIGEST_INVALID"),
    ],
)
def test_errors_use_the_envelope(
    admin: AdminClient, method: str, path: str, status: int, code: str
) -> None:
    """Unknown endpoints, repositories, manifests and bad names are errors in the v2 envelope."""
    with pytest.raises(AdminError) as raised:
        admin.request(method, path)
    assert (raised.value.status, raised.value.code) == (status, code)


def test_wrong_method_is_405_with_allow(server: ApplianceServer) -> None:
    """A known path with a method it does not take is 405 UNSUPPORTED listing the allowed ones."""
    status, headers, body = raw(server.admin_socket, "DELETE", "/admin/v1/gc")
    assert (status, headers["Allow"], body["errors"][0]["code"]) == (
        405,
        "GET, POST",
        "UNSUPPORTED",
    )


@pytest.mark.parametrize("body", [b"{", b"[1]", b'"x"', b"[" * 50_000, b" " * 100_000])
def test_malformed_bodies_are_400(server: ApplianceServer, body: bytes) -> None:
    """A body that is not one JSON object, or too large, is 400 BAD_REQUEST, not a 500."""
    status, _, answer = raw(server.admin_socket, "POST", "/admin/v1/copy", body)
    assert (status, answer["errors"][0]["code"]) == (400, "BAD_REQUEST")


def test_bad_fields_are_400(admin: AdminClient) -> None:
    """Fields of the wrong type are 400 BAD_REQUEST naming the field."""
    for method, path, body in [
        ("PUT", "/admin/v1/readonly", {"enabled": "yes"}),
        ("PUT", "/admin/v1/readonly", {}),
        ("POST", "/admin/v1/uploads/purge", {"age": -1}),
        ("POST", "/admin/v1/gc", {"dry_run": 1}),
        ("POST", "/admin/v1/copy", {"source": 5, "destination": "a:b"}),
    ]:
        with pytest.raises(AdminError) as raised:
            admin.request(method, path, body)
        assert (raised.value.status, raised.value.code) == (400, "BAD_REQUEST"), (path, body)
