"""Real clients (docker, skopeo, podman, buildah) against the registry under test.

The registry fixture serves HTTPS with a private CA and Basic auth; see conftest.py.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path

import pytest
import requests

from .registries import RunningRegistry
from .tools import ContainerTools, DockerClient, build_image_archive

pytestmark = pytest.mark.e2e

MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    ]
)


def three_layers(label: str) -> list[dict[str, bytes]]:
    """Three distinct layers whose content depends on label (so image IDs never collide)."""
    seed = hashlib.sha256(label.encode()).digest()
    return [
        {"etc/e2e/label.txt": f"{label}\n".encode()},
        {"usr/share/e2e/blob.bin": seed * 4096, "usr/share/e2e/empty": b""},
        {"opt/e2e/deep/nested/file.txt": b"third layer of " + label.encode() + b"\n"},
    ]


def skopeo_push_archive(
    ctools: ContainerTools, registry: RunningRegistry, archive: Path, repo: str, tag: str
) -> None:
    """Copy a docker-archive to registry repo:tag with verified TLS and credentials."""
    ctools.skopeo(
        "copy",
        "--dest-tls-verify=true",
        "--dest-cert-dir",
        str(ctools.cert_dir),
        "--dest-creds",
        registry.creds,
        f"docker-archive:{archive}",
        f"docker://{registry.ref(repo, tag)}",
    )


def skopeo_inspect(
    ctools: ContainerTools,
    registry: RunningRegistry,
    ref: str,
    *,
    raw: bool = False,
    global_flags: tuple[str, ...] = (),
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """``skopeo inspect [--raw] docker://ref`` with verified TLS and credentials."""
    return ctools.skopeo(
        *global_flags,
        "inspect",
        *(["--raw"] if raw else []),
        "--tls-verify=true",
        "--cert-dir",
        str(ctools.cert_dir),
        "--creds",
        registry.creds,
        f"docker://{ref}",
        check=check,
    )


def skopeo_list_tags(ctools: ContainerTools, registry: RunningRegistry, repo: str) -> list[str]:
    """The tags skopeo list-tags reports for repo."""
    out = ctools.skopeo(
        "list-tags",
        "--tls-verify=true",
        "--cert-dir",
        str(ctools.cert_dir),
        "--creds",
        registry.creds,
        f"docker://{registry.host_port}/{repo}",
    ).stdout
    return list(json.loads(out)["Tags"])


# ----------------------------------------------------------------------------- docker


def test_docker_login_refuses_wrong_password_and_accepts_right_one(
    registry: RunningRegistry, docker: DockerClient
) -> None:
    """docker login fails with a wrong password and succeeds (storing auth) with the right one."""
    bad = docker.login(registry.host_port, registry.user, "not-the-password", check=False)
    assert bad.returncode != 0, bad.stdout
    assert "unauthorized" in bad.stderr.lower() or "401" in bad.stderr, bad.stderr
    config = json.loads((docker.config_dir / "config.json").read_text())
    assert registry.host_port not in config.get("auths", {})

    ok = docker.login(registry.host_port, registry.user, registry.password)
    assert "Login Succeeded" in ok.stdout
    config = json.loads((docker.config_dir / "config.json").read_text())
    assert registry.host_port in config["auths"]


def test_docker_push_then_pull_keeps_the_image_id(
    registry: RunningRegistry, docker: DockerClient, tmp_path: Path
) -> None:
    """A 3-layer image pushed by docker, removed, and pulled back has the built image ID."""
    archive = tmp_path / "image.tar"
    local = "e2e-local/docker-roundtrip:built"
    image_id = build_image_archive(archive, three_layers("docker-roundtrip"), local)
    docker.run("load", "--input", str(archive))
    assert docker.image_id(local) == image_id

    remote = registry.ref("e2e/docker-roundtrip", "v1")
    docker.run("tag", local, remote)
    docker.login(registry.host_port, registry.user, registry.password)
    push = docker.run("push", remote)
    pushed = re.search(r"v1: digest: (sha256:[0-9a-f]{64}) size: \d+", push.stdout)
    assert pushed, push.stdout
    assert push.stdout.count("Pushed") == 3, push.stdout

    docker.run("rmi", remote, local)
    assert docker.run("image", "inspect", image_id, check=False).returncode != 0

    docker.run("pull", remote)
    assert docker.image_id(remote) == image_id
    repo_digests = json.loads(
        docker.run("image", "inspect", "--format", "{{json .RepoDigests}}", remote).stdout
    )
    assert f"{registry.host_port}/e2e/docker-roundtrip@{pushed.group(1)}" in repo_digests
    docker.run("rmi", remote)


def test_anonymous_pull_is_refused(
    registry: RunningRegistry, docker: DockerClient, ctools: ContainerTools, tmp_path: Path
) -> None:
    """With auth on, anonymous requests get 401 + a Basic challenge and docker pull fails."""
    archive = tmp_path / "image.tar"
    build_image_archive(archive, three_layers("anonymous"), "e2e/anonymous:v1")
    skopeo_push_archive(ctools, registry, archive, "e2e/anonymous", "v1")

    for path in ("/v2/", "/v2/e2e/anonymous/manifests/v1", "/v2/e2e/anonymous/tags/list"):
        r = requests.get(
            registry.url + path,
            headers={"Accept": MANIFEST_ACCEPT},
            verify=str(registry.ca_path),
            timeout=10,
        )
        assert r.status_code == 401, (path, r.status_code, r.text)
        assert r.headers.get("WWW-Authenticate", "").startswith("Basic realm="), r.headers

    r = requests.get(
        registry.url + "/v2/e2e/anonymous/manifests/v1",
        headers={"Accept": MANIFEST_ACCEPT},
        auth=(registry.user, registry.password),
        verify=str(registry.ca_path),
        timeout=10,
    )
    assert r.status_code == 200, r.text

    # dockerd gets the 401, then retries over plain HTTP on the TLS port: "connection reset".
    anonymous = docker.run("pull", registry.ref("e2e/anonymous", "v1"), check=False)
    assert anonymous.returncode != 0, anonymous.stdout

    # podman (empty auth file) reports the refusal itself.
    refused = ctools.podman(
        "pull",
        "--tls-verify=true",
        "--cert-dir",
        str(ctools.cert_dir),
        registry.ref("e2e/anonymous", "v1"),
        check=False,
    )
    assert refused.returncode != 0
    assert "unauthorized" in refused.stderr.lower(), refused.stderr


# ----------------------------------------------------------------------------- skopeo


def test_skopeo_copy_verifies_the_registry_certificate(
    registry: RunningRegistry, ctools: ContainerTools, tmp_path: Path
) -> None:
    """skopeo copy fails with an x509 error without the CA and succeeds with --dest-cert-dir."""
    archive = tmp_path / "image.tar"
    build_image_archive(archive, three_layers("tls"), "e2e/tls:v1")
    dest = f"docker://{registry.ref('e2e/tls', 'v1')}"

    untrusted = ctools.skopeo(
        "copy",
        "--dest-tls-verify=true",
        "--dest-creds",
        registry.creds,
        f"docker-archive:{archive}",
        dest,
        check=False,
    )
    assert untrusted.returncode != 0
    assert "x509" in untrusted.stderr, untrusted.stderr

    ctools.skopeo(
        "copy",
        "--dest-tls-verify=true",
        "--dest-cert-dir",
        str(ctools.cert_dir),
        "--dest-creds",
        registry.creds,
        f"docker-archive:{archive}",
        dest,
    )


def test_skopeo_inspect_list_tags_and_delete(
    registry: RunningRegistry, ctools: ContainerTools, tmp_path: Path
) -> None:
    """skopeo inspects a pushed image (config digest = image ID), lists tags, deletes by tag."""
    repo = "e2e/skopeo"
    ids = {}
    for tag in ("v1", "v2"):
        archive = tmp_path / f"{tag}.tar"
        ids[tag] = build_image_archive(archive, three_layers(f"skopeo-{tag}"), f"{repo}:{tag}")
        skopeo_push_archive(ctools, registry, archive, repo, tag)

    info = json.loads(skopeo_inspect(ctools, registry, registry.ref(repo, "v1")).stdout)
    manifest = json.loads(
        skopeo_inspect(ctools, registry, registry.ref(repo, "v1"), raw=True).stdout
    )
    assert manifest["config"]["digest"] == ids["v1"]
    assert len(manifest["layers"]) == 3
    assert (info["Architecture"], info["Os"]) == ("amd64", "linux")
    assert len(info["Layers"]) == 3
    v1_digest = info["Digest"]
    assert sorted(skopeo_list_tags(ctools, registry, repo)) == ["v1", "v2"]

    # skopeo resolves the tag to its digest and deletes the manifest (and so the tag).
    ctools.skopeo(
        "delete",
        "--tls-verify=true",
        "--cert-dir",
        str(ctools.cert_dir),
        "--creds",
        registry.creds,
        f"docker://{registry.ref(repo, 'v1')}",
    )
    assert skopeo_list_tags(ctools, registry, repo) == ["v2"]
    gone = skopeo_inspect(ctools, registry, registry.ref(repo, v1_digest), check=False)
    assert gone.returncode != 0
    assert "manifest unknown" in gone.stderr.lower(), gone.stderr
    still = json.loads(skopeo_inspect(ctools, registry, registry.ref(repo, "v2")).stdout)
    assert still["Digest"] != v1_digest


def test_skopeo_copies_an_oci_layout_to_the_registry(
    registry: RunningRegistry, ctools: ContainerTools, tmp_path: Path
) -> None:
    """An OCI layout copied to the registry keeps its manifest byte for byte (same digest)."""
    archive = tmp_path / "image.tar"
    build_image_archive(archive, three_layers("oci"), "e2e/oci:v1")
    layout = tmp_path / "layout"
    # docker-archive -> OCI layout rewrites the config (c/image re-serialises it for OCI).
    ctools.skopeo("copy", f"docker-archive:{archive}", f"oci:{layout}:v1")
    index = json.loads((layout / "index.json").read_text())
    (entry,) = index["manifests"]
    local_manifest = json.loads(
        (layout / "blobs" / "sha256" / entry["digest"].split(":", 1)[1]).read_bytes()
    )

    ctools.skopeo(
        "copy",
        "--dest-tls-verify=true",
        "--dest-cert-dir",
        str(ctools.cert_dir),
        "--dest-creds",
        registry.creds,
        f"oci:{layout}:v1",
        f"docker://{registry.ref('e2e/oci', 'v1')}",
    )
    info = json.loads(skopeo_inspect(ctools, registry, registry.ref("e2e/oci", "v1")).stdout)
    assert info["Digest"] == entry["digest"]
    manifest = json.loads(
        skopeo_inspect(ctools, registry, registry.ref("e2e/oci", "v1"), raw=True).stdout
    )
    assert manifest == local_manifest
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert len(manifest["layers"]) == 3


def test_pushed_data_uses_the_distribution_layout(
    registry: RunningRegistry, ctools: ContainerTools, tmp_path: Path
) -> None:
    """A pushed tag and its blobs sit in the registry root (or bucket) in Distribution's layout."""
    archive = tmp_path / "image.tar"
    image_id = build_image_archive(archive, three_layers("layout"), "e2e/layout:v1")
    skopeo_push_archive(ctools, registry, archive, "e2e/layout", "v1")
    digest = json.loads(skopeo_inspect(ctools, registry, registry.ref("e2e/layout", "v1")).stdout)[
        "Digest"
    ]

    repo = "docker/registry/v2/repositories/e2e/layout"
    assert registry.read_file(f"{repo}/_manifests/tags/v1/current/link").decode() == digest
    for blob in (digest, image_id):
        hexdigest = blob.split(":", 1)[1]
        data = registry.read_file(f"docker/registry/v2/blobs/sha256/{hexdigest[:2]}/{hexdigest}/data")
        assert hashlib.sha256(data).hexdigest() == hexdigest
    assert registry.read_file(f"{repo}/_layers/sha256/{image_id.split(':', 1)[1]}/link").decode() == image_id


# ----------------------------------------------------------------------------- podman


def test_podman_push_then_pull_with_verified_tls(
    registry: RunningRegistry, ctools: ContainerTools, tmp_path: Path
) -> None:
    """podman needs the CA, then logs in, pushes and pulls back; the image ID survives."""
    archive = tmp_path / "image.tar"
    image_id = build_image_archive(archive, three_layers("podman"), "e2e-local/podman:built")
    ctools.podman("load", "--input", str(archive))
    local = "localhost/e2e-local/podman:built"
    assert (
        ctools.podman("image", "inspect", "--format", "{{.Id}}", local).stdout.strip()
        == (image_id.split(":", 1)[1])
    )

    untrusted = ctools.podman(
        "login",
        "--tls-verify=true",
        "--username",
        registry.user,
        "--password-stdin",
        registry.host_port,
        stdin=registry.password,
        check=False,
    )
    assert untrusted.returncode != 0
    assert "x509" in untrusted.stderr, untrusted.stderr

    tls = ["--tls-verify=true", "--cert-dir", str(ctools.cert_dir)]
    ctools.podman(
        "login",
        *tls,
        "--username",
        registry.user,
        "--password-stdin",
        registry.host_port,
        stdin=registry.password,
    )
    assert registry.host_port in json.loads(ctools.auth_file.read_text())["auths"]

    remote = registry.ref("e2e/podman", "v1")
    ctools.podman("push", *tls, local, f"docker://{remote}")
    ctools.podman("rmi", local)
    assert ctools.podman("image", "exists", remote, check=False).returncode != 0

    ctools.podman("pull", *tls, remote)
    pulled = ctools.podman("image", "inspect", "--format", "{{.Id}}", remote).stdout.strip()
    assert pulled == image_id.split(":", 1)[1]


# ----------------------------------------------------------------------------- buildah


def test_buildah_manifest_list_resolves_per_platform(
    registry: RunningRegistry, ctools: ContainerTools, tmp_path: Path
) -> None:
    """A two-platform list pushed by buildah serves each platform its own manifest."""
    arches = ("amd64", "arm64")
    for arch in arches:
        payload = tmp_path / f"{arch}.txt"
        payload.write_text(f"built for linux/{arch}\n")
        container = ctools.buildah(
            "from", "--arch", arch, "--os", "linux", "--name", f"e2e-{arch}", "scratch"
        ).stdout.strip()
        ctools.buildah("copy", container, str(payload), f"/{arch}.txt")
        ctools.buildah("commit", "--quiet", container, f"localhost/e2e-multi:{arch}")
        ctools.buildah("rm", container)

    ctools.buildah("manifest", "create", "localhost/e2e-multi:list")
    for arch in arches:
        ctools.buildah(
            "manifest",
            "add",
            "localhost/e2e-multi:list",
            f"containers-storage:localhost/e2e-multi:{arch}",
        )
    remote = registry.ref("e2e/multi", "v1")
    ctools.buildah(
        "manifest",
        "push",
        "--all",
        "--tls-verify=true",
        "--cert-dir",
        str(ctools.cert_dir),
        "--creds",
        registry.creds,
        "localhost/e2e-multi:list",
        f"docker://{remote}",
    )

    raw_index = skopeo_inspect(ctools, registry, remote, raw=True).stdout.encode()
    index = json.loads(raw_index)
    assert index["mediaType"] in (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    )
    by_arch = {m["platform"]["architecture"]: m["digest"] for m in index["manifests"]}
    assert sorted(by_arch) == sorted(arches)
    assert len(set(by_arch.values())) == 2

    # skopeo inspect reports the digest of the list itself; copy one platform out to see which
    # manifest the registry serves for it.
    for arch in arches:
        platform = ("--override-arch", arch, "--override-os", "linux")
        info = json.loads(skopeo_inspect(ctools, registry, remote, global_flags=platform).stdout)
        assert info["Architecture"] == arch
        assert info["Digest"] == f"sha256:{hashlib.sha256(raw_index).hexdigest()}"
        layout = tmp_path / f"pulled-{arch}"
        ctools.skopeo(
            *platform,
            "copy",
            "--src-tls-verify=true",
            "--src-cert-dir",
            str(ctools.cert_dir),
            "--src-creds",
            registry.creds,
            f"docker://{remote}",
            f"oci:{layout}:{arch}",
        )
        (entry,) = json.loads((layout / "index.json").read_text())["manifests"]
        assert entry["digest"] == by_arch[arch]

    ctools.podman(
        "pull",
        "--arch",
        "arm64",
        "--tls-verify=true",
        "--cert-dir",
        str(ctools.cert_dir),
        "--creds",
        registry.creds,
        remote,
    )
    pulled = json.loads(ctools.podman("image", "inspect", remote).stdout)[0]
    assert pulled["Architecture"] == "arm64"
    # podman records both the list digest and the instance digest it resolved to.
    repo_digests = {d.rpartition("@")[2] for d in pulled["RepoDigests"]}
    assert by_arch["arm64"] in repo_digests
    assert by_arch["amd64"] not in repo_digests
