"""Local filesystem driver: Distribution's files under one root, written atomically."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from typing import BinaryIO

from .driver import FileInfo, InvalidPath, PathNotFound, StorageError
from .paths import APPLIANCE

SPOOL = "/appliance/spool"


def _make_private(directory: str) -> None:
    """Our own state (the generated http secret, the event queue, quarantined files) is the
    server user's alone; Distribution's tree beside it keeps the umask's modes. A folder made
    0755 by an older version is narrowed. Best effort: on a data folder we may only read (fsck,
    a read-only mount) it is left alone, and writes there report their own errors."""
    with contextlib.suppress(OSError):
        os.makedirs(directory, mode=0o700, exist_ok=True)
        os.chmod(directory, 0o700)


def _fsync_directory(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FilesystemWriter:
    """Appends to the target file in place; used for upload data, never for visible blobs."""

    def __init__(self, full_path: str, append: bool) -> None:
        os.makedirs(os.path.dirname(full_path), exist_ok=True)
        self._file = open(full_path, "ab" if append else "wb")  # noqa: SIM115
        self._size = self._file.tell()
        self._path = full_path

    def write(self, data: bytes) -> int:
        self._file.write(data)
        self._size += len(data)
        return len(data)

    def size(self) -> int:
        return self._size

    def commit(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    def cancel(self) -> None:
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path)

    def close(self) -> None:
        self._file.close()


class FilesystemDriver:
    name = "filesystem"
    appends = True

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        os.makedirs(self.root, exist_ok=True)
        _make_private(self.root + APPLIANCE)

    def _full(self, path: str) -> str:
        if not path.startswith("/") or "\0" in path or "//" in path or any(
            part in ("..", ".") for part in path.split("/")
        ):
            raise InvalidPath(f"invalid storage path {path!r}")
        return self.root + path.rstrip("/") if path != "/" else self.root

    def get_content(self, path: str) -> bytes:
        try:
            with open(self._full(path), "rb") as f:
                return f.read()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise PathNotFound(path) from None

    def put_content(self, path: str, data: bytes) -> None:
        """Write to a temp file beside the target, fsync, rename: never half-visible."""
        with _atomic_file(self._full(path)) as f:
            f.write(data)

    def create_exclusive(self, path: str, data: bytes) -> bool:
        full = self._full(path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        try:
            fd = os.open(full, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        return True

    def reader(self, path: str, offset: int = 0) -> BinaryIO:
        try:
            f = open(self._full(path), "rb")  # noqa: SIM115
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise PathNotFound(path) from None
        f.seek(offset)
        return f

    def writer(self, path: str, append: bool = False) -> FilesystemWriter:
        return FilesystemWriter(self._full(path), append)

    def stat(self, path: str) -> FileInfo:
        try:
            st = os.stat(self._full(path))
        except (FileNotFoundError, NotADirectoryError):
            raise PathNotFound(path) from None
        is_dir = os.path.isdir(self._full(path))
        return FileInfo(path, 0 if is_dir else st.st_size, st.st_mtime, is_dir)

    def list(self, path: str) -> list[str]:
        try:
            names = os.listdir(self._full(path))
        except (FileNotFoundError, NotADirectoryError):
            raise PathNotFound(path) from None
        base = path.rstrip("/")
        return sorted(f"{base}/{n}" for n in names if not n.startswith(".tmp-"))

    def move(self, source: str, destination: str) -> None:
        """Make the source durable, then rename: a crash leaves either nothing or all of it."""
        full_source, full_destination = self._full(source), self._full(destination)
        try:
            with open(full_source, "rb") as f:
                os.fsync(f.fileno())
        except FileNotFoundError:
            raise PathNotFound(source) from None
        os.makedirs(os.path.dirname(full_destination), exist_ok=True)
        try:
            os.replace(full_source, full_destination)
        except FileNotFoundError:
            raise PathNotFound(source) from None
        _fsync_directory(os.path.dirname(full_destination))

    def delete(self, path: str) -> None:
        full = self._full(path)
        try:
            if os.path.isdir(full) and not os.path.islink(full):
                shutil.rmtree(full)
            else:
                os.unlink(full)
        except FileNotFoundError:
            raise PathNotFound(path) from None

    def walk(self, path: str) -> Iterator[FileInfo]:
        full = self._full(path)
        if not os.path.exists(full):
            raise PathNotFound(path)
        for directory, dirs, files in os.walk(full):
            dirs.sort()
            relative = directory[len(self.root) :] or "/"
            for name in sorted(dirs):
                yield FileInfo(f"{relative.rstrip('/')}/{name}", 0, 0.0, True)
            for name in sorted(files):
                if name.startswith(".tmp-"):
                    continue
                try:
                    st = os.stat(os.path.join(directory, name))
                except FileNotFoundError:  # deleted since the listing (an upload finished, a GC)
                    continue
                yield FileInfo(f"{relative.rstrip('/')}/{name}", st.st_size, st.st_mtime, False)

    def put_file(self, path: str, local_path: str) -> None:
        """Rename the spooled file into place: the bytes are written once, never copied."""
        full = self._full(path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        try:
            os.replace(local_path, full)
        except OSError as error:
            if error.errno != errno.EXDEV:
                raise StorageError(f"cannot store {path}: {error.strerror}") from None
            shutil.move(local_path, full)

    def concatenate(self, sources: Sequence[str], destination: str) -> None:
        """Copy the sources into a temp file beside the destination, then rename it into place."""
        with _atomic_file(self._full(destination)) as out:
            for source in sources:
                try:
                    with open(self._full(source), "rb") as f:
                        shutil.copyfileobj(f, out, 1 << 20)
                except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                    raise PathNotFound(source) from None

    def free_bytes(self) -> int:
        st = os.statvfs(self.root)
        return st.f_bavail * st.f_frsize

    def spool_directory(self) -> str:
        directory = self.root + SPOOL
        os.makedirs(directory, exist_ok=True)
        return directory


@contextlib.contextmanager
def _atomic_file(full: str) -> Iterator[BinaryIO]:
    """A temp file beside `full`, written by the caller, then fsynced and renamed onto `full`
    (and the folder fsynced): readers see the old content or the new, never part of it. On an
    error the temp file goes and `full` is untouched."""
    directory = os.path.dirname(full)
    os.makedirs(directory, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, full)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _fsync_directory(directory)
