"""fsck tests: real content pushed through a real server, then broken on disk, then checked.

`populate` pushes the kinds of content a registry holds (images, an index, a referrer, a
foreign layer, an upload in progress); `run_fsck` runs the CLI on the server's config.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.admin.conftest import image_config, push_index
from tests.api.client import OCI_MANIFEST, PushedImage, V2Client, image_manifest
from tests.server import EXECUTABLE, ApplianceServer

FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"


@dataclass
class Content:
    image: PushedImage
    index: PushedImage
    referrer: str
    foreign: str
    upload: str  # the Location of an upload in progress


def populate(v2: V2Client, name: str = "clean/app") -> Content:
    """An image, a two-platform index, a referrer of the image, an image with a foreign
    layer (its blob lives elsewhere) and a chunked upload left half done, all in `name`."""
    image = v2.push_image(name, "v1", [os.urandom(3000), os.urandom(2000)], config=image_config())
    index, _ = push_index(
        v2, name, "multi", [{"os": "linux", "architecture": a} for a in ("amd64", "arm64")]
    )
    empty = b"{}"
    v2.push_blob(name, empty)
    signature = image_manifest(
        empty,
        [],
        OCI_MANIFEST,
        artifactType="application/example.sig",
        subject=image.descriptor(),
    )
    referrer = v2.put_manifest(name, "sig", signature, OCI_MANIFEST)
    assert referrer.status_code == 201, referrer.text
    config = image_config()
    v2.push_blob(name, config)
    foreign = json.loads(image_manifest(config, [], OCI_MANIFEST))
    foreign["layers"] = [
        {
            "mediaType": FOREIGN_LAYER,
            "size": 1234,
            "urls": ["https://example.com/l"],
            "digest": "sha256:" + "ab" * 32,
        }
    ]
    pushed = v2.put_manifest(name, "foreign", json.dumps(foreign).encode(), OCI_MANIFEST)
    assert pushed.status_code == 201, pushed.text
    location = v2.start_upload(name).headers["Location"]
    chunk = v2.request(
        "PATCH",
        location,
        data=os.urandom(4096),
        headers={"Content-Type": "application/octet-stream"},
    )
    assert chunk.status_code == 202, chunk.text
    return Content(
        image,
        index,
        referrer.headers["Docker-Content-Digest"],
        pushed.headers["Docker-Content-Digest"],
        chunk.headers["Location"],
    )


def run_fsck(server: ApplianceServer, *args: str) -> tuple[int, Any]:
    """`registry-appliance fsck CONFIG --json ARGS`: exit status and the parsed result (or
    stderr when it printed none)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    done = subprocess.run(
        [*EXECUTABLE, "fsck", str(server.workdir / "config.yml"), "--json", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout) if done.stdout else done.stderr


def found(result: dict[str, Any]) -> set[tuple[str, str | None, str | None]]:
    """The problems as (kind, repository, digest)."""
    return {(p["kind"], p["repository"], p["digest"]) for p in result["problems"]}


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under `root` with its size and mtime: to show nothing was written."""
    seen = {}
    for directory, dirs, files in os.walk(root):
        for entry in (*dirs, *files):
            path = os.path.join(directory, entry)
            info = os.stat(path)
            seen[os.path.relpath(path, root)] = (info.st_size, info.st_mtime_ns)
    return seen


def blob_path(root: Path, digest: str) -> Path:
    algorithm, hexpart = digest.split(":")
    return root / "docker/registry/v2/blobs" / algorithm / hexpart[:2] / hexpart / "data"


def repository_path(root: Path, name: str) -> Path:
    return root / "docker/registry/v2/repositories" / name
