"""A real `docker pull` through the pull-through cache (prefix form `127.0.0.1:PORT/hub/…`).

Both registries serve plain HTTP on loopback, which docker accepts without
`insecure-registries` (127.0.0.0/8 is insecure by default).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.proxy.servers import PASSWORD, USER, basic_upstream, cache, serving

from .test_clients import three_layers
from .tools import DockerClient, build_image_archive

pytestmark = pytest.mark.e2e


def test_docker_pull_through_the_cache(docker: DockerClient, tmp_path: Path) -> None:
    """docker pulls hub/library/app from the cache (fetched from the upstream); again with the
    upstream stopped; a push under hub/ is refused and one elsewhere accepted."""
    archive = tmp_path / "image.tar"
    local = "e2e-local/proxy:built"
    image_id = build_image_archive(archive, three_layers("proxy"), local)
    docker.run("load", "--input", str(archive))
    with serving(basic_upstream(tmp_path / "upstream")) as upstream, \
            serving(cache(tmp_path / "cache", upstream.url)) as mirror:
        source = f"127.0.0.1:{upstream.port}/library/app:v1"
        docker.run("tag", local, source)
        docker.login(f"127.0.0.1:{upstream.port}", USER, PASSWORD)
        docker.run("push", source)
        docker.run("rmi", source, local)

        through = f"127.0.0.1:{mirror.port}/hub/library/app:v1"
        docker.run("pull", through)
        assert docker.image_id(through) == image_id
        docker.run("rmi", through)

        upstream.stop()
        docker.run("pull", through)
        assert docker.image_id(through) == image_id

        refused = docker.run("push", f"127.0.0.1:{mirror.port}/hub/library/app:v1", check=False)
        assert refused.returncode != 0
        private = f"127.0.0.1:{mirror.port}/team/app:v1"
        docker.run("tag", through, private)
        docker.run("push", private)
        docker.run("rmi", through, private)
        docker.run("pull", private)
        assert docker.image_id(private) == image_id
        docker.run("rmi", private)
