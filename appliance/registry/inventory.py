"""Read-only walks over the layout: what each repository holds, and what its manifests use.

Garbage collection, disk usage and the admin API all start from these walks.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from appliance.oci.digest import Digest, InvalidDigest
from appliance.oci.manifest import InvalidManifest, Manifest, parse, schema1_blobs
from appliance.storage import paths
from appliance.storage.driver import PathNotFound, StorageDriver


@dataclass(frozen=True)
class Link:
    digest: Digest
    modified: float


def links_under(driver: StorageDriver, root: str) -> Iterator[Link]:
    """Every `<alg>/<hex>/link` below `root` (revisions, layers), with the link's mtime."""
    try:
        entries = list(driver.walk(root))
    except PathNotFound:
        return
    for info in entries:
        if info.is_dir or not info.path.endswith("/link"):
            continue
        try:
            yield Link(paths.link_target(info.path[: -len("/link")]), info.modified)
        except (ValueError, InvalidDigest):
            continue


def tag_targets(driver: StorageDriver, name: str) -> dict[str, Digest]:
    """Tag -> the digest its `current/link` names; unreadable tags are skipped."""
    try:
        entries = driver.list(paths.tags(name))
    except PathNotFound:
        return {}
    targets = {}
    for entry in entries:
        tag = entry.rsplit("/", 1)[1]
        try:
            targets[tag] = Digest.parse(driver.get_content(paths.tag_current_link(name, tag)).decode())
        except (PathNotFound, InvalidDigest, UnicodeDecodeError):
            continue
    return targets


@dataclass(frozen=True)
class References:
    """What one manifest needs: its blobs (config, layers), child manifests, and subject."""

    blobs: tuple[Digest, ...]
    children: tuple[Digest, ...]
    subject: Digest | None
    size: int
    manifest: Manifest | None
    readable: bool = True


class ManifestReader:
    """Parses each manifest blob once, however many repositories link it."""

    def __init__(self, driver: StorageDriver) -> None:
        self.driver = driver
        self._cache: dict[Digest, References | None] = {}

    def references(self, digest: Digest) -> References | None:
        """None when the manifest's blob is missing; unparsable manifests reference nothing."""
        if digest not in self._cache:
            self._cache[digest] = self._read(digest)
        return self._cache[digest]

    def _read(self, digest: Digest) -> References | None:
        try:
            body = self.driver.get_content(paths.blob_data(digest))
        except PathNotFound:
            return None
        try:
            manifest = parse(body, None)
        except InvalidManifest:
            old_layers = schema1_blobs(body)
            if old_layers is None:
                return References((), (), None, len(body), None, readable=False)
            return References(old_layers, (), None, len(body), None)
        return References(
            tuple(d.digest for d in manifest.required_blobs()),
            tuple(d.digest for d in manifest.children),
            manifest.subject.digest if manifest.subject else None,
            len(body),
            manifest,
        )
