"""Partial pull-through fetches left in `<root>/appliance/proxy/incoming/` (a fetch that broke,
a process that was killed) are purged at start and on the upload-purging schedule, while a
fetch in flight (a file still being written) is kept. Real server processes."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from appliance.admin.client import AdminClient
from tests.observe.test_health_metrics import eventually
from tests.server import ApplianceServer, base_config

from .servers import serving


def incoming(server: ApplianceServer) -> Path:
    path = server.root / "appliance/proxy/incoming"
    path.mkdir(parents=True, exist_ok=True)
    return path


def partial(server: ApplianceServer, name: str, age: float = 0.0) -> Path:
    """A partial fetch whose last write was `age` seconds ago."""
    path = incoming(server) / name
    path.write_bytes(b"half a layer" * 100)
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def test_purged_at_start_keeping_recent_ones(tmp_path: Path) -> None:
    """With the default schedule (once a day), a partial fetch untouched for 2 hours is gone
    right after the start; one written just now is kept (it may be in flight elsewhere), and
    the admin purge lists it without removing it in a dry run."""
    server = ApplianceServer(tmp_path, base_config(tmp_path))
    abandoned = partial(server, "abandoned-by-a-killed-process", age=2 * 3600)
    recent = partial(server, "recent")
    with serving(server):
        eventually(lambda: not abandoned.exists())
        assert "1 partial proxy fetches, 1200 bytes removed" in server.log()
        assert recent.exists()
        result = AdminClient(server.admin_socket).purge_uploads(dry_run=True, age=0)
        assert (result["fetches"], result["bytes_freed"]) == (["recent"], 1200)
        assert recent.exists()


def test_purged_on_the_schedule_but_not_while_written(tmp_path: Path) -> None:
    """With `uploadpurging` every second for an age of 3 s, a partial fetch left alone is
    removed after those 3 s, while one that keeps being written to stays."""
    config = base_config(tmp_path)
    config["storage"]["maintenance"] = {"uploadpurging": {"enabled": True, "age": "3s",
                                                          "interval": "1s"}}
    with serving(ApplianceServer(tmp_path, config)) as server:
        in_flight = partial(server, "in-flight")
        abandoned = partial(server, "abandoned")
        stop = threading.Event()

        def keep_writing() -> None:
            with in_flight.open("ab") as f:
                while not stop.wait(0.2):
                    f.write(b"more")
                    f.flush()

        writer = threading.Thread(target=keep_writing)
        writer.start()
        started = time.monotonic()
        try:
            eventually(lambda: not abandoned.exists())
            assert time.monotonic() - started > 2.5  # not before it was 3 s old
            time.sleep(2)  # two more purges
            assert in_flight.exists()
        finally:
            stop.set()
            writer.join()
