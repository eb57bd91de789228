"""Mark and sweep garbage collection that is safe while pushes go on.

Distribution's GC needs a read-only or stopped registry. Ours runs online, in the server or as
a separate process on the same storage, by these rules:

1. Mark everything the manifests use (all revisions, or with `delete_untagged` only what tags
   reach: index children and referrers of kept manifests included).
2. Never sweep young things: blobs written, and blobs linked into a repository, within the
   grace period; manifests pushed within it are kept as if tagged.
3. Sweep in two steps. Doomed blobs are first *moved* to a trash folder; then every repository
   is scanned again and whatever a manifest now needs is moved back; only then is the trash
   emptied. A manifest push links its revision first and checks its blobs after (see
   `ManifestStore.put`), so each push is either seen by the rescan or sees the trash itself
   and takes back what it needs (or fails cleanly when it was already gone).
4. Readers take blobs back from the trash too, so a GC killed half-way leaves every image
   pullable; the next run first empties nothing and restores everything.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from appliance.oci.digest import Digest
from appliance.storage import paths
from appliance.storage.driver import PathNotFound, StorageDriver

from .blobs import BlobStore
from .catalog import Catalog, repositories_holding
from .gclock import GCLock
from .inventory import Link, ManifestReader, links_under, tag_targets

HISTORY_LENGTH = 20


class GCError(Exception):
    """GC stopped without sweeping; nothing was removed."""


@dataclass
class Progress:
    phase: str = "idle"
    done: int = 0
    total: int = 0
    bytes: int = 0


@dataclass
class GCResult:
    dry_run: bool
    delete_untagged: bool
    started: float
    finished: float = 0.0
    blobs: list[str] = field(default_factory=list)
    manifests: list[dict[str, str]] = field(default_factory=list)
    repositories: list[str] = field(default_factory=list)
    bytes_freed: int = 0
    restored: list[str] = field(default_factory=list)
    error: str | None = None

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class _Mark:
    blobs: set[Digest] = field(default_factory=set)
    revisions: dict[str, dict[Digest, Link]] = field(default_factory=dict)
    doomed: list[tuple[str, Digest]] = field(default_factory=list)
    recent_links: set[Digest] = field(default_factory=set)


class GarbageCollector:
    def __init__(
        self,
        driver: StorageDriver,
        blobs: BlobStore,
        grace: float = 3600.0,
        clock: Callable[[], float] = time.time,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> None:
        self.driver = driver
        self.blobs = blobs
        self.grace = grace
        self.clock = clock
        self.progress = Progress()
        self._on_progress = on_progress
        self._lock = GCLock(driver, clock)

    def run(self, dry_run: bool = False, delete_untagged: bool = False) -> GCResult:
        result = GCResult(dry_run, delete_untagged, self.clock())
        self._lock.acquire()
        try:
            result.restored = [str(d) for d in self._restore_trash()]
            reader = ManifestReader(self.driver)
            horizon = result.started - self.grace
            mark = self._mark(reader, delete_untagged, horizon)
            candidates = self._candidates(mark, horizon)
            result.manifests = [{"repository": n, "digest": str(d)} for n, d in mark.doomed]
            result.repositories = self._emptied_repositories(mark)
            if dry_run:
                result.blobs = [str(d) for d, _ in candidates]
                result.bytes_freed = sum(size for _, size in candidates)
            else:
                self._delete_manifests(mark, horizon)
                self._trash(candidates)
                self._rescan(reader, {d for d, _ in candidates})
                result.blobs, result.bytes_freed = self._empty_trash(candidates)
                result.repositories = self._remove_repositories(result.repositories, horizon)
        except GCError as error:
            result.error = str(error)
            raise
        finally:
            result.finished = self.clock()
            self._phase("done", 0, 0)
            self._save(result)
            self._lock.release()
        return result

    # -- phases --------------------------------------------------------------------------

    def _restore_trash(self) -> list[Digest]:
        """Undo a run that was killed between trashing and emptying."""
        restored = []
        for info in self._walk(paths.TRASH):
            if info.is_dir:
                continue
            algorithm, hexpart = info.path.rsplit("/", 2)[-2:]
            digest = Digest(algorithm, hexpart)
            if self.blobs.restore(digest):
                restored.append(digest)
        return restored

    def _mark(self, reader: ManifestReader, delete_untagged: bool, horizon: float) -> _Mark:
        mark = _Mark()
        names = Catalog(self.driver).repositories()
        for number, name in enumerate(names):
            self._phase("mark", number, len(names))
            self._lock.heartbeat()
            revisions = {link.digest: link for link in links_under(self.driver, paths.revisions(name))}
            mark.revisions[name] = revisions
            kept = set(revisions)
            if delete_untagged:
                kept = self._reachable(reader, revisions, tag_targets(self.driver, name), horizon)
                mark.doomed += [(name, d) for d in sorted(set(revisions) - kept)]
            for digest in kept:
                mark.blobs.add(digest)
                refs = reader.references(digest)
                if refs is None:
                    continue
                if not refs.readable:
                    raise GCError(f"manifest {digest} in {name} cannot be read; refusing to sweep")
                mark.blobs.update(refs.blobs)
                mark.blobs.update(refs.children)
            mark.recent_links.update(
                link.digest for link in links_under(self.driver, paths.layers(name)) if link.modified >= horizon
            )
        for name in set(repositories_holding(self.driver, "_layers")) - set(names):
            mark.recent_links.update(
                link.digest for link in links_under(self.driver, paths.layers(name)) if link.modified >= horizon
            )
        return mark

    def _reachable(self, reader: ManifestReader, revisions: dict[Digest, Link], tags: dict[str, Digest],
                   horizon: float) -> set[Digest]:
        """Tagged or young manifests, their children, and referrers of anything kept."""
        kept: set[Digest] = set()
        pending = [d for d in tags.values() if d in revisions]
        pending += [d for d, link in revisions.items() if link.modified >= horizon]
        subjects: dict[Digest, list[Digest]] = {}
        for digest in revisions:
            refs = reader.references(digest)
            if refs is not None and refs.subject is not None:
                subjects.setdefault(refs.subject, []).append(digest)
        while pending:
            digest = pending.pop()
            if digest in kept:
                continue
            kept.add(digest)
            refs = reader.references(digest)
            if refs is not None:
                pending += [c for c in refs.children if c in revisions]
            pending += subjects.get(digest, [])
        return kept

    def _candidates(self, mark: _Mark, horizon: float) -> list[tuple[Digest, int]]:
        found = []
        for info in self._walk(paths.BLOBS):
            if info.is_dir or not info.path.endswith("/data"):
                continue
            algorithm, _, hexpart = info.path.rsplit("/", 4)[-4:-1]
            digest = Digest(algorithm, hexpart)
            if digest in mark.blobs or digest in mark.recent_links or info.modified >= horizon:
                continue
            found.append((digest, info.size))
        return sorted(found)

    def _delete_manifests(self, mark: _Mark, horizon: float) -> None:
        for number, (name, digest) in enumerate(mark.doomed):
            self._phase("untagged", number, len(mark.doomed))
            link = paths.revision_link(name, digest)
            try:
                if self.driver.stat(link).modified >= horizon:
                    continue  # pushed again since the mark
                self.driver.delete(link.rsplit("/", 1)[0])
            except PathNotFound:
                continue

    def _trash(self, candidates: list[tuple[Digest, int]]) -> None:
        for number, (digest, _) in enumerate(candidates):
            self._phase("trash", number, len(candidates))
            self._lock.heartbeat()
            try:
                self.blobs.trash(digest)
            except PathNotFound:
                continue

    def _rescan(self, reader: ManifestReader, trashed: set[Digest]) -> None:
        """Take back whatever a manifest that exists *now* needs, and relink tagged revisions."""
        names = Catalog(self.driver).repositories()
        for number, name in enumerate(names):
            self._phase("rescan", number, len(names))
            self._lock.heartbeat()
            revisions = {link.digest for link in links_under(self.driver, paths.revisions(name))}
            for digest in tag_targets(self.driver, name).values():
                if digest not in revisions and self.blobs.exists_global(digest):
                    self.driver.put_content(paths.revision_link(name, digest), str(digest).encode())
                    revisions.add(digest)
            needed = set()
            pending = list(revisions)
            while pending:
                digest = pending.pop()
                if digest in needed:
                    continue
                needed.add(digest)
                if digest in trashed:
                    self.blobs.restore(digest)
                refs = reader.references(digest)
                if refs is not None:
                    needed.update(refs.blobs)
                    pending += refs.children
            for digest in needed & trashed:
                self.blobs.restore(digest)

    def _empty_trash(self, candidates: list[tuple[Digest, int]]) -> tuple[list[str], int]:
        removed, freed = [], 0
        for number, (digest, size) in enumerate(candidates):
            self._phase("sweep", number, len(candidates))
            try:
                self.driver.delete(paths.trash(digest))
            except PathNotFound:
                continue  # taken back by a push or a pull
            removed.append(str(digest))
            freed += size
            self.progress.bytes = freed
        return removed, freed

    def _emptied_repositories(self, mark: _Mark) -> list[str]:
        doomed: dict[str, int] = {}
        for name, _ in mark.doomed:
            doomed[name] = doomed.get(name, 0) + 1
        return sorted(name for name, revisions in mark.revisions.items() if len(revisions) == doomed.get(name, 0)
                      and not tag_targets(self.driver, name))

    def _remove_repositories(self, names: list[str], horizon: float) -> list[str]:
        """Drop `_manifests` of repositories with nothing left, unless something arrived meanwhile."""
        removed = []
        for name in names:
            manifests = paths.revisions(name).rsplit("/", 1)[0]
            young = [info for info in self._walk(manifests) if not info.is_dir and info.modified >= horizon]
            if young or any(True for _ in links_under(self.driver, paths.revisions(name))):
                continue
            try:
                self.driver.delete(manifests)
            except PathNotFound:
                continue
            removed.append(name)
        return removed

    # -- helpers -------------------------------------------------------------------------

    def _walk(self, root: str) -> list:
        try:
            return list(self.driver.walk(root))
        except PathNotFound:
            return []

    def _phase(self, phase: str, done: int, total: int) -> None:
        self.progress.phase, self.progress.done, self.progress.total = phase, done, total
        if self._on_progress is not None:
            self._on_progress(self.progress)

    def _save(self, result: GCResult) -> None:
        try:
            history = json.loads(self.driver.get_content(paths.GC_HISTORY))
        except (PathNotFound, ValueError):
            history = []
        history = [result.to_json(), *history][:HISTORY_LENGTH]
        self.driver.put_content(paths.GC_HISTORY, json.dumps(history).encode())


def history(driver: StorageDriver) -> list[dict]:
    try:
        return json.loads(driver.get_content(paths.GC_HISTORY))
    except (PathNotFound, ValueError):
        return []
