"""Request bodies spooled as they arrive: hashed on the fly, kept on disk when large.

Twisted reads the whole body before it calls `render`. Spooling into the storage root's own
spool folder (same filesystem) lets the first chunk of an upload be *renamed* into place, so a
layer's bytes are written once, and memory stays bounded whatever the layer's size.

Twisted closes a request's body as soon as its client disconnects, while a handler may still be
reading it in a thread; a handler `held` body is discarded only once the handler is done.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager

MEMORY_LIMIT = 256 * 1024
_READ_SIZE = 1 << 20


class SpooledBody:
    """A file-like sink for Twisted (`write`, `seek`, `tell`, `read`) and a registry `Body`."""

    def __init__(self, spool_directory: str | None, expected_length: int | None,
                 keep: int | None = None) -> None:
        """`keep`: the most bytes stored; past it bytes are only counted, so a body the handler
        will refuse by its size (a manifest over its limit) fills no disk."""
        self._directory = spool_directory
        self._keep = keep
        self.sha256 = hashlib.sha256()
        self.size = 0
        self.local_path: str | None = None
        self._file: io.BufferedRandom | io.BytesIO = io.BytesIO()
        self._holds = 0
        self._discard_asked = False
        self.failure: OSError | None = None  # the spool could not take the body (disk full)
        if expected_length is None or expected_length > MEMORY_LIMIT:
            self._spooling(self._to_disk)

    def _to_disk(self) -> None:
        fd, self.local_path = tempfile.mkstemp(dir=self._directory, prefix="body-")
        disk = os.fdopen(fd, "w+b")
        disk.write(self._file.getvalue() if isinstance(self._file, io.BytesIO) else b"")
        self._file = disk

    def _spooling(self, work: Callable[[], object]) -> None:
        """Run a spool write; when it fails (ENOSPC), keep the error for the handler to answer
        with once the body is in, drop what was spooled, and take no more bytes."""
        if self.failure is not None:
            return
        try:
            work()
        except OSError as error:
            self.failure = error
            with contextlib.suppress(OSError):  # closing flushes, which fails the same way
                self._file.close()
            if self.local_path is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.local_path)
            self._file, self.local_path = io.BytesIO(), None

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self._keep is not None and self.size > self._keep:
            return
        self.sha256.update(data)
        self._spooling(lambda: self._file.write(data))

    def seek(self, offset: int, whence: int = 0) -> int:
        if offset == 0 and whence == 0 and self.local_path is not None:
            self._spooling(self._file.flush)
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def read(self, size: int = -1) -> bytes:
        return self._file.read(size)

    def chunks(self) -> Iterator[bytes]:
        self._file.seek(0)
        while chunk := self._file.read(_READ_SIZE):
            yield chunk

    @contextmanager
    def held(self) -> Iterator[SpooledBody]:
        """Keep the body while a handler uses it; a `discard` meanwhile waits for the end.
        Entered and left on the reactor thread, as `discard` is called."""
        self._holds += 1
        try:
            yield self
        finally:
            self._holds -= 1
            if self._discard_asked and not self._holds:
                self.discard()

    def discard(self) -> None:
        """Close and delete what is left (a renamed spool file is already gone)."""
        self._discard_asked = True
        if self._holds:
            return
        self._file.close()
        if self.local_path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.local_path)

    def close(self) -> None:
        """Twisted's `Request._cleanup` closes the content when the response is done: discard it."""
        self.discard()
