"""Repository names, tags and digests: the grammar, nested names, and path traversal attempts."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from tests.api.client import (
    API_VERSION,
    DOCKER_MANIFEST,
    V2Client,
    digest_of,
    image_manifest,
    raw_request,
)
from tests.api.conftest import EXTRA_HEADERS
from tests.server import ApplianceServer

NAME = re.compile(
    r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$"
)
HEX = "a" * 64
UPLOAD = "3f1c0e9a-0000-4000-8000-000000000000"


def test_name_with_four_components_push_and_pull(client: V2Client) -> None:
    """A repository named a/b/c/d takes uploads and manifests and serves them, by tag and digest."""
    image = client.push_image("a/b/c/d", "v1", [os.urandom(500)])
    for reference in ("v1", image.digest):
        got = client.request(
            "GET", f"/v2/a/b/c/d/manifests/{reference}", headers={"Accept": DOCKER_MANIFEST}
        )
        assert got.status_code == 200
        assert got.content == image.manifest
    layer = client.request("GET", f"/v2/a/b/c/d/blobs/{digest_of(image.layers[0])}")
    assert layer.content == image.layers[0]
    assert client.request("GET", "/v2/a/b/c/d/tags/list").json() == {
        "name": "a/b/c/d",
        "tags": ["v1"],
    }
    assert "a/b/c/d" in client.request("GET", "/v2/_catalog").json()["repositories"]
    start = client.start_upload("a/b/c/d")
    assert "/v2/a/b/c/d/blobs/uploads/" in start.headers["Location"]


def test_nested_names_are_separate_repositories(client: V2Client) -> None:
    """a/b and a/b/c are different repositories: a blob in one is unknown in the other."""
    digest = client.push_blob("nest/outer/inner", b"inner only")
    assert client.request("GET", f"/v2/nest/outer/blobs/{digest}").status_code == 404
    assert client.request("GET", f"/v2/nest/outer/inner/blobs/{digest}").status_code == 200


def test_name_components_that_look_like_endpoints(client: V2Client) -> None:
    """Names with components `manifests`, `blobs`, `tags` or `uploads` still route correctly."""
    for name in ("x/manifests/y", "x/blobs/uploads", "x/tags/list", "x/referrers/z"):
        image = client.push_image(name, "v1", [os.urandom(20)])
        assert client.request("GET", f"/v2/{name}/manifests/v1").content == image.manifest
        assert client.request("GET", f"/v2/{name}/tags/list").json() == {
            "name": name,
            "tags": ["v1"],
        }


def test_separators_allowed_by_the_grammar(client: V2Client) -> None:
    """Names using `.`, `_`, `__` and runs of `-` between alphanumerics are accepted."""
    for name in ("sep/a.b", "sep/a_b", "sep/a__b", "sep/a---b", "sep/0/9"):
        digest = client.push_blob(name, b"separator")
        assert client.request("HEAD", f"/v2/{name}/blobs/{digest}").status_code == 200


def test_name_of_255_characters_is_accepted_and_256_refused(client: V2Client) -> None:
    """A 255-character name is valid; one character more is 400 NAME_INVALID."""
    longest = "n" * 255
    assert client.request("POST", f"/v2/{longest}/blobs/uploads/").status_code == 202
    nested = "/".join(["p" * 50] * 4) + "/" + "q" * 51
    assert len(nested) == 255
    assert client.request("POST", f"/v2/{nested}/blobs/uploads/").status_code == 202
    response = client.request("POST", f"/v2/{longest}x/blobs/uploads/")
    assert response.status_code == 400
    assert client.error_code(response) == "NAME_INVALID"


INVALID_NAMES = [
    "Upper/case",
    "a//b",
    "-lead",
    "trail-",
    "a..b",
    "a___b",
    "a/_b",
    "a/.b",
    "a_",
    "a%2Fb",
    "a%20b",
    "caf%C3%A9",
    "a:b",
    "a@b",
    "a+b",
]


@pytest.mark.parametrize("name", INVALID_NAMES)
def test_invalid_name_is_400_name_invalid(client: V2Client, name: str) -> None:
    """A name outside the grammar is 400 NAME_INVALID on every endpoint that takes a name."""
    calls = [
        ("GET", f"/v2/{name}/tags/list", {}),
        ("GET", f"/v2/{name}/manifests/latest", {}),
        ("PUT", f"/v2/{name}/manifests/latest", {"data": b"{}"}),
        ("DELETE", f"/v2/{name}/manifests/latest", {}),
        ("GET", f"/v2/{name}/blobs/sha256:{HEX}", {}),
        ("DELETE", f"/v2/{name}/blobs/sha256:{HEX}", {}),
        ("POST", f"/v2/{name}/blobs/uploads/", {}),
        ("GET", f"/v2/{name}/blobs/uploads/{UPLOAD}", {}),
        ("PATCH", f"/v2/{name}/blobs/uploads/{UPLOAD}", {"data": b"x"}),
        ("GET", f"/v2/{name}/referrers/sha256:{HEX}", {}),
    ]
    for method, path, kwargs in calls:
        response = client.request(method, path, **kwargs)
        assert response.status_code == 400, (method, path)
        assert client.error_code(response) == "NAME_INVALID"


def test_name_longer_than_255_is_400(client: V2Client) -> None:
    """A name over 255 characters is 400 NAME_INVALID."""
    response = client.request("GET", f"/v2/{'a' * 300}/tags/list")
    assert response.status_code == 400
    assert client.error_code(response) == "NAME_INVALID"


@pytest.mark.parametrize(
    "tag", ["-dash", ".dot", "t" * 129, "a%21", "a%20b", "%C3%A9t%C3%A9", "a%2Fb", "%2e%2e"]
)
def test_invalid_tag_is_400_tag_invalid(client: V2Client, tag: str) -> None:
    """A tag outside the grammar (leading `-`/`.`, over 128 chars, ...) is 400 TAG_INVALID."""
    config = os.urandom(30)
    client.push_blob("names/tags", config)
    body = image_manifest(config, [])
    for method, kwargs in (
        ("PUT", {"data": body, "headers": {"Content-Type": DOCKER_MANIFEST}}),
        ("GET", {}),
        ("HEAD", {}),
        ("DELETE", {}),
    ):
        response = client.request(method, f"/v2/names/tags/manifests/{tag}", **kwargs)
        assert response.status_code == 400, (method, tag)
        if method != "HEAD":
            assert client.error_code(response) == "TAG_INVALID"


def test_longest_tag_is_accepted(client: V2Client) -> None:
    """A 128-character tag starting with `_` is valid and listed."""
    tag = "_" + "T" * 127
    image = client.push_image("names/longtag", tag, [b"x"])
    assert client.request("GET", f"/v2/names/longtag/manifests/{tag}").content == image.manifest


@pytest.mark.parametrize(
    "digest",
    [
        "sha256:abc",
        f"sha256:{'A' * 64}",
        f"sha256:{HEX}0",
        f"md5:{'0' * 32}",
        f"sha512:{HEX}",
        "sha256:",
        ":abc",
        f"SHA256:{HEX}",
        f"sha256:{'g' * 64}",
    ],
)
def test_invalid_digest_is_400_digest_invalid(client: V2Client, digest: str) -> None:
    """A malformed or unsupported digest is 400 DIGEST_INVALID wherever a digest is taken."""
    location = client.start_upload("names/digests").headers["Location"]
    calls = [
        ("GET", f"/v2/names/digests/blobs/{digest}", {}),
        ("GET", f"/v2/names/digests/manifests/{digest}", {}),
        ("DELETE", f"/v2/names/digests/manifests/{digest}", {}),
        ("PUT", f"/v2/names/digests/manifests/{digest}", {"data": b"{}"}),
        ("GET", f"/v2/names/digests/referrers/{digest}", {}),
        ("PUT", location, {"params": {"digest": digest}}),
        ("POST", "/v2/names/digests/blobs/uploads/", {"params": {"digest": digest}, "data": b"x"}),
    ]  # but not `?mount=`: a mount that cannot happen opens an upload session instead
    for method, path, kwargs in calls:
        response = client.request(method, path, **kwargs)
        assert response.status_code == 400, (method, path, digest)
        assert client.error_code(response) == "DIGEST_INVALID"


# -- path traversal: sent byte for byte, since `requests` would normalise `..` away -----------

TRAVERSALS: list[tuple[str, bytes]] = [
    ("GET", b"/v2/../../../../etc/passwd"),
    ("GET", b"/v2/..%2f..%2f..%2f..%2fetc/passwd/tags/list"),
    ("GET", b"/v2/a/../../../../../etc/tags/list"),
    ("POST", b"/v2/../../victim/blobs/uploads/"),
    ("POST", b"/v2/%2e%2e/%2e%2e/%2e%2e/victim/blobs/uploads/"),
    ("POST", b"/v2/a/%2e%2e/%2e%2e/%2e%2e/%2e%2e/victim/blobs/uploads/"),
    ("POST", b"/v2/a%2f..%2f..%2f..%2fvictim/blobs/uploads/"),
    ("POST", b"/v2/a%2F..%2F..%2F..%2Fvictim/blobs/uploads/"),
    ("POST", b"/v2/a%252f..%252fvictim/blobs/uploads/"),
    ("POST", b"/v2//tmp/victim/blobs/uploads/"),
    ("POST", b"/v2/%2ftmp%2fvictim/blobs/uploads/"),
    ("POST", b"/v2/a\\..\\..\\victim/blobs/uploads/"),
    ("POST", b"/v2/a%5c..%5c..%5cvictim/blobs/uploads/"),
    ("POST", b"/v2/%c0%ae%c0%ae/%c0%ae%c0%ae/victim/blobs/uploads/"),
    ("POST", b"/v2/./victim/blobs/uploads/"),
    ("POST", b"/v2/a/./b/blobs/uploads/"),
    ("POST", b"/v2/a/blobs/uploads/?mount=sha256:" + HEX.encode() + b"&from=..%2f..%2fvictim"),
    ("POST", b"/v2/a/blobs/uploads/?mount=..%2f..%2f..&from=a"),
    ("POST", b"/v2/a/blobs/uploads/?digest=sha256:..%2f..%2fvictim"),
    ("PUT", b"/v2/a/manifests/.."),
    ("PUT", b"/v2/a/manifests/%2e%2e"),
    ("PUT", b"/v2/a/manifests/..%2f..%2f..%2f..%2fvictim"),
    ("PUT", b"/v2/a/manifests/sha256:..%2f..%2fvictim"),
    ("PUT", b"/v2/a/manifests/%2fetc%2fvictim"),
    ("GET", b"/v2/a/manifests/..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd"),
    ("GET", b"/v2/a/blobs/..%2f..%2f..%2f..%2fetc%2fpasswd"),
    ("GET", b"/v2/a/blobs/sha256:..%2f..%2f..%2f.."),
    ("DELETE", b"/v2/a/blobs/sha256:..%2f..%2f..%2f.."),
    ("PATCH", b"/v2/a/blobs/uploads/.."),
    ("PATCH", b"/v2/a/blobs/uploads/%2e%2e"),
    ("PATCH", b"/v2/a/blobs/uploads/..%2f..%2fvictim"),
    ("PUT", b"/v2/a/blobs/uploads/" + UPLOAD.encode() + b"?digest=sha256:..%2f..%2fvictim"),
    ("DELETE", b"/v2/a/blobs/uploads/..%2f..%2f..%2f_layers"),
    ("GET", b"/v2/a/referrers/..%2f..%2fvictim"),
    ("GET", b"/v2/a/tags/list/../../../../"),
    ("GET", b"/v2/a%00b/tags/list"),
    ("GET", b"/v2/a/manifests/x%00y"),
    ("PUT", b"/v2/a/manifests/latest%00"),
    ("PATCH", b"/v2/a/blobs/uploads/%00"),
    ("GET", b"/v2/a/blobs/sha256:" + HEX.encode() + b"%00"),
    ("POST", b"/v2/a/blobs/uploads/?digest=sha256%3A%00"),
    ("GET", b"/v2/a\x00b/tags/list"),
    ("GET", b"/v2/a/manifests/x\x00y"),
    ("GET", b"/v2/a/manifests/x\xff\xfey"),
]


def _files(directory: Path) -> set[str]:
    return {str(p.relative_to(directory)) for p in directory.rglob("*")}


def test_path_traversal_is_4xx_and_writes_nothing_outside_root(server: ApplianceServer) -> None:
    """`..`, `%2e%2e`, encoded slashes, NUL, absolute paths: 4xx, not 5xx; nothing leaves root."""
    victims = [Path("/victim"), Path("/tmp/victim"), Path("/etc/victim")]
    assert not any(v.exists() for v in victims)
    workdir = server.workdir
    outside_before = {f for f in _files(workdir) if not f.startswith("data") and f != "server.log"}
    config = os.urandom(20)
    V2Client(server.url, expect_headers=EXTRA_HEADERS).push_blob("a", config)
    body = image_manifest(config, [])
    for method, target in TRAVERSALS:
        response = raw_request(
            server.url,
            method,
            target,
            {"Content-Type": DOCKER_MANIFEST},
            body=body if method in ("PUT", "POST", "PATCH") else b"",
            expect_headers={**API_VERSION, **EXTRA_HEADERS},
        )
        # An unusable mount source is no mount: a plain upload session in `a` (as Distribution).
        expected = (202,) if b"?mount=" in target else range(400, 500)
        assert response.status in expected, (method, target, response.status, response.body)
    assert not any(v.exists() for v in victims)
    outside_after = {f for f in _files(workdir) if not f.startswith("data") and f != "server.log"}
    assert outside_after == outside_before
    data = workdir / "data"
    assert {p.name for p in data.iterdir()} <= {"docker", "appliance"}
    repositories = data / "docker/registry/v2/repositories"
    for path in repositories.rglob("*"):
        if path.name in ("_layers", "_manifests", "_uploads"):
            name = str(path.parent.relative_to(repositories))
            assert NAME.match(name), name
    for path in data.rglob("*"):
        assert "victim" not in path.name, path
        assert "passwd" not in path.name, path


def test_traversal_names_are_rejected_with_name_invalid(server: ApplianceServer) -> None:
    """Names with `..`, `.`, encoded slashes or absolute paths get the NAME_INVALID envelope."""
    for target in (
        b"/v2/a/../b/tags/list",
        b"/v2/%2e%2e/tags/list",
        b"/v2/a%2fb/tags/list",
        b"/v2//abs/tags/list",
        b"/v2/a/./b/tags/list",
    ):
        response = raw_request(
            server.url, "GET", target, expect_headers={**API_VERSION, **EXTRA_HEADERS}
        )
        assert response.status == 400, target
        assert json.loads(response.body)["errors"][0]["code"] == "NAME_INVALID"
