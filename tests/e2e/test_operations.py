"""Operations seen by a real docker: pulls after a server-side retag and after deleting a sibling tag."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.admin.client import AdminClient

from .registries import RunningRegistry
from .test_clients import three_layers
from .tools import DockerClient, build_image_archive

pytestmark = pytest.mark.e2e


def test_docker_pulls_after_retag_and_sibling_tag_delete(
    registry: RunningRegistry, docker: DockerClient, tmp_path: Path
) -> None:
    """A retagged copy pulls with the same image ID; deleting one of two tags leaves the other pullable."""
    if registry.admin_socket is None:
        pytest.fail("the admin API is ours: run with E2E_REGISTRY=appliance")
    archive = tmp_path / "image.tar"
    local = "e2e-local/ops:built"
    image_id = build_image_archive(archive, three_layers("operations"), local)
    docker.run("load", "--input", str(archive))
    docker.login(registry.host_port, registry.user, registry.password)
    for tag in ("v1", "stable"):
        docker.run("tag", local, registry.ref("team/app", tag))
        docker.run("push", registry.ref("team/app", tag))
    docker.run("rmi", local, registry.ref("team/app", "v1"), registry.ref("team/app", "stable"))

    admin = AdminClient(registry.admin_socket)
    admin.copy("team/app:v1", "prod/app:1.0")
    docker.run("pull", registry.ref("prod/app", "1.0"))
    assert docker.image_id(registry.ref("prod/app", "1.0")) == image_id
    docker.run("rmi", registry.ref("prod/app", "1.0"))

    admin.delete_tag("team/app", "v1")
    assert [t["tag"] for t in admin.tags("team/app")] == ["stable"]
    assert docker.run("pull", registry.ref("team/app", "v1"), check=False).returncode != 0
    docker.run("pull", registry.ref("team/app", "stable"))
    assert docker.image_id(registry.ref("team/app", "stable")) == image_id
    docker.run("rmi", registry.ref("team/app", "stable"))
