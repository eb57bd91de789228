"""The pull-through cache over real HTTP: an upstream of ours (htpasswd auth, or token auth)
or Distribution 2.8.2, and a cache of ours in front of it, both real processes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.api.client import DOCKER_MANIFEST, OCI_INDEX, V2Client, digest_of, index_manifest
from tests.e2e import tools
from tests.server import ApplianceServer

from .servers import (
    PASSWORD,
    USER,
    basic_upstream,
    cache,
    htpasswd,
    serving,
    token_upstream,
    upstream_client,
)

ACCEPT = {"Accept": ", ".join([DOCKER_MANIFEST, OCI_INDEX])}


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[ApplianceServer]:
    with serving(basic_upstream(tmp_path / "upstream")) as server:
        yield server


@pytest.fixture
def mirror(tmp_path: Path, upstream: ApplianceServer) -> Iterator[ApplianceServer]:
    with serving(cache(tmp_path / "cache", upstream.url, ttl="2s")) as server:
        yield server


def pull(client: V2Client, name: str, reference: str) -> tuple[bytes, list[bytes]]:
    """What docker does: the manifest, then its config and layers; returns (manifest, blobs)."""
    response = client.request("GET", f"/v2/{name}/manifests/{reference}", headers=ACCEPT)
    assert response.status_code == 200, response.text
    manifest = json.loads(response.content)
    blobs = []
    for descriptor in [manifest["config"], *manifest["layers"]]:
        blob = client.request("GET", f"/v2/{name}/blobs/{descriptor['digest']}")
        assert blob.status_code == 200, blob.text
        assert digest_of(blob.content) == descriptor["digest"]
        blobs.append(blob.content)
    return response.content, blobs


def test_pull_through_then_served_without_the_upstream(
        upstream: ApplianceServer, mirror: ApplianceServer) -> None:
    """A miss is fetched from the upstream (Basic auth); once cached, the same pull (by tag
    and by digest) works with the upstream stopped."""
    big = bytes(range(256)) * 20000  # 5 MB: several chunks through the tee
    image = upstream_client(upstream).push_image("library/app", "v1", [b"layer-one", big])
    client = V2Client(mirror.url)
    manifest, blobs = pull(client, "hub/library/app", "v1")
    assert manifest == image.manifest
    assert blobs == [image.config, b"layer-one", big]
    upstream.stop()
    assert pull(client, "hub/library/app", "v1") == (manifest, blobs)
    assert pull(client, "hub/library/app", image.digest)[0] == manifest
    catalog = client.request("GET", "/v2/_catalog").json()
    assert catalog["repositories"] == ["hub/library/app"]
    tags = client.request("GET", "/v2/hub/library/app/tags/list").json()
    assert tags == {"name": "hub/library/app", "tags": ["v1"]}
    # Nothing half-written is left in the incoming area.
    incoming = Path(mirror.root) / "appliance/proxy/incoming"
    assert not incoming.exists() or not any(incoming.iterdir())


def test_head_and_range_on_a_miss(upstream: ApplianceServer, mirror: ApplianceServer) -> None:
    """HEAD of an uncached blob answers the size without storing it; a GET then caches it."""
    upstream_client(upstream).push_image("library/app", "v1", [b"0123456789"])
    client = V2Client(mirror.url)
    layer = digest_of(b"0123456789")
    head = client.request("HEAD", f"/v2/hub/library/app/blobs/{layer}")
    assert head.status_code == 200
    assert head.headers["Content-Length"] == "10"
    assert head.headers["Docker-Content-Digest"] == layer
    assert client.request("GET", f"/v2/hub/library/app/blobs/{layer}").content == b"0123456789"
    ranged = client.request("GET", f"/v2/hub/library/app/blobs/{layer}",
                            headers={"Range": "bytes=2-4"})
    assert (ranged.status_code, ranged.content) == (206, b"234")


def test_misses_with_the_upstream_unknown_or_down(
        upstream: ApplianceServer, mirror: ApplianceServer) -> None:
    """Unknown upstream: 404 MANIFEST_UNKNOWN / BLOB_UNKNOWN; upstream down: 503 UNAVAILABLE."""
    client = V2Client(mirror.url)
    missing = client.request("GET", "/v2/hub/library/none/manifests/latest", headers=ACCEPT)
    assert (missing.status_code, client.error_code(missing)) == (404, "MANIFEST_UNKNOWN")
    blob = client.request("GET", f"/v2/hub/library/none/blobs/{digest_of(b'nothing')}")
    assert (blob.status_code, client.error_code(blob)) == (404, "BLOB_UNKNOWN")
    upstream.stop()
    for path in ("/v2/hub/library/none/manifests/latest",
                 f"/v2/hub/library/none/manifests/{digest_of(b'x')}",
                 f"/v2/hub/library/none/blobs/{digest_of(b'nothing')}"):
        response = requests.get(mirror.url + path, headers=ACCEPT, timeout=30)
        assert response.status_code == 503, (path, response.text)
        assert response.json()["errors"][0]["code"] == "UNAVAILABLE"


def test_pushes_refused_under_the_prefix_accepted_elsewhere(
        upstream: ApplianceServer, mirror: ApplianceServer) -> None:
    """Under `hub/`: 405 UNSUPPORTED for uploads, manifests and deletes; other names are a
    private registry."""
    client = V2Client(mirror.url)
    refused = client.request("POST", "/v2/hub/library/app/blobs/uploads/")
    assert (refused.status_code, client.error_code(refused)) == (405, "UNSUPPORTED")
    assert "pull-through cache" in refused.json()["errors"][0]["message"]
    manifest = client.put_manifest("hub/library/app", "v1", b"{}", DOCKER_MANIFEST)
    assert manifest.status_code == 405
    deleted = client.request("DELETE", f"/v2/hub/library/app/manifests/{digest_of(b'x')}")
    assert deleted.status_code == 405
    pushed = client.push_image("team/app", "v1", [b"private layer"])
    assert pull(client, "team/app", "v1")[0] == pushed.manifest
    # The upstream never heard of it.
    assert upstream_client(upstream).request(
        "GET", "/v2/team/app/manifests/v1", headers=ACCEPT).status_code == 404


def test_tag_refreshed_after_ttl_and_stale_when_upstream_down(
        upstream: ApplianceServer, mirror: ApplianceServer) -> None:
    """Within ttl (2s) a moved tag still gives the cached manifest; after it, the new one;
    after another ttl with the upstream down, the cached one (stale) is still served."""
    source = upstream_client(upstream)
    first = source.push_image("library/app", "v1", [b"first"])
    client = V2Client(mirror.url)
    assert pull(client, "hub/library/app", "v1")[0] == first.manifest
    second = source.push_image("library/app", "v1", [b"second"])
    assert pull(client, "hub/library/app", "v1")[0] == first.manifest
    time.sleep(2.2)
    assert pull(client, "hub/library/app", "v1")[0] == second.manifest
    upstream.stop()
    time.sleep(2.2)
    manifest, blobs = pull(client, "hub/library/app", "v1")
    assert manifest == second.manifest
    assert blobs[1] == b"second"


def test_index_and_children_by_digest(upstream: ApplianceServer, mirror: ApplianceServer) -> None:
    """A multi-platform index is cached as is; its children are fetched by digest on demand."""
    source = upstream_client(upstream)
    amd = source.push_image("library/multi", "amd", [b"amd layer"])
    arm = source.push_image("library/multi", "arm", [b"arm layer"])
    index = index_manifest([
        amd.descriptor(platform={"os": "linux", "architecture": "amd64"}),
        arm.descriptor(platform={"os": "linux", "architecture": "arm64"})])
    assert source.put_manifest("library/multi", "latest", index, OCI_INDEX).status_code == 201
    client = V2Client(mirror.url)
    got = client.request("GET", "/v2/hub/library/multi/manifests/latest", headers=ACCEPT)
    assert (got.content, got.headers["Content-Type"]) == (index, OCI_INDEX)
    assert pull(client, "hub/library/multi", arm.digest)[1][1] == b"arm layer"


def test_whole_registry_mirror(tmp_path: Path, upstream: ApplianceServer) -> None:
    """Without a prefix every name is mirrored (docker's `registry-mirrors` asks for
    `library/NAME`), and every push is refused."""
    image = upstream_client(upstream).push_image("library/redis", "7", [b"redis layer"])
    with serving(cache(tmp_path / "whole", upstream.url, prefix=None)) as mirror:
        client = V2Client(mirror.url)
        assert pull(client, "library/redis", "7")[0] == image.manifest
        refused = client.request("POST", "/v2/team/app/blobs/uploads/")
        assert refused.status_code == 405


def test_wrong_credentials_are_unavailable_not_a_crash(
        tmp_path: Path, upstream: ApplianceServer) -> None:
    """An upstream that refuses our credentials: 503 UNAVAILABLE naming the upstream's answer."""
    upstream_client(upstream).push_image("library/app", "v1", [b"x"])
    with serving(cache(tmp_path / "anon", upstream.url, credentials=False)) as mirror:
        response = requests.get(f"{mirror.url}/v2/hub/library/app/manifests/v1", headers=ACCEPT,
                                timeout=30)
        assert response.status_code == 503
        assert "401" in response.json()["errors"][0]["message"]


def test_bearer_token_upstream(tmp_path: Path) -> None:
    """Docker Hub's scheme: a Bearer challenge sends the cache to the realm for a token (with
    its credentials), and the pull goes through."""
    with serving(token_upstream(tmp_path / "upstream")) as upstream:
        token = requests.get(f"{upstream.url}/auth/token", auth=(USER, PASSWORD), timeout=10,
                             params={"service": "upstream-test",
                                     "scope": "repository:library/app:pull,push"}).json()["token"]
        source = V2Client(upstream.url)
        source.session.headers["Authorization"] = f"Bearer {token}"
        image = source.push_image("library/app", "v1", [b"token layer"])
        tokens_before = upstream.log().count("GET /auth/token")
        with serving(cache(tmp_path / "cache", upstream.url)) as mirror:
            client = V2Client(mirror.url)
            manifest, blobs = pull(client, "hub/library/app", "v1")
            assert manifest == image.manifest
            assert blobs[1] == b"token layer"
        # The cache fetched a token from the realm (the request log names it).
        assert upstream.log().count("GET /auth/token") > tokens_before


def test_distribution_upstream(tmp_path: Path) -> None:
    """CNCF Distribution 2.8.2 (htpasswd) as the upstream."""
    server = tools.Distribution(tmp_path / "dist", tmp_path / "dist-data",
                                htpasswd=htpasswd(tmp_path / "users"))
    with server:
        image = upstream_client(server.url).push_image("library/app", "v1", [b"from distribution"])
        with serving(cache(tmp_path / "cache", server.url)) as mirror:
            client = V2Client(mirror.url)
            manifest, blobs = pull(client, "hub/library/app", "v1")
            assert manifest == image.manifest
            assert blobs[1] == b"from distribution"
            assert pull(client, "hub/library/app", image.digest)[0] == image.manifest
