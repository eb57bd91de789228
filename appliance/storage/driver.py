"""The storage driver interface, kept as small as Distribution's: paths in, bytes out.

Methods block; callers run them in a thread pool, never on the reactor thread. Paths are
absolute, slash-separated driver paths such as `/docker/registry/v2/blobs/...`.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Protocol


class StorageError(Exception):
    """The backend failed; the message is safe to show to an operator."""


class StorageUnavailable(StorageError):
    """The backend is down, timed out, or throttles us: retrying later may work.

    Nothing was committed by the call that raised it (or what was is complete); the HTTP layer
    answers 503 UNAVAILABLE so clients retry.
    """


class PathNotFound(StorageError):
    def __init__(self, path: str) -> None:
        super().__init__(f"path not found: {path}")
        self.path = path


@contextlib.contextmanager
def translated(translate: Callable[[Exception, str], StorageError], path: str) -> Iterator[None]:
    """`with translated(translate, path):` turns a backend library's failures into ours,
    keeping the cause chained; our own errors pass through."""
    try:
        yield
    except StorageError:
        raise
    except Exception as error:
        raise translate(error, path) from error


class InvalidPath(StorageError):
    """A path outside the driver's grammar: refused before it reaches the backend."""


_PATH = re.compile(r"(/[A-Za-z0-9._-]+)+")


def check_path(path: str) -> str:
    """Distribution's `PathRegexp` (absolute, no empty, `.` or `..` components), or "/".

    Object-store drivers call it: their keys are the path itself, so nothing else stops a
    `..` from meaning something. Returns the path without a trailing slash.
    """
    trimmed = path[:-1] if len(path) > 1 and path.endswith("/") else path
    if trimmed == "/":
        return trimmed
    if not _PATH.fullmatch(trimmed) or any(part in (".", "..") for part in trimmed.split("/")):
        raise InvalidPath(f"invalid storage path {path!r}")
    return trimmed


@dataclass(frozen=True)
class FileInfo:
    path: str
    size: int
    modified: float
    is_dir: bool


class FileWriter(Protocol):
    """Writes one file; nothing is promised durable until `commit` returns."""

    def write(self, data: bytes) -> int: ...
    def size(self) -> int: ...
    def commit(self) -> None: ...
    def cancel(self) -> None: ...
    def close(self) -> None: ...


class StorageDriver(Protocol):
    """`appends`: whether `writer(path, append=True)` can add to an existing file. Object stores
    cannot; uploads then keep each chunk as its own object and `concatenate` them at the end."""

    name: str
    appends: bool

    def get_content(self, path: str) -> bytes: ...
    def put_content(self, path: str, data: bytes) -> None: ...
    def reader(self, path: str, offset: int = 0) -> BinaryIO: ...
    def writer(self, path: str, append: bool = False) -> FileWriter: ...
    def stat(self, path: str) -> FileInfo: ...
    def list(self, path: str) -> list[str]: ...
    def move(self, source: str, destination: str) -> None: ...
    def delete(self, path: str) -> None: ...
    def walk(self, path: str) -> Iterator[FileInfo]: ...
    def create_exclusive(self, path: str, data: bytes) -> bool:
        """Create `path` only if it does not exist; False when it does. For locks."""
        ...
    def put_file(self, path: str, local_path: str) -> None:
        """Store a finished local file at `path`; the local file is consumed."""
        ...
    def free_bytes(self) -> int | None:
        """Space left for new data, when the backend can tell (object stores cannot)."""
        ...
    def spool_directory(self) -> str | None:
        """A local folder where request bodies can be spooled so `put_file` is cheap."""
        ...
    def concatenate(self, sources: Sequence[str], destination: str) -> None:
        """Write the files `sources`, in order, as one new file `destination` (all or nothing);
        the sources stay."""
        ...


class RedirectingDriver(StorageDriver, Protocol):
    """A driver whose files clients can fetch directly (S3 presigned URLs)."""

    def redirect_url(self, path: str) -> str | None:
        """A URL a client can GET `path` from for a while, or None to serve it ourselves."""
        ...
