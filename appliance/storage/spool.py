"""Where object-store drivers spool request bodies: a local folder, made on first use.

Without `appliance.spooldir` each process makes its own folder under the system temp dir and
removes it at exit. A process killed outside systemd (no PrivateTmp) cannot, so the folder's
name carries its PID, and the next process to make one removes those whose process is gone:
a body is only ever in the spool while the request that wrote it is alive.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
from pathlib import Path

PREFIX = "registry-appliance-spool-"


class LocalSpool:
    """`appliance.spooldir` when configured, else a folder of this process's own under the
    system temp dir (removed at exit)."""

    def __init__(self, configured: str | None) -> None:
        self._path = configured or None
        self._lock = threading.Lock()

    def directory(self) -> str:
        with self._lock:
            if self._path is None:
                remove_orphans(Path(tempfile.gettempdir()))
                self._path = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-")
                atexit.register(shutil.rmtree, self._path, True)
            os.makedirs(self._path, exist_ok=True)
            return self._path


def remove_orphans(temp: Path) -> None:
    """Remove our user's spool folders in `temp` whose process no longer runs."""
    for folder in temp.glob(f"{PREFIX}*-*"):
        pid = folder.name[len(PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or _alive(int(pid)) or folder.is_symlink():
            continue
        try:
            if folder.stat().st_uid != os.getuid():
                continue
        except FileNotFoundError:
            continue
        shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
