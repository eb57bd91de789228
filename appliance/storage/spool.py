"""Where object-store drivers spool request bodies: a local folder, made on first use."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading


class LocalSpool:
    """`appliance.spooldir` when configured, else a folder of this process's own under the
    system temp dir (removed at exit)."""

    def __init__(self, configured: str | None) -> None:
        self._path = configured or None
        self._lock = threading.Lock()

    def directory(self) -> str:
        with self._lock:
            if self._path is None:
                self._path = tempfile.mkdtemp(prefix="registry-appliance-spool-")
                atexit.register(shutil.rmtree, self._path, True)
            os.makedirs(self._path, exist_ok=True)
            return self._path
