"""htpasswd files with bcrypt entries, as `htpasswd -B` writes them and Distribution reads them."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from dataclasses import dataclass

import bcrypt

BCRYPT_PREFIXES = ("$2y$", "$2b$", "$2a$")
_COST = 10  # Apache's htpasswd -B default; Distribution checks the same cost


class HtpasswdError(ValueError):
    """The file or a name in it is unusable; the message says which line or why."""


def read_entries(path: str) -> dict[str, str]:
    """User -> hash, in file order. Missing file -> empty. Non-bcrypt lines are kept as they are."""
    entries: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return entries
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        if not sep or not user:
            raise HtpasswdError(f"{path}:{number}: expected USER:HASH")
        entries[user] = hashed
    return entries


def write_entries(path: str, entries: dict[str, str]) -> None:
    """Atomic replace, mode 0600 from the first byte: the hashes are secrets too.

    A replaced file keeps its group and mode, so a service that could read it (install.sh makes
    it root:registry 0640) still can after root adds a user.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, mode=0o700, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".htpasswd-")
    try:
        with contextlib.suppress(FileNotFoundError):
            _keep_access(fd, os.stat(path))
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.writelines(f"{user}:{hashed}\n" for user, hashed in entries.items())
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _keep_access(fd: int, old: os.stat_result) -> None:
    with contextlib.suppress(PermissionError):  # only root or a member may give the group
        os.fchown(fd, -1, old.st_gid)
    os.fchmod(fd, stat.S_IMODE(old.st_mode))


def check_user_name(user: str) -> str:
    if not user or ":" in user or any(c.isspace() for c in user) or len(user) > 255:
        raise HtpasswdError(f"invalid user name {user!r}: no colons, spaces or empty names")
    return user


def hash_password(password: str) -> str:
    """bcrypt in the `$2y$` form Apache writes; Python's bcrypt and Go's both read it."""
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(_COST)).decode()
    return "$2y$" + hashed[4:]


def verify(hashed: str, password: str) -> bool:
    if not hashed.startswith(BCRYPT_PREFIXES):
        return False
    try:
        return bcrypt.checkpw(password.encode(), ("$2b$" + hashed[4:]).encode())
    except ValueError:
        return False


@dataclass(frozen=True)
class FileStamp:
    """Enough to notice that the file changed, without reading it."""

    mtime_ns: int
    size: int
    inode: int

    @classmethod
    def of(cls, path: str) -> FileStamp | None:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        return cls(st.st_mtime_ns, st.st_size, st.st_ino)
