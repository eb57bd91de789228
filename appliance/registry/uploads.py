"""Blob uploads: start, append, finish, cancel, with the running digest kept in memory.

Upload state lives in storage (`_uploads/<id>/`), so another worker or instance can continue an
upload; the running hash does not, so whoever finishes an upload without it re-reads the bytes
(as Distribution does when its saved hash state is missing).
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

_UPLOAD_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
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


def check_upload_id(upload_id: str) -> str:
    if not _UPLOAD_ID.match(upload_id):
        raise RegistryError("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry")
    return upload_id


class Uploads:
    def __init__(self, driver: StorageDriver, blobs: BlobStore) -> None:
        self.driver = driver
        self.blobs = blobs
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
        started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        self.driver.put_content(paths.upload_data(name, upload_id), b"")
        self.driver.put_content(paths.upload_started_at(name, upload_id), started.encode())
        self._remember(upload_id, 0, hashlib.sha256())
        return upload_id

    def size(self, name: str, upload_id: str) -> int:
        check_upload_id(upload_id)
        try:
            return self.driver.stat(paths.upload_data(name, upload_id)).size
        except PathNotFound:
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry") from None

    def append(self, name: str, upload_id: str, body: Body, start: int | None = None) -> int:
        """Add `body` at the end of the upload; `start`, when given, must be that end."""
        with self._lock(upload_id):
            return self._append(name, upload_id, body, start)

    def _append(self, name: str, upload_id: str, body: Body, start: int | None) -> int:
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

    def finish(self, name: str, upload_id: str, digest: Digest, body: Body | None,
               start: int | None = None) -> BlobInfo:
        """Append a last chunk (if any), verify the digest, move the data into the blob store
        and link it into `name`."""
        with self._lock(upload_id):
            return self._finish(name, upload_id, digest, body, start)

    def _finish(self, name: str, upload_id: str, digest: Digest, body: Body | None,
                start: int | None) -> BlobInfo:
        if body is not None:
            self._append(name, upload_id, body, start)
        size = self.size(name, upload_id)
        actual = self._digest_of(name, upload_id, size, digest.algorithm)
        if actual != digest:
            self.cancel(name, upload_id)
            raise RegistryError(
                "DIGEST_INVALID",
                "provided digest did not match uploaded content",
                {"provided": str(digest), "computed": str(actual)},
            )
        data_path = paths.upload_data(name, upload_id)
        if self.blobs.exists_global(digest):
            self.driver.delete(paths.upload_dir(name, upload_id))
        else:
            self.driver.move(data_path, paths.blob_data(digest))
            self.driver.delete(paths.upload_dir(name, upload_id))
        self.blobs.link(name, digest)
        self._hashes.pop(upload_id, None)
        return BlobInfo(digest, size)

    def cancel(self, name: str, upload_id: str) -> None:
        self.size(name, upload_id)
        self._hashes.pop(upload_id, None)
        self.driver.delete(paths.upload_dir(name, upload_id))

    def _digest_of(self, name: str, upload_id: str, size: int, algorithm: str) -> Digest:
        running = self._hash_at(upload_id, size) if algorithm == "sha256" else None
        if running is None:
            running = hashlib.new(algorithm)
            with self.driver.reader(paths.upload_data(name, upload_id)) as f:
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
