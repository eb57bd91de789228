"""The appliance on OpenStack Swift, seen from outside: docker round trips with layers larger
than a segment, garbage collected by us and by Distribution 2.8.2 on one container, and a
Swift outage in the middle of a push.

Everything runs against the session's Swift all-in-one (tempauth, 1 MiB segments); the outage
goes through a TCP gate of the test's own, so cutting it disturbs no other test. The flows
shared with the other backends (Distribution interop both ways) are parametrized in
test_distribution_compat.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.api.client import DOCKER_MANIFEST, V2Client, digest_of
from tests.server import ApplianceServer, base_config
from tests.swift_server import Gate, SwiftAllInOne, object_name, swift_object

from .registries import RunningRegistry
from .test_object_storage import _blob_gets, _blob_path, _manifest_blobs, _upload_across_an_outage
from .test_object_storage import test_docker_push_delete_gc_pull as _push_delete_gc_pull
from .tools import DISTRIBUTION, Distribution, DockerClient, build_image_archive, clean_env, run

pytestmark = pytest.mark.e2e

MiB = 1 << 20


def _on_swift(workdir: Path, section: dict[str, Any], **storage: Any) -> ApplianceServer:
    config = base_config(workdir)
    del config["storage"]["filesystem"]
    config["storage"]["swift"] = dict(section)
    config["storage"].update(storage)
    config["appliance"] = {"gc": {"grace": "1s"}}
    return ApplianceServer(workdir, config)


def _segments(swift: SwiftAllInOne, section: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """Files that are large objects (name -> segments prefix), and segments no file names."""
    container = section["container"]
    entries = swift.objects(container)
    manifests = {}
    for entry in entries:
        if entry["bytes"] == 0:
            manifest = swift.head(container, entry["name"]).headers.get("X-Object-Manifest")
            if manifest:
                manifests[entry["name"]] = manifest.partition("/")[2]
    stray = [entry["name"] for entry in entries if "segments/" in entry["name"]
             and not any(entry["name"].startswith(prefix + "/") for prefix in manifests.values())]
    return manifests, stray


def _get_blob(client: V2Client, name: str, digest: str) -> bytes:
    got = client.request("GET", f"/v2/{name}/blobs/{digest}")
    if got.status_code == 307:  # our default on Swift: a temp URL serves the bytes
        got = requests.get(got.headers["Location"], timeout=60)
    assert got.status_code == 200, got.text
    return got.content


# -- docker ---------------------------------------------------------------------------------


def test_docker_push_delete_gc_pull_on_swift(swift_registry: RunningRegistry, docker: DockerClient,
                                             tmp_path: Path) -> None:
    """The docker push, delete, GC, pull flow of the other backends, on Swift."""
    _push_delete_gc_pull(swift_registry, docker, tmp_path)


def test_docker_round_trip_of_a_segmented_layer(swift_registry: RunningRegistry, docker: DockerClient,
                                                swift_server: SwiftAllInOne, tmp_path: Path) -> None:
    """A 3 MiB layer (three segments) pushed by docker is stored as one large object with no
    segment left over from its upload, and pulls back through temp URL redirects."""
    registry = swift_registry
    assert registry.swift is not None
    archive = tmp_path / "image.tar"
    layers = [{"opt/big.bin": os.urandom(3 * MiB)}, {"etc/small.txt": b"small\n"}]
    image_id = build_image_archive(archive, layers, "e2e-local/swift-big:built")
    docker.run("load", "--input", str(archive))
    docker.login(registry.host_port, registry.user, registry.password)
    remote = registry.ref("e2e/swift-big", "v1")
    docker.run("tag", "e2e-local/swift-big:built", remote)
    docker.run("push", remote)
    docker.run("rmi", "e2e-local/swift-big:built", remote)

    manifests, stray = _segments(swift_server, registry.swift)
    assert stray == []
    big = [digest for digest in _manifest_blobs(registry, "e2e/swift-big")
           if object_name(registry.swift, _blob_path(digest)) in manifests]
    assert len(big) == 1, manifests
    segments = [entry for entry in swift_server.objects(registry.swift["container"])
                if entry["name"].startswith(manifests[object_name(registry.swift, _blob_path(big[0]))] + "/")]
    assert len(segments) >= 3 and all(entry["bytes"] <= MiB for entry in segments)

    docker.run("pull", remote)
    assert docker.image_id(remote) == image_id
    docker.run("rmi", remote)
    gets = _blob_gets(registry.log_path.read_text() if registry.log_path else "")
    assert set(gets) == {307}, gets


# -- garbage collection by either registry on one container -------------------------------


def test_segmented_blobs_are_collected_by_either_registry(swift_server: SwiftAllInOne, tmp_path: Path) -> None:
    """Large objects Distribution wrote are served and garbage collected by us, segments and
    all; large objects we wrote are garbage collected by Distribution's `garbage-collect` the
    same way. What is still referenced stays and serves; no segment is ever left behind."""
    section = swift_server.storage_config(swift_server.new_container("gc"), "/gc")
    theirs = Distribution(tmp_path / "dist", tmp_path / "unused", swift=section)
    with theirs:
        client = V2Client(theirs.url)
        doomed = client.push_image("team/doomed", "v1", [os.urandom(2 * MiB + 300), os.urandom(50)])
        kept = client.push_image("team/kept", "v1", [os.urandom(MiB + 7)])
    assert len(_segments(swift_server, section)[0]) >= 4  # Distribution segments even small blobs

    ours = _on_swift(tmp_path / "ours", section).start()
    try:
        client = V2Client(ours.url)
        assert _get_blob(client, "team/doomed", digest_of(doomed.layers[0])) == doomed.layers[0]
        assert client.request("DELETE", f"/v2/team/doomed/manifests/{doomed.digest}").status_code == 202
        big = os.urandom(3 * MiB + 11)
        mine = client.push_image("ours/app", "v1", [big])
    finally:
        ours.stop()
    time.sleep(1.5)  # the one-second grace period
    collected = subprocess.run([sys.executable, "-m", "appliance.cli", "garbage-collect",
                                str(ours.workdir / "config.yml")], capture_output=True, text=True,
                               timeout=300, env=clean_env(drop_prefixes=("REGISTRY_",)))
    assert collected.returncode == 0, collected.stderr
    for blob in (doomed.config, *doomed.layers):
        assert swift_object_missing(section, digest_of(blob))
    assert _segments(swift_server, section)[1] == []

    with Distribution(tmp_path / "dist2", tmp_path / "unused", swift=section) as theirs:
        client = V2Client(theirs.url)
        assert _get_blob(client, "ours/app", digest_of(big)) == big
        assert client.request("DELETE", f"/v2/ours/app/manifests/{mine.digest}").status_code == 202
        config_path = theirs.config_path
    gc = run([DISTRIBUTION, "garbage-collect", str(config_path)], check=False,
             env=clean_env(drop_prefixes=("REGISTRY_",), drop=("AWS_CA_BUNDLE",)))
    assert gc.returncode == 0, gc.stderr
    assert swift_object_missing(section, digest_of(big))
    assert _segments(swift_server, section)[1] == []

    with Distribution(tmp_path / "dist3", tmp_path / "unused", swift=section) as theirs:
        client = V2Client(theirs.url)
        got = client.request("GET", "/v2/team/kept/manifests/v1", headers={"Accept": DOCKER_MANIFEST})
        assert got.content == kept.manifest
        assert _get_blob(client, "team/kept", digest_of(kept.layers[0])) == kept.layers[0]


def swift_object_missing(section: dict[str, Any], digest: str) -> bool:
    return swift_object(section, _blob_path(digest)) is None


# -- Swift goes away ------------------------------------------------------------------------


def test_swift_outage_mid_push_is_503_and_loses_nothing(swift_server: SwiftAllInOne, tmp_path: Path) -> None:
    """With Swift cut off in the middle of a push, clients get 503 UNAVAILABLE (not 500) on
    every storage-backed request; once it is back, the same push resumes where it was and
    everything committed before still pulls."""
    gate = Gate(swift_server.ports["proxy"]).open()
    section = swift_server.storage_config(swift_server.new_container("outage"), "/registry",
                                          authurl=f"http://127.0.0.1:{gate.port}/auth/v1.0")
    server = _on_swift(tmp_path / "server", section, redirect={"disable": True}).start()
    try:
        client = V2Client(server.url)
        committed = client.push_image("lib/app", "v1", [os.urandom(2 * MiB), os.urandom(3000)])
        data = _upload_across_an_outage(server, client, gate.close, gate.open)
        got = client.request("GET", "/v2/lib/app/manifests/v1", headers={"Accept": DOCKER_MANIFEST})
        assert got.status_code == 200 and got.content == committed.manifest
        for blob in (committed.config, *committed.layers, data):
            assert client.request("GET", f"/v2/lib/app/blobs/{digest_of(blob)}").content == blob
    finally:
        server.stop()
        gate.close()
    log = server.log()
    assert "Traceback" not in log, log  # one warning line per refused request, no stack
    assert "swift backend unreachable" in log
    assert _segments(swift_server, section)[1] == []
