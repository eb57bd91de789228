"""Blob uploads: start, append, finish, cancel, with the running digest kept in memory.

Upload state lives in storage (`_uploads/<id>/`), so another worker or instance can continue an
upload; the running hash does not, so whoever finishes an upload without it re-reads the bytes
(as Distribution does when its saved hash state is missing).

Two layouts, chosen by the driver's `appends`:
- a filesystem appends every chunk to `_uploads/<id>/data` (Distribution's file), which
  `finish` renames into the blob store;
- object stores cannot append, so each chunk is an object of its own,
  `_uploads/<id>/chunks/<start offset>`; the upload's size is what the chunks add up to, and
  `finish` moves a lone chunk into place or has the driver `concatenate` several. A blob sent
  whole in one request is checked against its digest first and stored straight in place.
"""

from __future__ import annotations

import hashlib
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Protocol

from appliance.oci.digest import Digest
from appliance.storage import paths
from appliance.storage.driver import PathNotFound, StorageDriver

from .blobs import BlobInfo, BlobStore
from .errors import RegistryError
from .uploadlimits import UploadLimits

_UPLOAD_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}\Z")
_READ_SIZE = 1 << 20
_MAX_HASH_STATES = 4096


class Body(Protocol):
    """A request body already received (spooled), with its sha256 computed on arrival."""

    size: int
    sha256: hashlib._Hash
    local_path: str | None

    def chunks(self) -> Iterator[bytes]: ...


class RangeMismatch(RegistryError):
    """A chunk does not start where the upload ends (a gap or an overlap)."""

    def __init__(self, expected: int, got: int) -> None:
        super().__init__(
            "BLOB_UPLOAD_INVALID",
            f"chunk starts at byte {got} but the upload holds {expected} bytes",
            {"expected": expected, "got": got},
        )
        self.expected = expected


def _unknown_upload() -> RegistryError:
    return RegistryError("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry")


def check_upload_id(upload_id: str) -> str:
    if not _UPLOAD_ID.match(upload_id):
        raise _unknown_upload()
    return upload_id


class Uploads:
    def __init__(self, driver: StorageDriver, blobs: BlobStore,
                 limits: UploadLimits | None = None) -> None:
        """`limits`: caps on open sessions, checked when one starts."""
        self.driver = driver
        self.blobs = blobs
        self.limits = limits
        self._hashes: OrderedDict[str, tuple[int, hashlib._Hash]] = OrderedDict()
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def _lock(self, upload_id: str) -> threading.Lock:
        """Serialise work on one upload in this process: two PATCHes at the same offset must not
        both append. (Across instances, clients send one request per upload at a time.)"""
        with self._locks_guard:
            if len(self._locks) > _MAX_HASH_STATES:
                self._locks = {k: v for k, v in self._locks.items() if v.locked()}
            return self._locks.setdefault(upload_id, threading.Lock())

    def start(self, name: str) -> str:
        upload_id = str(uuid.uuid4())
        if self.limits is not None:
            self.limits.check(name, upload_id)
        started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        if self.driver.appends:
            self.driver.put_content(paths.upload_data(name, upload_id), b"")
        self.driver.put_content(paths.upload_started_at(name, upload_id), started.encode())
        self._remember(upload_id, 0, hashlib.sha256())
        return upload_id

    def size(self, name: str, upload_id: str) -> int:
        check_upload_id(upload_id)
        if not self.driver.appends:
            return self._chunks(name, upload_id)[1]
        try:
            return self.driver.stat(paths.upload_data(name, upload_id)).size
        except PathNotFound:
            raise _unknown_upload() from None

    def _chunks(self, name: str, upload_id: str) -> tuple[list[str], int]:
        """An object store upload's chunks in byte order, and the size they add up to.

        One listing answers both, and whether the upload exists (its `startedat` is there).
        Chunks after a gap were never acknowledged to the client and are ignored.
        """
        try:
            entries = [info for info in self.driver.walk(paths.upload_dir(name, upload_id)) if not info.is_dir]
        except PathNotFound:
            raise _unknown_upload() from None
        prefix = paths.upload_chunks(name, upload_id) + "/"
        found = []
        for info in entries:
            offset = info.path[len(prefix):]
            if info.path.startswith(prefix) and offset.isdigit():
                found.append((int(offset), info.path, info.size))
        chunks, end = [], 0
        for start, path, size in sorted(found):
            if start != end:
                break
            chunks.append(path)
            end += size
        return chunks, end

    def append(self, name: str, upload_id: str, body: Body, start: int | None = None) -> int:
        """Add `body` at the end of the upload; `start`, when given, must be that end."""
        with self._lock(upload_id):
            return self._append(name, upload_id, body, start)

    def _append(self, name: str, upload_id: str, body: Body, start: int | None) -> int:
        if not self.driver.appends:
            return self._append_chunk(name, upload_id, body, start)
        current = self.size(name, upload_id)
        if start is not None and start != current:
            raise RangeMismatch(current, start)
        if body.size == 0:
            return current
        running = self._hash_at(upload_id, current)
        data_path = paths.upload_data(name, upload_id)
        if current == 0 and body.local_path is not None:
            self.driver.put_file(data_path, body.local_path)
            running = body.sha256.copy()
        else:
            writer = self.driver.writer(data_path, append=True)
            try:
                for chunk in body.chunks():
                    writer.write(chunk)
                    if running is not None:
                        running.update(chunk)
                writer.commit()
            except BaseException:
                writer.close()
                self._hashes.pop(upload_id, None)
                raise
        end = current + body.size
        if running is not None:
            self._remember(upload_id, end, running)
        return end

    def _append_chunk(self, name: str, upload_id: str, body: Body, start: int | None) -> int:
        """Store `body` as the next chunk object; the running hash moves on once it is stored."""
        current = self._chunks(name, upload_id)[1]
        if start is not None and start != current:
            raise RangeMismatch(current, start)
        if body.size == 0:
            return current
        running = self._hash_at(upload_id, current)
        if current == 0:
            running = body.sha256.copy()
        elif running is not None:
            running = running.copy()
            for chunk in body.chunks():
                running.update(chunk)
        try:
            self._store(paths.upload_chunk(name, upload_id, current), body)
        except BaseException:
            self._hashes.pop(upload_id, None)
            raise
        end = current + body.size
        if running is not None:
            self._remember(upload_id, end, running)
        return end

    def _store(self, path: str, body: Body) -> None:
        """Write a whole body as one file: hand over the spooled file, or stream it."""
        if body.local_path is not None:
            self.driver.put_file(path, body.local_path)
            return
        writer = self.driver.writer(path)
        try:
            for chunk in body.chunks():
                writer.write(chunk)
            writer.commit()
        finally:
            writer.close()

    def finish(self, name: str, upload_id: str, digest: Digest, body: Body | None,
               start: int | None = None) -> BlobInfo:
        """Append a last chunk (if any), verify the digest, move the data into the blob store
        and link it into `name`."""
        with self._lock(upload_id):
            return self._finish(name, upload_id, digest, body, start)

    def _finish(self, name: str, upload_id: str, digest: Digest, body: Body | None,
                start: int | None) -> BlobInfo:
        if not self.driver.appends:
            return self._finish_chunks(name, upload_id, digest, body, start)
        if body is not None:
            self._append(name, upload_id, body, start)
        size = self.size(name, upload_id)
        actual = self._digest_of(upload_id, size, digest.algorithm, [paths.upload_data(name, upload_id)])
        self._check_digest(name, upload_id, digest, actual)
        data_path = paths.upload_data(name, upload_id)
        if self.blobs.exists_global(digest):
            self.driver.delete(paths.upload_dir(name, upload_id))
        else:
            self.driver.move(data_path, paths.blob_data(digest))
            self.driver.delete(paths.upload_dir(name, upload_id))
        self.blobs.link(name, digest)
        self._forget(upload_id)
        return BlobInfo(digest, size)

    def _finish_chunks(self, name: str, upload_id: str, digest: Digest, body: Body | None,
                       start: int | None) -> BlobInfo:
        chunks, size = self._chunks(name, upload_id)
        if body is not None and body.size:
            if start is not None and start != size:
                raise RangeMismatch(size, start)
            if not chunks and digest.algorithm == "sha256":
                return self._finish_whole(name, upload_id, digest, body)
            self._append_chunk(name, upload_id, body, size)
            chunks, size = self._chunks(name, upload_id)
        actual = self._digest_of(upload_id, size, digest.algorithm, chunks)
        self._check_digest(name, upload_id, digest, actual)
        if not self.blobs.exists_global(digest):
            target = paths.blob_data(digest)
            if not chunks:
                self.driver.put_content(target, b"")
            elif len(chunks) == 1:
                self.driver.move(chunks[0], target)
            else:
                self.driver.concatenate(chunks, target)
        return self._done(name, upload_id, digest, size)

    def _finish_whole(self, name: str, upload_id: str, digest: Digest, body: Body) -> BlobInfo:
        """The whole blob came in one request, hashed on arrival: check it, then write it once,
        straight to its place (no chunk object to copy afterwards)."""
        self._check_digest(name, upload_id, digest, Digest("sha256", body.sha256.hexdigest()))
        if not self.blobs.exists_global(digest):
            self._store(paths.blob_data(digest), body)
        return self._done(name, upload_id, digest, body.size)

    def _check_digest(self, name: str, upload_id: str, digest: Digest, actual: Digest) -> None:
        if actual != digest:
            self.cancel(name, upload_id)
            raise RegistryError(
                "DIGEST_INVALID",
                "provided digest did not match uploaded content",
                {"provided": str(digest), "computed": str(actual)},
            )

    def _done(self, name: str, upload_id: str, digest: Digest, size: int) -> BlobInfo:
        self.driver.delete(paths.upload_dir(name, upload_id))
        self.blobs.link(name, digest)
        self._forget(upload_id)
        return BlobInfo(digest, size)

    def cancel(self, name: str, upload_id: str) -> None:
        self.size(name, upload_id)
        self.driver.delete(paths.upload_dir(name, upload_id))
        self._forget(upload_id)

    def _forget(self, upload_id: str) -> None:
        """The session is over: drop its running hash and stop counting it."""
        self._hashes.pop(upload_id, None)
        if self.limits is not None:
            self.limits.ended(upload_id)

    def _digest_of(self, upload_id: str, size: int, algorithm: str, parts: list[str]) -> Digest:
        """The running hash when this process saw every byte, else the stored bytes re-read."""
        running = self._hash_at(upload_id, size) if algorithm == "sha256" else None
        if running is None:
            running = hashlib.new(algorithm)
            for part in parts:
                with self.driver.reader(part) as f:
                    while chunk := f.read(_READ_SIZE):
                        running.update(chunk)
        return Digest(algorithm, running.hexdigest())

    def _hash_at(self, upload_id: str, size: int) -> hashlib._Hash | None:
        """The running sha256 if this process saw every byte so far, else None."""
        state = self._hashes.get(upload_id)
        if state is None or state[0] != size:
            return None
        return state[1]

    def _remember(self, upload_id: str, size: int, running: hashlib._Hash) -> None:
        self._hashes[upload_id] = (size, running)
        self._hashes.move_to_end(upload_id)
        while len(self._hashes) > _MAX_HASH_STATES:
            self._hashes.popitem(last=False)
