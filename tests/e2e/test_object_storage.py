"""Object storage seen from outside: GC with docker, pulls through redirects, uploads that move
between instances, and a backend outage in the middle of a push.

Everything runs against a real SeaweedFS S3 gateway on loopback; the outage test starts one of
its own so that stopping it does not disturb the other tests.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from appliance.admin.client import AdminClient
from tests.api.client import V2Client, digest_of
from tests.seaweedfs import SeaweedFS
from tests.server import ApplianceServer, base_config

from .registries import RunningRegistry
from .test_clients import three_layers
from .tools import ContainerTools, DockerClient, build_image_archive

pytestmark = pytest.mark.e2e

MiB = 1 << 20


def _on_s3(workdir: Path, section: dict[str, Any], secret: str = "test-secret") -> ApplianceServer:
    config = base_config(workdir)
    del config["storage"]["filesystem"]
    config["storage"]["s3"] = dict(section)
    config["http"]["secret"] = secret
    return ApplianceServer(workdir, config)


def _blob_path(digest: str) -> str:
    hexdigest = digest.split(":", 1)[1]
    return f"docker/registry/v2/blobs/sha256/{hexdigest[:2]}/{hexdigest}/data"


def _blob_gets(log: str) -> dict[int, int]:
    """Status -> count of blob GETs in a server's access log."""
    counts: dict[int, int] = {}
    for status in re.findall(r" GET /v2/\S+/blobs/sha256:[0-9a-f]{64} (\d{3}) ", log):
        counts[int(status)] = counts.get(int(status), 0) + 1
    return counts


# -- the same docker flows as on a filesystem ------------------------------------------------


def test_docker_push_delete_gc_pull(registry: RunningRegistry, docker: DockerClient, tmp_path: Path) -> None:
    """Two images share a layer; deleting one and collecting garbage removes only its own blobs
    from storage, and the other still pulls with docker (filesystem and S3 alike)."""
    if registry.admin_socket is None:
        pytest.fail("the admin API is ours: run with E2E_REGISTRY=appliance")
    docker.login(registry.host_port, registry.user, registry.password)
    shared = {"usr/share/base.txt": b"shared base layer\n"}
    ids = {}
    for name in ("keep", "drop"):
        archive = tmp_path / f"{name}.tar"
        layers = [shared, *three_layers(f"gc-{name}")[:2]]
        ids[name] = build_image_archive(archive, layers, f"e2e-local/{name}:built")
        docker.run("load", "--input", str(archive))
        docker.run("tag", f"e2e-local/{name}:built", registry.ref(f"gc/{name}", "v1"))
        docker.run("push", registry.ref(f"gc/{name}", "v1"))
    admin = AdminClient(registry.admin_socket)
    manifests = {name: admin.manifest(f"gc/{name}", "v1") for name in ("keep", "drop")}
    blobs = {name: _manifest_blobs(registry, f"gc/{name}") for name in ("keep", "drop")}
    admin.delete_manifest("gc/drop", manifests["drop"]["digest"])

    result = _collect(admin)
    only_dropped = blobs["drop"] - blobs["keep"]
    assert only_dropped and set(result["blobs"]) >= only_dropped | {manifests["drop"]["digest"]}
    for digest in only_dropped:
        assert not registry.file_exists(_blob_path(digest)), digest
    for digest in blobs["keep"]:
        assert registry.file_exists(_blob_path(digest)), digest

    docker.run("rmi", "e2e-local/keep:built", registry.ref("gc/keep", "v1"))
    docker.run("pull", registry.ref("gc/keep", "v1"))
    assert docker.image_id(registry.ref("gc/keep", "v1")) == ids["keep"]
    assert docker.run("pull", registry.ref("gc/drop", "v1"), check=False).returncode != 0
    docker.run("rmi", registry.ref("gc/keep", "v1"), "e2e-local/drop:built", registry.ref("gc/drop", "v1"))


def _manifest_blobs(registry: RunningRegistry, name: str) -> set[str]:
    got = requests.get(f"{registry.url}/v2/{name}/manifests/v1", auth=(registry.user, registry.password),
                       headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
                       verify=str(registry.ca_path), timeout=30)
    document = got.json()
    return {document["config"]["digest"], *(layer["digest"] for layer in document["layers"])}


def _collect(admin: AdminClient) -> dict[str, Any]:
    """Run GC through the admin API once the factory's one-second grace period has passed."""
    time.sleep(1.5)
    admin.start_gc(dry_run=False, delete_untagged=False)
    deadline = time.monotonic() + 60
    while admin.gc_status()["running"]:
        assert time.monotonic() < deadline, "gc did not finish"
        time.sleep(0.1)
    status = admin.gc_status()
    assert status["error"] is None, status
    return status["history"][0]


# -- redirects ------------------------------------------------------------------------------


def test_pulls_follow_redirects_to_the_bucket(s3_registry: RunningRegistry, docker: DockerClient,
                                             ctools: ContainerTools, tmp_path: Path) -> None:
    """On S3, blob GETs answer 307 to a presigned URL (HEADs do not): docker and skopeo pull
    through it, byte for byte, and no blob passes through the registry."""
    registry = s3_registry
    archive = tmp_path / "image.tar"
    image_id = build_image_archive(archive, three_layers("redirects"), "e2e-local/redirect:built")
    docker.run("load", "--input", str(archive))
    docker.login(registry.host_port, registry.user, registry.password)
    remote = registry.ref("e2e/redirect", "v1")
    docker.run("tag", "e2e-local/redirect:built", remote)
    docker.run("push", remote)
    docker.run("rmi", "e2e-local/redirect:built", remote)

    docker.run("pull", remote)
    assert docker.image_id(remote) == image_id
    docker.run("rmi", remote)
    layout = tmp_path / "layout"
    ctools.skopeo("copy", "--src-tls-verify=true", "--src-cert-dir", str(ctools.cert_dir),
                  "--src-creds", registry.creds, f"docker://{remote}", f"oci:{layout}:v1")
    (entry,) = json.loads((layout / "index.json").read_text())["manifests"]
    manifest = json.loads((layout / "blobs/sha256" / entry["digest"].split(":")[1]).read_bytes())
    for blob in (manifest["config"], *manifest["layers"]):
        data = (layout / "blobs/sha256" / blob["digest"].split(":")[1]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == blob["digest"].split(":")[1]

    gets = _blob_gets(registry.log_path.read_text() if registry.log_path else "")
    assert gets.get(307, 0) >= 8, gets  # 4 blobs, pulled by docker and by skopeo
    assert set(gets) == {307}, gets
    head = requests.head(f"{registry.url}/v2/e2e/redirect/blobs/{image_id}", verify=str(registry.ca_path),
                         auth=(registry.user, registry.password), timeout=30)
    assert head.status_code == 200 and int(head.headers["Content-Length"]) > 0


def test_redirects_can_be_disabled(seaweedfs: SeaweedFS, s3_bucket: str, tmp_path: Path) -> None:
    """`storage.redirect.disable: true` serves blobs through the registry, as Distribution does."""
    section = seaweedfs.storage_config(s3_bucket, f"/e2e/{uuid.uuid4().hex[:8]}")
    server = _on_s3(tmp_path / "server", section)
    server.config["storage"]["redirect"] = {"disable": True}
    server.start()
    try:
        client = V2Client(server.url)
        data = os.urandom(300_000)
        client.push_image("direct/app", "v1", [data])
        got = client.request("GET", f"/v2/direct/app/blobs/{digest_of(data)}")
        assert got.status_code == 200 and got.content == data
    finally:
        server.stop()


# -- several instances on one bucket -------------------------------------------------------


@pytest.fixture
def two_instances(seaweedfs: SeaweedFS, s3_bucket: str, tmp_path: Path) -> Iterator[tuple[ApplianceServer, ApplianceServer]]:
    """Two servers on the same bucket and rootdirectory with the same http.secret: one registry."""
    section = seaweedfs.storage_config(s3_bucket, f"/e2e/{uuid.uuid4().hex[:8]}")
    first = _on_s3(tmp_path / "first", section, secret="shared").start()
    try:
        second = _on_s3(tmp_path / "second", section, secret="shared").start()
        try:
            yield first, second
        finally:
            second.stop()
    finally:
        first.stop()
    for server in (first, second):
        assert "Traceback" not in server.log(), server.log()


@pytest.mark.parametrize("chunks", [[1000, 2000, 3000], [6 * MiB, 5 * MiB, 1000], [7 * MiB]],
                         ids=["small-chunks", "large-chunks", "one-chunk"])
def test_an_upload_moves_between_instances(two_instances: tuple[ApplianceServer, ApplianceServer],
                                           chunks: list[int]) -> None:
    """An upload started on one instance continues and finishes on the other (which never saw
    the first bytes, so it re-reads them to check the digest); both then serve the blob."""
    first, second = two_instances
    data = os.urandom(sum(chunks))
    digest = digest_of(data)
    started = V2Client(first.url).request("POST", "/v2/moving/app/blobs/uploads/")
    assert started.status_code == 202
    location, offset = started.headers["Location"], 0
    for number, size in enumerate(chunks):
        server = first if number == 0 else second
        location = location.replace(f":{first.port}/", f":{server.port}/")
        got = requests.patch(location, data=data[offset:offset + size], timeout=60,
                             headers={"Content-Range": f"{offset}-{offset + size - 1}"})
        assert got.status_code == 202, got.text
        assert got.headers["Range"] == f"0-{offset + size - 1}"
        location, offset = got.headers["Location"], offset + size
    status = requests.get(location.replace(f":{second.port}/", f":{first.port}/"), timeout=30)
    assert status.status_code == 204 and status.headers["Range"] == f"0-{len(data) - 1}"
    done = requests.put(location.replace(f":{first.port}/", f":{second.port}/"), params={"digest": digest}, timeout=60)
    assert done.status_code == 201, done.text
    for server in (first, second):
        got = requests.get(f"{server.url}/v2/moving/app/blobs/{digest}", timeout=60)
        assert got.status_code == 200
        assert hashlib.sha256(got.content).hexdigest() == digest.split(":")[1]


def test_a_wrong_digest_across_instances_is_refused(two_instances: tuple[ApplianceServer, ApplianceServer]) -> None:
    """The instance that re-reads the chunks still catches a wrong digest, and drops the upload."""
    first, second = two_instances
    started = V2Client(first.url).request("POST", "/v2/moving/app/blobs/uploads/")
    got = requests.patch(started.headers["Location"], data=b"x" * 1000, headers={"Content-Range": "0-999"}, timeout=30)
    location = got.headers["Location"].replace(f":{first.port}/", f":{second.port}/")
    refused = requests.put(location, params={"digest": digest_of(b"y" * 1000)}, timeout=30)
    assert refused.status_code == 400 and refused.json()["errors"][0]["code"] == "DIGEST_INVALID"
    assert requests.get(location, timeout=30).status_code == 404


# -- the backend goes away ------------------------------------------------------------------


@pytest.fixture
def own_seaweedfs(tmp_path: Path) -> Iterator[SeaweedFS]:
    """A SeaweedFS of this test's own, so stopping it disturbs nobody else."""
    server = SeaweedFS(tmp_path / "seaweedfs").start()
    try:
        yield server
    finally:
        server.stop(grace=1.0)


def test_backend_outage_mid_push_is_503_and_loses_nothing(own_seaweedfs: SeaweedFS, tmp_path: Path) -> None:
    """With SeaweedFS killed in the middle of a push, clients get 503 UNAVAILABLE (not 500) on
    every storage-backed request; once it is back, the same push resumes where it was and
    everything committed before still pulls."""
    seaweedfs = own_seaweedfs
    bucket = seaweedfs.create_bucket("outage")
    server = _on_s3(tmp_path / "server", seaweedfs.storage_config(bucket, "/registry"))
    server.config["storage"]["redirect"] = {"disable": True}
    server.start()
    try:
        client = V2Client(server.url)
        committed = client.push_image("lib/app", "v1", [os.urandom(200_000), os.urandom(3000)])
        data = _upload_across_an_outage(server, client, seaweedfs.kill, seaweedfs.start)
        client.push_image("lib/app", "v2", [data])
        for tag, image in (("v1", committed),):
            got = client.request("GET", f"/v2/lib/app/manifests/{tag}",
                                 headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
            assert got.status_code == 200 and got.content == image.manifest
            for blob in (image.config, *image.layers):
                assert client.request("GET", f"/v2/lib/app/blobs/{digest_of(blob)}").content == blob
        assert client.request("GET", f"/v2/lib/app/blobs/{digest_of(data)}").content == data
    finally:
        server.stop()
    log = server.log()
    assert "Traceback" not in log, log  # one warning line per refused request, no stack
    assert "s3 backend unreachable" in log


def _upload_across_an_outage(server: Any, client: V2Client, cut: Callable[[], object],
                             restore: Callable[[], object]) -> bytes:
    """A chunked upload with the backend `cut` after its first MiB: every storage-backed request
    is 503 UNAVAILABLE meanwhile; after `restore` the same upload resumes and completes.
    Returns the uploaded blob."""
    data = os.urandom(3 * MiB)
    started = client.request("POST", "/v2/lib/app/blobs/uploads/")
    first = requests.patch(started.headers["Location"], data=data[:MiB], timeout=30,
                           headers={"Content-Range": f"0-{MiB - 1}"})
    assert first.status_code == 202
    rest = {"data": data[MiB:], "timeout": 120,
            "headers": {"Content-Range": f"{MiB}-{len(data) - 1}"}}

    cut()
    refused = [
        requests.patch(first.headers["Location"], **rest),  # type: ignore[arg-type]
        requests.get(f"{server.url}/v2/lib/app/manifests/v1", timeout=120),
        requests.head(f"{server.url}/v2/lib/app/blobs/{digest_of(data)}", timeout=120),
        requests.get(f"{server.url}/v2/lib/app/tags/list", timeout=120),
        requests.post(f"{server.url}/v2/lib/app/blobs/uploads/", timeout=120),
    ]
    for answer in refused:
        assert answer.status_code == 503, (answer.request.method, answer.request.url, answer.text)
    for answer in refused[:2]:  # HEAD answers have no body
        assert answer.json()["errors"][0]["code"] == "UNAVAILABLE"

    restore()
    retried = requests.patch(first.headers["Location"], **rest)  # type: ignore[arg-type]
    assert retried.status_code == 202, retried.text
    done = requests.put(retried.headers["Location"], params={"digest": digest_of(data)}, timeout=120)
    assert done.status_code == 201, done.text
    return data
