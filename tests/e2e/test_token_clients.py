"""docker login, push and pull through token auth: an external (test) token server, and the
built-in one with per-repository rules. The appliance serves TLS as in the other e2e tests."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.tls.tokenkey import init_token_key
from tests.server import ApplianceServer, base_config
from tests.tokens import ISSUER, SERVICE, RealmServer, TestSigner

from . import tools
from .test_clients import three_layers
from .tools import DockerClient, build_image_archive

pytestmark = pytest.mark.e2e


def _start(workdir: Path, tls_files: tools.CertSet, auth: dict[str, Any],
           appliance: dict[str, Any] | None = None, port: int | None = None) -> ApplianceServer:
    config = base_config(workdir, port)
    config["http"]["tls"] = {"certificate": str(tls_files.server_cert),
                             "key": str(tls_files.server_key)}
    config["auth"] = auth
    if appliance:
        config["appliance"] = appliance
    return ApplianceServer(workdir, config).start()


def _load(docker: DockerClient, tmp_path: Path, label: str) -> tuple[str, str]:
    """Build and `docker load` a 3-layer image; (local reference, image id)."""
    archive = tmp_path / f"{label}.tar"
    local = f"e2e-local/{label}:built"
    image_id = build_image_archive(archive, three_layers(label), local)
    docker.run("load", "--input", str(archive))
    return local, image_id


def _push_pull(docker: DockerClient, host_port: str, local: str, image_id: str,
               repository: str) -> None:
    remote = f"{host_port}/{repository}:v1"
    docker.run("tag", local, remote)
    push = docker.run("push", remote)
    assert re.search(r"v1: digest: sha256:[0-9a-f]{64}", push.stdout), push.stdout
    docker.run("rmi", remote)
    docker.run("pull", remote)
    assert docker.image_id(remote) == image_id
    docker.run("rmi", remote)


@pytest.mark.parametrize(("key", "kid"), [("rsa", "libtrust"), ("ec", "thumbprint"),
                                          ("rsa", "x5c")])
def test_docker_through_an_external_token_server(
    tmp_path: Path, tls_files: tools.CertSet, docker: DockerClient, key: str, kid: str
) -> None:
    """docker login, push and pull work with tokens from a separate token server (RSA or EC
    keys; kid in libtrust or thumbprint form, or an x5c chain); a wrong password fails."""
    signer = TestSigner()
    realm = RealmServer(signer, "tok-user", "tok-pw", kid=kid, key=key)
    with realm.running():
        server = _start(tmp_path / "reg", tls_files, {"token": {
            "realm": realm.realm, "service": SERVICE, "issuer": ISSUER,
            "rootcertbundle": str(signer.bundle(tmp_path / "bundle.pem"))}})
        try:
            host = f"127.0.0.1:{server.port}"
            bad = docker.login(host, "tok-user", "wrong", check=False)
            assert bad.returncode != 0, bad.stdout
            assert "Login Succeeded" in docker.login(host, "tok-user", "tok-pw").stdout
            local, image_id = _load(docker, tmp_path, f"token-{key}-{kid}")
            _push_pull(docker, host, local, image_id, f"tokens/{key}-{kid}")
            scopes = [s for r in realm.requests for s in r.get("scope", [])]
            wanted = {tuple(sorted(s.rpartition(":")[2].split(","))) for s in scopes
                      if s.startswith(f"repository:tokens/{key}-{kid}:")}
            assert ("pull", "push") in wanted, scopes
            assert all(r.get("service") == [SERVICE] for r in realm.requests)
            docker.run("rmi", local)
        finally:
            server.stop()


@pytest.fixture
def builtin(tmp_path: Path, tls_files: tools.CertSet) -> Iterator[ApplianceServer]:
    """The appliance with its own token server and rules: `reader` pulls team-a/*, `writer`
    pushes team-a/* and public/*, anyone pulls public/*."""
    users = tools.write_htpasswd(tmp_path / "htpasswd",
                                 {"reader": "reader-pw", "writer": "writer-pw"})
    init_token_key(tmp_path / "certs")
    port = tools.free_port()
    server = _start(
        tmp_path / "reg", tls_files,
        {"token": {"realm": f"https://127.0.0.1:{port}/auth/token", "service": "e2e-registry",
                   "issuer": "e2e-issuer"}},
        {"certs": {"dir": str(tmp_path / "certs")},
         "tokenserver": {"path": str(users)},
         "access": {"groups": {"readers": ["reader"]},
                    "rules": [
                        {"repositories": ["team-a/*"], "groups": ["readers"],
                         "actions": ["pull"]},
                        {"repositories": ["team-a/*", "public/*"], "users": ["writer"],
                         "actions": ["pull", "push"]}],
                    "anonymous": ["public/*"]}},
        port=port)
    try:
        yield server
    finally:
        server.stop()


def test_docker_with_the_builtin_token_server_and_rules(
    builtin: ApplianceServer, dockerd: tools.Dockerd, tmp_path: Path
) -> None:
    """writer pushes team-a/app and public/base; reader pulls team-a/app but may not push it;
    a client that never logged in pulls public/base but not team-a/app."""
    host = f"127.0.0.1:{builtin.port}"
    writer = dockerd.client(tmp_path / "writer")
    reader = dockerd.client(tmp_path / "reader")
    anonymous = dockerd.client(tmp_path / "anonymous")

    assert "Login Succeeded" in writer.login(host, "writer", "writer-pw").stdout
    config = json.loads((writer.config_dir / "config.json").read_text())
    assert host in config["auths"]
    local, image_id = _load(writer, tmp_path, "builtin-token")
    for repository in ("team-a/app", "public/base"):
        remote = f"{host}/{repository}:v1"
        writer.run("tag", local, remote)
        writer.run("push", remote)
        writer.run("rmi", remote)
    writer.run("rmi", local)

    assert "Login Succeeded" in reader.login(host, "reader", "reader-pw").stdout
    reader.run("pull", f"{host}/team-a/app:v1")
    assert reader.image_id(f"{host}/team-a/app:v1") == image_id
    reader.run("tag", f"{host}/team-a/app:v1", f"{host}/team-a/app:reader")
    refused = reader.run("push", f"{host}/team-a/app:reader", check=False)
    assert refused.returncode != 0
    assert "denied" in refused.stderr.lower() or "unauthorized" in refused.stderr.lower() or \
        "insufficient_scope" in refused.stderr.lower(), refused.stderr
    reader.run("rmi", f"{host}/team-a/app:v1", f"{host}/team-a/app:reader")

    anonymous.run("pull", f"{host}/public/base:v1")
    assert anonymous.image_id(f"{host}/public/base:v1") == image_id
    anonymous.run("rmi", f"{host}/public/base:v1")
    private = anonymous.run("pull", f"{host}/team-a/app:v1", check=False)
    assert private.returncode != 0
