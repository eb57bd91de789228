"""The built binary on its own: no Python source, a real dockerd pushing and pulling over TLS."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e import tools
from tests.e2e.tools import DockerClient, build_image_archive
from tests.server import base_config

from .harness import start_server

pytestmark = pytest.mark.e2e


def test_version_runs_without_python(frozen_binary: Path, tmp_path: Path) -> None:
    """With every Python installation hidden (empty mounts over them), the binary still runs."""
    hide = " ".join(f"mount -t tmpfs none {path};" for path in python_homes())
    done = tools.run(["unshare", "--mount", "sh", "-c", f'{hide} exec "$0" version', frozen_binary],
                     env={"PATH": "/usr/bin:/bin"})
    assert done.stdout.startswith("registry-appliance ")


def python_homes() -> list[str]:
    """Where this machine keeps Python: the interpreter prefixes and the system's lib dirs."""
    listing = "ls -d /usr/lib/python3* /usr/local/lib/python3* 2>/dev/null"
    found = subprocess.run(["sh", "-c", listing], capture_output=True, text=True).stdout.split()
    return sorted({*found, sys.base_prefix, str(Path(sys.executable).parent.parent)})


def test_binary_certs_serve_docker_push_pull_gc_version(
    frozen_binary: Path, docker: DockerClient, workdir: Path, tmp_path: Path
) -> None:
    """certs init, users add, serve (TLS + htpasswd), docker push and pull, gc --dry-run,
    SIGTERM and version all work from the one-file binary."""
    def run(*args: object, stdin: str | None = None) -> str:
        return tools.run([frozen_binary, *map(str, args)], stdin=stdin).stdout

    certs = workdir / "certs"
    assert "Valid until" in run("certs", "init", "--dir", certs, "--hostname", "localhost")
    htpasswd = workdir / "htpasswd"
    run("users", "add", "smoke", "--password-stdin", "--file", htpasswd, stdin="pw-smoke\n")
    config = base_config(workdir)
    config["http"]["tls"] = {"certificate": str(certs / "server.crt"),
                             "key": str(certs / "server.key")}
    config["auth"] = {"htpasswd": {"realm": "smoke", "path": str(htpasswd)}}
    config["appliance"] = {"admin": {"socket": str(workdir / "admin.sock")}}
    server = start_server((str(frozen_binary),), config, workdir / "server")
    try:
        server.ready()
        host_port = config["http"]["addr"]
        archive = tmp_path / "image.tar"
        layers = [{"etc/smoke.txt": b"frozen\n"}, {"opt/blob.bin": bytes(range(256)) * 512}]
        image_id = build_image_archive(archive, layers, "smoke/local:built")
        docker.run("load", "--input", str(archive))
        remote = f"{host_port}/smoke/app:v1"
        docker.run("tag", "smoke/local:built", remote)
        docker.login(host_port, "smoke", "pw-smoke")
        pushed = docker.run("push", remote).stdout
        assert re.search(r"v1: digest: sha256:[0-9a-f]{64}", pushed), pushed
        docker.run("rmi", remote, "smoke/local:built")
        docker.run("pull", remote)
        assert docker.image_id(remote) == image_id
        docker.run("rmi", remote)

        report = run("gc", "--dry-run", "-c", server.config_path)
        assert "dry run" in report, report
        assert "0 blobs, 0 manifests" in report, report
        server.process.send_signal(signal.SIGTERM)
        server.notify.wait_for("STOPPING=1", 10)
        assert server.process.wait(30) == 0
    finally:
        server.stop()
    assert run("version").startswith("registry-appliance ")
