"""Integrity check (`fsck`, zot's scrub): every blob's bytes, every link, every manifest's needs.

It works through the storage driver alone, so filesystem, S3 and Swift stores are checked alike.
A check only reads. `repair` quarantines what is broken: it *moves* it to
`/appliance/quarantine/<time>/<original path>` (never deletes), so the registry answers 404 for
it instead of serving bad bytes or failing, and an operator can move it back.

Safe while the server serves:
- uploads in progress (`_uploads`) are never read or touched;
- blobs are only quarantined for bytes that do not match their digest, hashed again just
  before the move; a link is only called dangling after its target is looked up once more, so
  a blob pushed while the scan ran is never taken as missing;
- blobs a running garbage collection moved to its trash count as present (readers take them
  back); a repair holds the GC lock for its whole run, so GC and repair never move blobs at
  the same time.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field

from appliance.oci.digest import Digest, InvalidDigest
from appliance.storage import paths
from appliance.storage.driver import PathNotFound, StorageDriver

from .catalog import repositories_holding
from .gc import Progress
from .gclock import GCLock
from .inventory import ManifestReader, References

READ_CHUNK = 1 << 20

# Problem kinds.
CORRUPT_BLOB = "corrupt_blob"  # the bytes do not hash to the digest they are stored under
MALFORMED_LINK = "malformed_link"  # a link file that is not the digest its path names
DANGLING_LINK = "dangling_link"  # a link to a blob (or tag to a revision) that is not there
UNPARSABLE_MANIFEST = "unparsable_manifest"  # a revision whose blob is not a manifest
MISSING_REFERENCE = "missing_reference"  # config, layer or child a manifest needs is not there
MISSING_SUBJECT = "missing_subject"  # a referrer's subject is not there (allowed; not repaired)


@dataclass
class Problem:
    kind: str
    repository: str | None
    path: str
    digest: str | None
    detail: str
    action: str = ""  # with repair: "quarantined", or why it was left


@dataclass
class FsckResult:
    repair: bool
    started: float
    finished: float = 0.0
    blobs: int = 0
    bytes: int = 0
    manifests: int = 0
    links: int = 0
    stale_links: int = 0  # links to blobs a garbage collection removed: harmless, not problems
    repositories: int = 0
    problems: list[Problem] = field(default_factory=list)
    quarantine: str | None = None  # the folder this run moved things to, if any

    @property
    def clean(self) -> bool:
        return not self.problems

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class _Fix:
    """How to repair one problem: `broken()` asks again whether it still is; `targets()` lists
    the files or folders to move."""

    problem: Problem
    broken: Callable[[], bool]
    targets: Callable[[], list[str]]


@dataclass
class _Repository:
    """Scan results for one repository: digests whose layer / revision links are sound."""

    name: str
    layers: set[Digest] = field(default_factory=set)
    revisions: set[Digest] = field(default_factory=set)


class Fsck:
    """`max_manifest_bytes`: a revision's blob larger than this is not read as a manifest.
    `mirrored`: the pull-through cache's name prefix ("" for all names), None without a mirror;
    a cache fetches blobs on demand, so missing references there are not problems."""

    def __init__(
        self,
        driver: StorageDriver,
        max_manifest_bytes: int = 4 * 1024 * 1024,
        mirrored: str | None = None,
        clock: Callable[[], float] = time.time,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> None:
        self.driver = driver
        self.max_manifest_bytes = max_manifest_bytes or sys.maxsize  # 0: no limit
        self.mirrored = mirrored
        self.clock = clock
        self.progress = Progress()
        self._on_progress = on_progress
        self._lock: GCLock | None = None
        self._good: dict[Digest, int] = {}  # verified blobs and their sizes
        self._corrupt: set[Digest] = set()
        self._fixes: list[_Fix] = []

    def run(self, repair: bool = False) -> FsckResult:
        """Raises GCBusy when `repair` and a garbage collection runs; StorageError when the
        store fails."""
        result = FsckResult(repair, self.clock())
        self._good, self._corrupt, self._fixes = {}, set(), []
        if repair:
            self._lock = GCLock(self.driver, self.clock)
            self._lock.acquire()
        try:
            self._check_blobs(result)
            names = sorted(
                set(repositories_holding(self.driver, "_manifests"))
                | set(repositories_holding(self.driver, "_layers"))
            )
            reader = ManifestReader(self.driver)
            for number, name in enumerate(names):
                self._phase("repositories", number, len(names))
                self._check_repository(name, reader, result)
            result.repositories = len(names)
            if repair:
                self._repair(result)
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None
            result.finished = self.clock()
            self._phase("done", 0, 0)
        return result

    # -- blobs ---------------------------------------------------------------------------

    def _check_blobs(self, result: FsckResult) -> None:
        found = [
            info
            for info in self._walk(paths.BLOBS)
            if not info.is_dir and info.path.endswith("/data")
        ]
        for number, info in enumerate(found):
            self._phase("blobs", number, len(found))
            algorithm, _, hexpart = info.path.rsplit("/", 4)[-4:-1]
            try:
                digest = Digest.parse(f"{algorithm}:{hexpart}")
            except InvalidDigest as error:
                self._problem(
                    result,
                    CORRUPT_BLOB,
                    None,
                    info.path,
                    None,
                    f"not a blob path: {error}",
                    lambda: True,
                    lambda path=info.path: [path],
                )
                continue
            matches = self._hash_matches(digest)
            if matches is None:
                continue  # removed meanwhile (a garbage collection)
            result.blobs += 1
            result.bytes += info.size
            self.progress.bytes = result.bytes
            if matches:
                self._good[digest] = info.size
                continue
            self._corrupt.add(digest)
            self._problem(
                result,
                CORRUPT_BLOB,
                None,
                info.path,
                digest,
                "content does not match its digest",
                lambda d=digest: self._still_corrupt(d),
                lambda d=digest: [paths.blob_data(d)],
            )

    def _hash_matches(self, digest: Digest) -> bool | None:
        """Stream the blob through its hash; None when it is not there."""
        hasher = digest.hasher()
        try:
            with contextlib.closing(self.driver.reader(paths.blob_data(digest))) as f:
                while chunk := f.read(READ_CHUNK):
                    hasher.update(chunk)
                    self._heartbeat()
        except PathNotFound:
            return None
        return hasher.hexdigest() == digest.hex

    def _still_corrupt(self, digest: Digest) -> bool:
        """Hash again just before the move: a push may have stored the right bytes since."""
        if self._hash_matches(digest) is False:
            return True
        self._corrupt.discard(digest)  # and the links to it are sound again
        return False

    def _present(self, digest: Digest) -> bool:
        """Sound: verified, or stored (or in a GC's trash) since the blob scan."""
        if digest in self._corrupt:
            return False
        return digest in self._good or self._stored(digest)

    def _stored(self, digest: Digest) -> bool:
        return any(self._exists(path) for path in (paths.blob_data(digest), paths.trash(digest)))

    # -- repositories --------------------------------------------------------------------

    def _check_repository(self, name: str, reader: ManifestReader, result: FsckResult) -> None:
        repo = _Repository(name)
        layer_links = list(self._links(paths.layers(name), name, result))
        repo.layers = {digest for _, digest in layer_links if self._present(digest)}
        for link, digest in self._links(paths.revisions(name), name, result):
            self._check_target(result, repo, link, digest, repo.revisions)
        needed = self._check_manifests(repo, reader, result)
        for link, digest in layer_links:
            if digest not in repo.layers:
                self._check_target(result, repo, link, digest, repo.layers, digest not in needed)
        self._check_tags(repo, result)

    def _links(self, root: str, name: str, result: FsckResult) -> Iterator[tuple[str, Digest]]:
        """Every `<alg>/<hex>/link` below `root` that names its own digest; others are reported."""
        for info in self._walk(root):
            if info.is_dir or not info.path.endswith("/link"):
                continue
            result.links += 1
            digest, error = self._read_link(info.path, expected=True)
            if digest is None:
                self._malformed(result, name, info.path, error)
                continue
            yield info.path, digest

    def _read_link(self, link: str, expected: bool) -> tuple[Digest | None, str]:
        """The digest in a link file, or None and why not. `expected`: the path's
        `<alg>/<hex>` must name the same digest (all links but a tag's `current`)."""
        try:
            text = self.driver.get_content(link).decode()
            digest = Digest.parse(text)
        except PathNotFound:
            return None, "the link file is gone"
        except (UnicodeDecodeError, InvalidDigest) as error:
            return None, f"not a digest: {error}"
        if expected:
            try:
                named = Digest.parse(str(paths.link_target(link[: -len("/link")])))
            except (ValueError, InvalidDigest):
                return None, "the link's folder does not name a digest"
            if named != digest:
                return None, f"names {digest} but sits under {named}"
        return digest, ""

    def _malformed(self, result: FsckResult, name: str, link: str, error: str) -> None:
        def still() -> bool:
            return self._read_link(link, expected=not link.endswith("/current/link"))[0] is None

        if still():  # not a link being rewritten this instant
            self._problem(
                result,
                MALFORMED_LINK,
                name,
                link,
                None,
                error,
                still,
                lambda: [self._tag_dir(link) or link],
            )

    def _check_target(
        self,
        result: FsckResult,
        repo: _Repository,
        link: str,
        digest: Digest,
        sound: set[Digest],
        stale: bool = False,
    ) -> None:
        """`stale`: a link nothing needs (a layer no manifest names, a tag's history entry);
        its blob being gone is what garbage collection leaves, counted but no problem."""
        if self._present(digest):
            sound.add(digest)
            return
        if stale and digest not in self._corrupt:
            result.stale_links += 1
            return
        detail = "its blob is corrupt" if digest in self._corrupt else "its blob is missing"
        self._problem(
            result,
            DANGLING_LINK,
            repo.name,
            link,
            digest,
            detail,
            lambda: not self._present(digest) and self._exists(link),
            lambda: [link],
        )

    def _check_manifests(
        self, repo: _Repository, reader: ManifestReader, result: FsckResult
    ) -> set[Digest]:
        """Every sound revision must parse and have what it needs; an index whose child is
        broken is broken too, so the loop runs until nothing new is found. Returns the blobs
        the manifests name."""
        parsed: dict[Digest, References] = {}
        for digest in sorted(repo.revisions):
            size = self._good[digest] if digest in self._good else self._size(digest)
            refs = (
                reader.references(digest)
                if size is not None and size <= self.max_manifest_bytes
                else None
            )
            if size is None or (refs is None and size <= self.max_manifest_bytes):
                continue  # in a garbage collection's trash, or removed meanwhile
            result.manifests += 1
            if refs is None or not refs.readable:
                why = (
                    "the blob is not a manifest" if refs else "larger than the manifest size limit"
                )
                self._bad_manifest(result, repo, digest, UNPARSABLE_MANIFEST, why, lambda: True)
                continue
            parsed[digest] = refs
            if refs.subject is not None and not self._present(refs.subject):
                self._problem(
                    result,
                    MISSING_SUBJECT,
                    repo.name,
                    paths.revision_link(repo.name, digest),
                    digest,
                    f"subject {refs.subject} is not in the registry (the spec allows it)",
                    lambda: False,
                    lambda: [],
                )
        needed = {blob for refs in parsed.values() for blob in refs.blobs}
        if self._mirrored(repo.name):
            return needed
        changed = True
        while changed:
            changed = False
            for digest, refs in sorted(parsed.items()):
                missing = [d for d in refs.blobs if d not in repo.layers]
                missing += [d for d in refs.children if d not in parsed]
                if not missing:
                    continue
                del parsed[digest]
                changed = True
                self._bad_manifest(
                    result,
                    repo,
                    digest,
                    MISSING_REFERENCE,
                    "needs " + ", ".join(map(str, missing)) + ", not sound in the repository",
                    lambda refs=refs: self._lacks(repo.name, refs),
                )
        return needed

    def _lacks(self, name: str, refs: References) -> bool:
        """Whether a manifest still lacks a blob or child (asked again before repair)."""
        blobs = (
            self._read_link(paths.layer_link(name, d), expected=True)[0] == d and self._present(d)
            for d in refs.blobs
        )
        return not all(blobs) or not all(self._revision_now(name, d) for d in refs.children)

    def _bad_manifest(
        self,
        result: FsckResult,
        repo: _Repository,
        digest: Digest,
        kind: str,
        detail: str,
        broken: Callable[[], bool],
    ) -> None:
        """Repair takes the revision and the tags that name it: pulling it by digest or by
        tag then answers 404 instead of a manifest whose image cannot be pulled."""
        link = paths.revision_link(repo.name, digest)
        self._problem(
            result,
            kind,
            repo.name,
            link,
            digest,
            detail,
            broken,
            lambda: [link, *self._tags_naming(repo.name, digest)],
        )

    def _check_tags(self, repo: _Repository, result: FsckResult) -> None:
        for entry in self._list(paths.tags(repo.name)):
            tag = entry.rsplit("/", 1)[1]
            current = paths.tag_current_link(repo.name, tag)
            if not self._exists(current) and self._walk(entry):
                self._malformed(result, repo.name, current, "the tag has no current/link")
            for link, digest in self._links(f"{entry}/index", repo.name, result):
                self._check_target(result, repo, link, digest, set(), stale=True)
            if not self._exists(current):
                continue
            result.links += 1
            digest, error = self._read_link(current, expected=False)
            if digest is None:
                self._malformed(result, repo.name, current, error)
            elif digest not in repo.revisions and not self._revision_now(repo.name, digest):
                self._problem(
                    result,
                    DANGLING_LINK,
                    repo.name,
                    current,
                    digest,
                    f"tag {tag} names {digest}, which is not a revision of {repo.name}",
                    lambda current=current: self._dangles(repo.name, current),
                    lambda e=entry: [e],
                )

    def _dangles(self, name: str, current: str) -> bool:
        """Whether a tag still names no revision (re-read: a push may have moved it since)."""
        digest, _ = self._read_link(current, expected=False)
        return digest is not None and not self._revision_now(name, digest)

    def _revision_now(self, name: str, digest: Digest) -> bool:
        """A revision linked since the scan passed it, with its blob there."""
        return self._exists(paths.revision_link(name, digest)) and self._present(digest)

    def _mirrored(self, name: str) -> bool:
        return self.mirrored is not None and f"{name}/".startswith(self.mirrored)

    # -- repair --------------------------------------------------------------------------

    def _problem(
        self,
        result: FsckResult,
        kind: str,
        name: str | None,
        path: str,
        digest: Digest | None,
        detail: str,
        broken: Callable[[], bool],
        targets: Callable[[], list[str]],
    ) -> None:
        problem = Problem(kind, name, path, str(digest) if digest else None, detail)
        result.problems.append(problem)
        self._fixes.append(_Fix(problem, broken, targets))

    def _repair(self, result: FsckResult) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(result.started))
        for number, fix in enumerate(self._fixes):
            self._phase("repair", number, len(self._fixes))
            self._heartbeat()
            targets = fix.targets()
            if not targets:
                fix.problem.action = "left in place: nothing to move"
            elif not fix.broken():
                fix.problem.action = "left in place: sound again when repair came to it"
            else:
                moved = [t for t in targets if self._quarantine(stamp, t)]
                fix.problem.action = "quarantined" if moved else "left in place: gone meanwhile"
                if moved:
                    result.quarantine = paths.quarantined(stamp, "")

    def _quarantine(self, stamp: str, target: str) -> bool:
        """Move one file, or every file of a folder and then the emptied folder (a tag's
        folder would otherwise still be listed). False when nothing was there."""
        folder = not target.endswith(("/link", "/data"))
        files = self._files(target) if folder else [target]
        moved = False
        for path in files:
            try:
                self.driver.move(path, paths.quarantined(stamp, path))
                moved = True
            except PathNotFound:
                continue
        if folder and not self._files(target):  # nothing written into it meanwhile
            with contextlib.suppress(PathNotFound):
                self.driver.delete(target)
        return moved

    # -- helpers -------------------------------------------------------------------------

    def _tags_naming(self, name: str, digest: Digest) -> list[str]:
        found = []
        for entry in self._list(paths.tags(name)):
            current, _ = self._read_link(f"{entry}/current/link", expected=False)
            if current == digest:
                found.append(entry)
        return found

    @staticmethod
    def _tag_dir(link: str) -> str | None:
        """A tag's `current/link` is repaired by moving the whole tag (else tags/list shows it)."""
        return link[: -len("/current/link")] if link.endswith("/current/link") else None

    def _files(self, root: str) -> list[str]:
        return [info.path for info in self._walk(root) if not info.is_dir]

    def _size(self, digest: Digest) -> int | None:
        try:
            return self.driver.stat(paths.blob_data(digest)).size
        except PathNotFound:
            return None

    def _exists(self, path: str) -> bool:
        try:
            self.driver.stat(path)
        except PathNotFound:
            return False
        return True

    def _walk(self, root: str) -> list:
        try:
            return list(self.driver.walk(root))
        except PathNotFound:
            return []

    def _list(self, root: str) -> list[str]:
        try:
            return self.driver.list(root)
        except PathNotFound:
            return []

    def _heartbeat(self) -> None:
        if self._lock is not None:
            self._lock.heartbeat()

    def _phase(self, phase: str, done: int, total: int) -> None:
        self.progress.phase, self.progress.done, self.progress.total = phase, done, total
        self._heartbeat()
        if self._on_progress is not None:
            self._on_progress(self.progress)
