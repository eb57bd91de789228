"""Soak: many clients push and pull for minutes over TLS with htpasswd auth; no request fails
and the server's memory stays flat.

RSS is the sum over the server's process tree (the supervisor and its workers), sampled after a
warm-up (each client has pushed and pulled once, so imports, TLS contexts, caches and thread
pools exist), every `SAMPLE_EVERY` seconds, and at the end.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import requests

from appliance.auth.htpasswd import hash_password, write_entries
from tests.api.client import DOCKER_MANIFEST, V2Client, digest_of, image_manifest
from tests.server import ApplianceServer, base_config

from .processes import descendants, rss_bytes
from .tls import enable_tls

pytestmark = pytest.mark.e2e

DURATION = float(os.environ.get("SOAK_SECONDS", "180"))
CLIENTS = int(os.environ.get("SOAK_CLIENTS", "16"))
SAMPLE_EVERY = 10.0
# Allowed growth of the whole tree's RSS from warm-up to end. Caches are bounded (manifest
# bodies 8 MiB, blob descriptors, auth verdicts) and allocator arenas settle within minutes;
# measured growth was a few MiB (see the printed figures), so 30 MiB leaves room for the
# allocator's noise while a leak of even a few KiB per request (tens of thousands) exceeds it.
RSS_GROWTH_BOUND = 30 << 20
USER, PASSWORD = "soak", "soak-password"


class SoakClient:
    """Pushes a small image, then pulls it (and an older one) like docker: manifest, HEADs,
    blobs; lists tags and the catalog now and then. Counts requests and failures."""

    def __init__(self, url: str, ca: str, number: int) -> None:
        self.client = V2Client(url, auth=(USER, PASSWORD), verify=ca)
        self.number = number
        self.random = random.Random(number)
        self.requests = 0
        self.errors: Counter[str] = Counter()
        self.pushed: list[tuple[str, str, list[str]]] = []  # (name, tag, blob digests)

    def call(self, method: str, path: str, expected: int, **kwargs: object) -> requests.Response:
        self.requests += 1
        response = self.client.request(method, path, **kwargs)  # asserts no 5xx, no traceback
        assert response.status_code == expected, (
            f"{method} {path}: {response.status_code} {response.text[:200]}"
        )
        return response

    def round(self) -> None:
        try:
            self._round()
        except (AssertionError, requests.RequestException) as error:
            self.errors[f"{type(error).__name__}: {str(error)[:200]}"] += 1

    def _round(self) -> None:
        name = f"soak/c{self.number % 4}"
        tag = f"t{self.number}-{len(self.pushed) % 20}"
        config, layers = (
            os.urandom(64).hex().encode(),
            [os.urandom(self.random.randint(512, 64_000)) for _ in range(2)],
        )
        for blob in (config, *layers):
            digest = digest_of(blob)
            self.call("HEAD", f"/v2/{name}/blobs/{digest}", 404)  # new bytes: as docker, ask first
            start = self.call("POST", f"/v2/{name}/blobs/uploads/", 202)
            self.call("PUT", start.headers["Location"], 201, params={"digest": digest}, data=blob)
        self.call(
            "PUT",
            f"/v2/{name}/manifests/{tag}",
            201,
            data=image_manifest(config, layers),
            headers={"Content-Type": DOCKER_MANIFEST},
        )
        self.pushed.append((name, tag, [digest_of(b) for b in (config, *layers)]))
        for pull_name, pull_tag, blobs in (self.pushed[-1], self.random.choice(self.pushed)):
            got = self.call(
                "GET",
                f"/v2/{pull_name}/manifests/{pull_tag}",
                200,
                headers={"Accept": DOCKER_MANIFEST},
            )
            assert got.headers["Docker-Content-Digest"] == digest_of(got.content)
            for digest in blobs:
                self.call("HEAD", f"/v2/{pull_name}/blobs/{digest}", 200)
                blob = self.call("GET", f"/v2/{pull_name}/blobs/{digest}", 200)
                assert digest_of(blob.content) == digest, f"blob {digest} corrupt"
        if self.random.random() < 0.2:
            self.call("GET", f"/v2/{name}/tags/list", 200)
            self.call("GET", "/v2/_catalog", 200)


def _tree_rss(pid: int) -> int:
    return sum(rss_bytes(member) for member in (pid, *descendants(pid)))


def test_soak_no_errors_and_flat_memory(tmp_path: Path) -> None:
    """`CLIENTS` clients push and pull for `DURATION` s: 0 errors, RSS growth under the bound."""
    htpasswd = tmp_path / "htpasswd"
    write_entries(str(htpasswd), {USER: hash_password(PASSWORD)})
    config = base_config(tmp_path)
    certs = enable_tls(config, tmp_path / "certs")
    config["auth"] = {"htpasswd": {"realm": "soak", "path": str(htpasswd)}}
    server = ApplianceServer(tmp_path / "server", config).start()
    clients = [SoakClient(server.url, str(certs.ca_cert), n) for n in range(CLIENTS)]
    for client in clients:  # warm-up: every path once, before the first sample
        client.round()
    samples = [(0.0, _tree_rss(server.process.pid))]
    stop = threading.Event()

    def run(client: SoakClient) -> None:
        while not stop.is_set():
            client.round()

    threads = [threading.Thread(target=run, args=(c,), daemon=True) for c in clients]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    while (elapsed := time.monotonic() - started) < DURATION:
        time.sleep(min(SAMPLE_EVERY, DURATION - elapsed))
        samples.append((time.monotonic() - started, _tree_rss(server.process.pid)))
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    duration = time.monotonic() - started
    samples.append((duration, _tree_rss(server.process.pid)))
    server.stop()
    total = sum(c.requests for c in clients)
    errors = sum((c.errors for c in clients), Counter())
    start_rss, end_rss = samples[0][1], samples[-1][1]
    mib = 1 << 20
    print(
        f"\nsoak: {CLIENTS} clients, TLS + htpasswd, {duration:.0f} s: {total} requests "
        f"({total / duration:.0f} req/s), {sum(errors.values())} errors; "
        f"server RSS (all processes) start {start_rss / mib:.1f} MiB, end {end_rss / mib:.1f} MiB, "
        f"max {max(r for _, r in samples) / mib:.1f} MiB, "
        f"growth {(end_rss - start_rss) / mib:+.1f} MiB; "
        f"samples: {', '.join(f'{t:.0f}s {r / mib:.1f}' for t, r in samples)}"
    )
    assert not errors, errors.most_common(5)
    assert server.process.returncode == 0, "the graceful stop did not finish: killed"
    assert "Traceback" not in server.log()
    assert end_rss - start_rss < RSS_GROWTH_BOUND
