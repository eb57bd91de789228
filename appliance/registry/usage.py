"""Disk usage: what each repository costs, and the registry's totals.

A blob belongs to every repository whose manifests use it (the manifest itself, its config,
its layers). Deleting a repository frees only its `unique_bytes`; its `shared_bytes` stay as
long as another repository uses them, which is what an operator needs to know before deleting.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from appliance.oci.digest import Digest
from appliance.storage import paths
from appliance.storage.driver import PathNotFound, StorageDriver

from .catalog import Catalog
from .inventory import ManifestReader, links_under, tag_targets


@dataclass(frozen=True)
class RepositoryUsage:
    name: str
    tags: int
    manifests: int
    unique_bytes: int
    shared_bytes: int
    last_push: float | None


@dataclass(frozen=True)
class Totals:
    repositories: int
    tags: int
    manifests: int
    blobs: int
    bytes: int


@dataclass(frozen=True)
class _Scanned:
    name: str
    tags: int
    manifests: frozenset[Digest]
    blobs: frozenset[Digest]
    last_push: float | None


class Usage:
    """Blocking walks over the whole layout: run them in a thread."""

    def __init__(self, driver: StorageDriver) -> None:
        self.driver = driver

    def repositories(self) -> list[RepositoryUsage]:
        scanned = self._scan()
        users = Counter(digest for repository in scanned for digest in repository.blobs)
        sizes: dict[Digest, int] = {}
        found = []
        for repository in scanned:
            unique = shared = 0
            for digest in repository.blobs:
                if digest not in sizes:
                    sizes[digest] = self._size(digest)
                if users[digest] == 1:
                    unique += sizes[digest]
                else:
                    shared += sizes[digest]
            found.append(
                RepositoryUsage(
                    repository.name,
                    repository.tags,
                    len(repository.manifests),
                    unique,
                    shared,
                    repository.last_push,
                )
            )
        return found

    def totals(self) -> Totals:
        scanned = self._scan()
        stored = [
            info
            for info in self._walk(paths.BLOBS)
            if not info.is_dir and info.path.endswith("/data")
        ]
        return Totals(
            repositories=len(scanned),
            tags=sum(repository.tags for repository in scanned),
            manifests=len(set().union(*(repository.manifests for repository in scanned))),
            blobs=len(stored),
            bytes=sum(info.size for info in stored),
        )

    def _scan(self) -> list[_Scanned]:
        reader = ManifestReader(self.driver)
        scanned = []
        for name in Catalog(self.driver).repositories():
            revisions = list(links_under(self.driver, paths.revisions(name)))
            blobs = {link.digest for link in revisions}
            for link in revisions:
                refs = reader.references(link.digest)
                if refs is not None:
                    blobs.update(refs.blobs)
            tags = tag_targets(self.driver, name)
            times = [link.modified for link in revisions] + self._tag_times(name, tags)
            scanned.append(
                _Scanned(
                    name,
                    len(tags),
                    frozenset(link.digest for link in revisions),
                    frozenset(blobs),
                    max(times, default=None),
                )
            )
        return scanned

    def _tag_times(self, name: str, tags: dict[str, Digest]) -> list[float]:
        """Retagging an existing manifest writes only the tag link: it is a push too."""
        times = []
        for tag in tags:
            try:
                times.append(self.driver.stat(paths.tag_current_link(name, tag)).modified)
            except PathNotFound:
                continue
        return times

    def _size(self, digest: Digest) -> int:
        try:
            return self.driver.stat(paths.blob_data(digest)).size
        except PathNotFound:
            return 0

    def _walk(self, root: str) -> list:
        try:
            return list(self.driver.walk(root))
        except PathNotFound:
            return []
