"""Two registry-appliance instances on one storage behind a real nginx, pushed to by real docker.

The instances share `http.secret` and the storage (one filesystem root, or one S3 prefix on the
session's SeaweedFS); nginx terminates TLS and sends each request round-robin, so one upload's
POST, PATCH and PUT land on different instances. README "Scaling out" shows the same setup.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.nginx import Nginx
from tests.server import ApplianceServer, base_config

from .test_clients import three_layers
from .tools import CertSet, DockerClient, build_image_archive

pytestmark = pytest.mark.e2e


@pytest.fixture(params=["filesystem", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """The `storage` section both instances get."""
    if request.param == "s3":
        seaweedfs = request.getfixturevalue("seaweedfs")
        bucket = request.getfixturevalue("s3_bucket")
        section = seaweedfs.storage_config(bucket, f"/scale/{secrets.token_hex(6)}")
        return {"s3": section, "delete": {"enabled": True}}
    return {"filesystem": {"rootdirectory": str(tmp_path / "data")}, "delete": {"enabled": True}}


@pytest.fixture
def instances(
    tmp_path: Path, storage: dict[str, Any], credentials: tuple[str, str, Path]
) -> Iterator[list[ApplianceServer]]:
    """Two `serve --workers 2` processes, plain HTTP on loopback, same secret and storage."""
    _, _, htpasswd = credentials
    started: list[ApplianceServer] = []
    try:
        for name in ("a", "b"):
            config = base_config(tmp_path / name)
            config["storage"] = storage
            config["http"]["secret"] = "shared-scale-out-secret"
            config["auth"] = {"htpasswd": {"realm": "registry", "path": str(htpasswd)}}
            config["log"]["formatter"] = "json"
            server = ApplianceServer(tmp_path / name, config, args=["--workers", "2"])
            started.append(server.start())
        yield started
    finally:
        for server in started:
            server.stop()
    for server in started:
        assert "Traceback" not in server.log(), server.log()


@pytest.fixture
def balancer(
    tmp_path: Path, instances: list[ApplianceServer], tls_files: CertSet
) -> Iterator[Nginx]:
    nginx = Nginx(tmp_path / "nginx", [f"127.0.0.1:{s.port}" for s in instances],
                  tls_files.server_cert, tls_files.server_key).start()
    try:
        yield nginx
    finally:
        nginx.stop()
        print(nginx.error_log()[-3000:])


def test_docker_push_through_nginx_pull_from_each_instance(
    instances: list[ApplianceServer], balancer: Nginx, docker: DockerClient,
    credentials: tuple[str, str, Path], tmp_path: Path,
) -> None:
    """docker pushes through nginx (uploads spread over both instances) and pulls the same tag
    from each instance directly, with the image ID it pushed."""
    user, password, _ = credentials
    archive = tmp_path / "image.tar"
    local = "e2e-local/scale:built"
    image_id = build_image_archive(archive, three_layers(f"scale-{secrets.token_hex(4)}"), local)
    docker.run("load", "--input", str(archive))
    pushed = f"{balancer.host_port}/team/scaled:v1"
    docker.login(balancer.host_port, user, password)
    docker.run("tag", local, pushed)
    docker.run("push", pushed)
    docker.run("rmi", local, pushed)

    uploads = [line for line in balancer.access_log() if "/blobs/uploads/" in line]
    upstreams = {line.rsplit("upstream=", 1)[1] for line in uploads}
    assert upstreams == {f"127.0.0.1:{s.port}" for s in instances}, uploads
    per_upload: dict[str, set[str]] = {}
    for line in uploads:
        match = re.search(r"/blobs/uploads/([0-9a-f-]{36})", line)
        if match:
            per_upload.setdefault(match.group(1), set()).add(line.rsplit("upstream=", 1)[1])
    assert any(len(hosts) > 1 for hosts in per_upload.values()), uploads

    for server in instances:
        direct = f"127.0.0.1:{server.port}/team/scaled:v1"
        docker.login(f"127.0.0.1:{server.port}", user, password)
        docker.run("pull", direct)
        assert docker.image_id(direct) == image_id
        docker.run("rmi", direct)
