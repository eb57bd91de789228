"""Storage on a small filesystem that fills up: pushes past the space get a clear 5xx in the
spec's error format, nothing half-written becomes visible, reads go on, and once space is freed
pushes work again.

The filesystem is a loop-mounted ext4 image (closest to a real disk), else a tmpfs; both need
root. The server's upload spool (`<root>/appliance/spool`) lives on it too, so bodies that fail
to spool are covered as well as the storage writes behind them.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from appliance.storage.filesystem import SPOOL, FilesystemDriver
from tests.api.client import (
    API_VERSION,
    DOCKER_MANIFEST,
    V2Client,
    check_response,
    digest_of,
    image_manifest,
)
from tests.server import ApplianceServer, base_config

from .integrity import check_storage

pytestmark = pytest.mark.e2e

DISK_MIB = 32
BLOB = 1 << 20  # big enough to be spooled on disk, not in memory
HEADROOM = 6 << 20  # left free by a filler file before the pushes that fill the disk


def _mount(commands: list[list[str]]) -> bool:
    return all(subprocess.run(c, capture_output=True).returncode == 0 for c in commands)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A `DISK_MIB` filesystem mounted at a folder: ext4 on a loop device, else (or with
    DISK_FULL_FS=tmpfs) a tmpfs."""
    mountpoint, image = tmp_path / "disk", tmp_path / "disk.img"
    mountpoint.mkdir()
    if os.environ.get("DISK_FULL_FS") != "tmpfs" and _mount(
        [
            ["truncate", "-s", f"{DISK_MIB}M", str(image)],
            ["mkfs.ext4", "-q", "-F", "-m", "0", str(image)],
            ["mount", "-o", "loop", str(image), str(mountpoint)],
        ]
    ):
        kind = "ext4 (loop)"
    elif _mount([["mount", "-t", "tmpfs", "-o", f"size={DISK_MIB}m", "tmpfs", str(mountpoint)]]):
        kind = "tmpfs"
    else:
        pytest.fail("cannot mount a small filesystem (ext4 on a loop device or tmpfs): run as root")
    try:
        yield mountpoint, kind
    finally:
        if subprocess.run(["umount", str(mountpoint)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True)
        image.unlink(missing_ok=True)


def _fill(directory: Path, leave: int = 0) -> int:
    """Write filler files until the filesystem has only `leave` bytes free (0: until it refuses
    one more byte); return bytes written."""
    directory.mkdir(exist_ok=True)
    written = 0
    for size in (1 << 20, 4096, 1):
        while not leave or _free(directory) > leave + size:
            try:
                with open(directory / f"filler-{written}", "wb") as f:
                    f.write(os.urandom(size))
                    f.flush()
                    os.fsync(f.fileno())
            except OSError as error:
                assert error.errno == errno.ENOSPC, error
                with contextlib.suppress(FileNotFoundError):
                    (directory / f"filler-{written}").unlink()
                break
            written += size
    return written


def _free(directory: Path) -> int:
    st = os.statvfs(directory)
    return st.f_bavail * st.f_frsize


def _refused(response: requests.Response) -> str:
    """A storage-full answer: a 5xx with the spec's error envelope (not a dropped connection)."""
    assert response.status_code >= 500, (response.status_code, response.text)
    assert response.headers.get("Docker-Distribution-Api-Version") == "registry/2.0"
    assert b"Traceback" not in response.content
    errors = response.json()["errors"]
    assert errors and {"code", "message"} <= set(errors[0]), errors
    return f"{response.status_code} {errors[0]['code']}: {errors[0]['message']}"


class RawClient:
    """Requests whose 5xx answers are what this test wants to see (V2Client refuses them)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()

    def request(self, method: str, path: str, **kwargs: object) -> requests.Response:
        target = path if path.startswith("http") else self.url + path
        response = self.session.request(method, target, timeout=60, **kwargs)  # type: ignore[arg-type]
        if response.status_code < 500:
            check_response(response.status_code, response.headers, response.content, API_VERSION)
        return response


def _push_until_full(raw: RawClient, name: str) -> tuple[list[str], str]:
    """Push 1 MiB blobs until one is refused; the digests stored, and the refusal."""
    stored = []
    for _ in range(DISK_MIB):
        blob = os.urandom(BLOB)
        answer = raw.request(
            "POST", f"/v2/{name}/blobs/uploads/", params={"digest": digest_of(blob)}, data=blob
        )
        if answer.status_code != 201:
            return stored, _refused(answer)
        stored.append(digest_of(blob))
    raise AssertionError(f"{DISK_MIB} MiB pushed into {HEADROOM >> 20} MiB of free space")


def test_pushes_fail_cleanly_when_the_disk_is_full_and_work_again_after(
    tmp_path: Path, small_disk: tuple[Path, str]
) -> None:
    """ENOSPC anywhere in a push is a 5xx error envelope; no half-written blob, link or tag
    becomes visible; reads go on; after space is freed the same pushes succeed."""
    disk, kind = small_disk
    config = base_config(tmp_path)
    config["storage"]["filesystem"]["rootdirectory"] = str(disk / "registry")
    server = ApplianceServer(tmp_path / "server", config, args=["--workers", "1"]).start()
    client, raw = V2Client(server.url), RawClient(server.url)
    base = client.push_image("keep/base", "1", [os.urandom(200_000), os.urandom(2_000)])
    catalog_before = client.request("GET", "/v2/_catalog").json()

    _fill(disk / "filler-headroom", leave=HEADROOM)
    stored, first_refusal = _push_until_full(raw, "keep/fill")
    pending = raw.request("POST", "/v2/full/new/blobs/uploads/")  # started while it still fits
    assert pending.status_code == 202, pending.text
    filler = _fill(disk / "filler-rest")
    config_blob, layer = os.urandom(100), os.urandom(BLOB)
    manifest = image_manifest(config_blob, [layer])
    refusals = {
        "monolithic blob (spooled)": _refused(
            raw.request(
                "POST",
                "/v2/full/new/blobs/uploads/",
                params={"digest": digest_of(layer)},
                data=layer,
            )
        ),
        "small blob (in memory)": _refused(
            raw.request(
                "POST",
                "/v2/full/new/blobs/uploads/",
                params={"digest": digest_of(config_blob)},
                data=config_blob,
            )
        ),
        "tag on an existing manifest": _refused(
            raw.request(
                "PUT",
                "/v2/keep/base/manifests/2",
                data=base.manifest,
                headers={"Content-Type": DOCKER_MANIFEST},
            )
        ),
        "chunk (PATCH)": _refused(
            raw.request(
                "PATCH",
                pending.headers["Location"],
                data=layer,
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"0-{len(layer) - 1}",
                },
            )
        ),
        "upload start (POST)": _refused(raw.request("POST", "/v2/full/new/blobs/uploads/")),
    }

    # Reads go on, and nothing a refused push touched is visible.
    assert client.request("GET", "/v2/_catalog").json() == catalog_before
    assert client.request("GET", "/v2/keep/base/tags/list").json()["tags"] == ["1"]
    for digest in (digest_of(layer), digest_of(config_blob)):
        assert client.request("HEAD", f"/v2/full/new/blobs/{digest}").status_code == 404
    pulled = client.request("GET", "/v2/keep/base/manifests/1", headers={"Accept": DOCKER_MANIFEST})
    assert pulled.status_code == 200 and pulled.content == base.manifest
    for blob in (base.config, *base.layers):
        got = client.request("GET", f"/v2/keep/base/blobs/{digest_of(blob)}")
        assert got.status_code == 200 and got.content == blob
    for digest in stored:
        assert client.request("HEAD", f"/v2/keep/fill/blobs/{digest}").status_code == 200
    report = check_storage(FilesystemDriver(str(disk / "registry")))
    assert report.corrupt == [] and report.bad_links == [] and report.dangling == [], report
    spool = disk / "registry" / SPOOL.lstrip("/")
    leftovers = list(spool.iterdir()) if spool.exists() else []
    assert leftovers == [], leftovers

    # Space freed: the same pushes now work, and pull back whole.
    for path in [*(disk / "filler-headroom").iterdir(), *(disk / "filler-rest").iterdir()]:
        path.unlink()
    client.push_blob("full/new", config_blob)
    client.push_blob("full/new", layer)
    assert client.put_manifest("full/new", "1", manifest, DOCKER_MANIFEST).status_code == 201
    assert client.put_manifest("keep/base", "2", base.manifest, DOCKER_MANIFEST).status_code == 201
    assert client.request("GET", f"/v2/full/new/blobs/{digest_of(layer)}").content == layer
    server.stop()
    assert "Traceback" not in server.log()
    print(
        f"\ndisk full ({kind}, {DISK_MIB} MiB): {len(stored)} x 1 MiB blobs stored before the "
        f"first refusal ({first_refusal}); then filled to the last byte ({filler} more bytes); "
        f"refused when full: {json.dumps(refusals, indent=1)}; blobs checked {report.blobs}, "
        f"corrupt {len(report.corrupt)}; uploads left {len(report.uploads)}; "
        f"spool files left {len(leftovers)}; pushes after freeing space: ok"
    )
