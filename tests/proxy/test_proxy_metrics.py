"""The pull-through cache's hits and misses on /metrics, after known traffic over real HTTP
through a cache of ours in front of an upstream of ours."""

from __future__ import annotations

import time
from pathlib import Path

import requests

from tests.api.client import V2Client, digest_of
from tests.observe.test_health_metrics import scrape, value
from tests.server import free_port

from .servers import DebugPort, basic_upstream, cache, serving, upstream_client
from .test_pull_through import ACCEPT, pull

TTL = 2.0

def test_cache_outcomes_and_upstream_bytes_are_counted(tmp_path: Path) -> None:
    """Every manifest and blob lookup under the prefix is counted once by kind and outcome
    (hit, miss, revalidated, stale, unknown, error), and the bytes fetched from the upstream
    are exactly the manifests and blobs it sent."""
    with serving(basic_upstream(tmp_path / "upstream")) as upstream:
        source = upstream_client(upstream)
        app = source.push_image("library/app", "v1", [b"shared layer"])
        other = source.push_image("library/other", "v1", [b"shared layer", b"other layer"])
        mirror = cache(tmp_path / "cache", upstream.url, ttl=f"{TTL}s")
        debug_port = free_port()
        mirror.config["http"]["debug"] = {"addr": f"127.0.0.1:{debug_port}",
                                          "prometheus": {"enabled": True}}
        with serving(mirror):
            client = V2Client(mirror.url)
            pull(client, "hub/library/app", "v1")  # manifest, config and layer: 3 misses
            pull(client, "hub/library/app", "v1")  # the same: 3 hits
            assert pull(client, "hub/library/app", app.digest)[0] == app.manifest  # 3 hits
            got = client.request("GET", "/v2/hub/library/other/manifests/v1", headers=ACCEPT)
            assert got.content == other.manifest  # miss
            other_config = f"/v2/hub/library/other/blobs/{digest_of(other.config)}"
            assert client.request("HEAD", other_config).status_code == 200  # miss, no body
            shared = f"/v2/hub/library/other/blobs/{digest_of(b'shared layer')}"
            # Stored for library/app: the upstream confirms library/other has it (revalidated).
            assert client.request("GET", shared).content == b"shared layer"
            assert client.request("GET", "/v2/hub/library/none/manifests/latest",
                                  headers=ACCEPT).status_code == 404
            assert client.request(
                "GET", f"/v2/hub/library/none/blobs/{digest_of(b'none')}").status_code == 404
            time.sleep(TTL + 0.2)
            pull(client, "hub/library/app", "v1")  # tag revalidated (not moved), 2 blob hits
            upstream.stop()
            time.sleep(TTL + 0.2)
            assert client.request("GET", "/v2/hub/library/app/manifests/v1",
                                  headers=ACCEPT).status_code == 200  # stale
            for path in (f"/v2/hub/library/app/manifests/{digest_of(b'x')}", other_config):
                assert requests.get(mirror.url + path, timeout=30).status_code == 503  # error
            samples = scrape(DebugPort(f"http://127.0.0.1:{debug_port}"))

    counted = {dict(labels)["kind"] + "/" + dict(labels)["result"]: number
               for (name, labels), number in samples.items()
               if name == "registry_proxy_requests_total"}
    assert counted == {
        "manifest/miss": 2, "manifest/hit": 2, "manifest/revalidated": 1, "manifest/stale": 1,
        "manifest/unknown": 1, "manifest/error": 1,
        "blob/miss": 3, "blob/hit": 6, "blob/revalidated": 1, "blob/unknown": 1,
        "blob/error": 1,
    }
    assert value(samples, "registry_proxy_fetched_bytes_total", kind="manifest") == len(
        app.manifest) + len(other.manifest)
    assert value(samples, "registry_proxy_fetched_bytes_total", kind="blob") == len(
        app.config) + len(b"shared layer")
