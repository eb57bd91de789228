"""Check a registry's storage directly, through its driver: what a client could be served.

Used after crashes and disk-full runs, independently of the server (and of `fsck`): every blob's
bytes must hash to the digest in its path, and every link names the digest of its own folder.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from appliance.storage import paths
from appliance.storage.driver import PathNotFound, StorageDriver

_READ_SIZE = 1 << 20


@dataclass
class StorageReport:
    blobs: int = 0
    corrupt: list[str] = field(default_factory=list)  # blob data whose bytes do not match
    bad_links: list[str] = field(
        default_factory=list
    )  # a link whose content is not its folder's digest
    dangling: list[str] = field(default_factory=list)  # a manifest or tag link to a blob not stored
    # A repository's `_layers` link to a blob GC swept: Distribution's GC leaves these too, and
    # the blob answers 404 (its data is looked up), so they are counted, not faults.
    stale_layer_links: list[str] = field(default_factory=list)
    uploads: list[str] = field(default_factory=list)  # `_uploads/<id>` folders left behind


def _sha256_hex(driver: StorageDriver, path: str) -> str:
    digest = hashlib.sha256()
    with driver.reader(path) as reader:
        while chunk := reader.read(_READ_SIZE):
            digest.update(chunk)
    return digest.hexdigest()


def _walk(driver: StorageDriver, path: str) -> list:
    try:
        return list(driver.walk(path))
    except PathNotFound:
        return []


def check_storage(driver: StorageDriver) -> StorageReport:
    """Hash every blob; read every repository link; list leftover uploads."""
    report = StorageReport()
    stored: set[str] = set()
    for info in _walk(driver, paths.BLOBS):
        if info.is_dir or not info.path.endswith("/data"):
            continue
        report.blobs += 1
        algorithm, hexpart = info.path.split("/")[-4], info.path.split("/")[-2]
        stored.add(f"{algorithm}:{hexpart}")
        if algorithm != "sha256" or _sha256_hex(driver, info.path) != hexpart:
            report.corrupt.append(info.path)
    uploads: set[str] = set()
    for info in _walk(driver, paths.REPOSITORIES):
        if "/_uploads/" in info.path:  # from files: object stores list no folders
            head, _, rest = info.path.partition("/_uploads/")
            uploads.add(f"{head}/_uploads/{rest.split('/')[0]}")
        if info.is_dir or not info.path.endswith("/link"):
            continue
        target = driver.get_content(info.path).decode(errors="replace").strip()
        if "/tags/" in info.path and info.path.endswith("/current/link"):
            expected = target  # a tag's current link names any manifest
        else:
            expected = str(paths.link_target(info.path.rsplit("/", 1)[0]))
        if target != expected:
            report.bad_links.append(info.path)
        elif target not in stored:
            stale = "/_layers/" in info.path
            (report.stale_layer_links if stale else report.dangling).append(info.path)
    report.uploads = sorted(uploads)
    return report
