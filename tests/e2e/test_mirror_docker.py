"""docker's `registry-mirrors`: a dockerd whose daemon.json names our registry (a whole-registry
mirror over TLS, no prefix) pulls a Docker Hub name through it. The mirror's upstream is a second
registry of ours with Basic auth that holds `library/NAME`.

There is no internet here, so a pull that succeeds was answered by the mirror (docker falls back
to registry-1.docker.io only when the mirror fails, and that fails). dockerd treats 127.0.0.0/8
as insecure: it speaks TLS to the mirror without checking the certificate, and ignores
`/etc/docker/certs.d` for it, so nothing is installed there.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.observe.test_health_metrics import scrape, value
from tests.proxy.servers import PASSWORD, USER, DebugPort, basic_upstream, cache, serving
from tests.server import free_port

from .test_clients import three_layers
from .tools import Dockerd, build_image_archive, make_certs

pytestmark = pytest.mark.e2e


class MirroredDockerd(Dockerd):
    """A private dockerd whose daemon.json also sets `registry-mirrors`."""

    def __init__(self, mirrors: list[str]) -> None:
        super().__init__()
        self.mirrors = mirrors
        self.config_file = self.dir / "mirrored.json"

    def start(self, timeout: float = 60.0) -> Dockerd:
        self.dir.mkdir(parents=True, exist_ok=True)
        settings = {"deprecated-key-path": str(self.dir / "key.json"),
                    "registry-mirrors": self.mirrors}
        self.config_file.write_text(json.dumps(settings) + "\n")
        return super().start(timeout)

    def argv(self) -> list[str]:
        return [f"--config-file={self.config_file}" if arg.startswith("--config-file=") else arg
                for arg in super().argv()]


def test_docker_pulls_a_hub_name_through_the_mirror(tmp_path: Path) -> None:
    """`docker pull NAME` asks the mirror for library/NAME, which fetches it from the upstream
    and stores it; after `rmi`, the same pull works with the upstream stopped."""
    archive = tmp_path / "image.tar"
    image_id = build_image_archive(archive, three_layers("mirror"), "e2e-local/mirror:built")
    certs = make_certs(tmp_path / "tls")
    with serving(basic_upstream(tmp_path / "upstream")) as upstream:
        mirror = cache(tmp_path / "mirror", upstream.url, prefix=None)
        debug_port = free_port()
        mirror.config["http"]["tls"] = {"certificate": str(certs.server_cert),
                                        "key": str(certs.server_key)}
        mirror.config["http"]["debug"] = {"addr": f"127.0.0.1:{debug_port}",
                                          "prometheus": {"enabled": True}}
        with serving(mirror), MirroredDockerd([mirror.url]) as dockerd:
            assert mirror.url.startswith("https://127.0.0.1:")
            docker = dockerd.client(tmp_path / "docker-config")
            info = json.loads(docker.run("info", "--format", "{{json .RegistryConfig}}").stdout)
            assert info["Mirrors"] == [mirror.url + "/"]

            source = f"127.0.0.1:{upstream.port}/library/mirrortest:latest"
            docker.run("load", "--input", str(archive))
            docker.run("tag", "e2e-local/mirror:built", source)
            docker.login(f"127.0.0.1:{upstream.port}", USER, PASSWORD)
            docker.run("push", source)
            docker.run("rmi", source, "e2e-local/mirror:built")

            docker.run("pull", "mirrortest")
            assert docker.image_id("mirrortest") == image_id
            repository = mirror.root / "docker/registry/v2/repositories/library/mirrortest"
            assert (repository / "_manifests/tags/latest/current/link").is_file()
            assert len(list((repository / "_layers/sha256").iterdir())) == 4  # config + 3
            samples = scrape(DebugPort(f"http://127.0.0.1:{debug_port}"))
            assert value(samples, "registry_proxy_requests_total", kind="manifest",
                         result="miss") == 1
            assert value(samples, "registry_proxy_requests_total", kind="blob",
                         result="miss") == 4

            docker.run("rmi", "mirrortest")
            upstream.stop()
            docker.run("pull", "mirrortest")
            assert docker.image_id("mirrortest") == image_id
            samples = scrape(DebugPort(f"http://127.0.0.1:{debug_port}"))
            assert value(samples, "registry_proxy_requests_total", kind="blob", result="hit") == 4
