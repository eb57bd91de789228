"""Request bodies spooled as they arrive: hashed on the fly, kept on disk when large.

Twisted reads the whole body before it calls `render`. Spooling into the storage root's own
spool folder (same filesystem) lets the first chunk of an upload be *renamed* into place, so a
layer's bytes are written once, and memory stays bounded whatever the layer's size.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tempfile
from collections.abc import Iterator

MEMORY_LIMIT = 256 * 1024
_READ_SIZE = 1 << 20


class SpooledBody:
    """A file-like sink for Twisted (`write`, `seek`, `tell`, `read`) and a registry `Body`."""

    def __init__(self, spool_directory: str | None, expected_length: int | None) -> None:
        self._directory = spool_directory
        self.sha256 = hashlib.sha256()
        self.size = 0
        self.local_path: str | None = None
        self._file: io.BufferedRandom | io.BytesIO = io.BytesIO()
        if expected_length is None or expected_length > MEMORY_LIMIT:
            self._to_disk()

    def _to_disk(self) -> None:
        fd, self.local_path = tempfile.mkstemp(dir=self._directory, prefix="body-")
        disk = os.fdopen(fd, "w+b")
        disk.write(self._file.getvalue() if isinstance(self._file, io.BytesIO) else b"")
        self._file = disk

    def write(self, data: bytes) -> None:
        self.sha256.update(data)
        self.size += len(data)
        self._file.write(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        if offset == 0 and whence == 0 and self.local_path is not None:
            self._file.flush()
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def read(self, size: int = -1) -> bytes:
        return self._file.read(size)

    def chunks(self) -> Iterator[bytes]:
        self._file.seek(0)
        while chunk := self._file.read(_READ_SIZE):
            yield chunk

    def discard(self) -> None:
        """Close and delete what is left (a renamed spool file is already gone)."""
        self._file.close()
        if self.local_path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.local_path)

    def close(self) -> None:
        """Twisted's `Request._cleanup` closes the content when the response is done: discard it."""
        self.discard()
