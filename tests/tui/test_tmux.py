"""The real `registry-appliance tui` in a real terminal (tmux) against a real server.

Keys go in with `send-keys`, the screen comes back with `capture-pane`, and after each action
the server's own state is checked through the admin API.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.admin.client import AdminClient
from tests.api.client import V2Client, digest_of
from tests.fsck.conftest import blob_path
from tests.server import ApplianceServer, base_config

pytestmark = pytest.mark.e2e


class Terminal:
    def __init__(self, name: str, command: str) -> None:
        self.name = name
        subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", "120", "-y", "40", command], check=True)

    def screen(self) -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name], capture_output=True, text=True).stdout

    def keys(self, *keys: str) -> None:
        """One key at a time: tmux would glue escape and the next key into an alt- chord."""
        for key in keys:
            subprocess.run(["tmux", "send-keys", "-t", self.name, key], check=True)
            time.sleep(0.3)

    def type(self, text: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, "-l", text], check=True)
        time.sleep(0.3)

    def wait_for(self, text: str, timeout: float = 15.0, absent: str | None = None) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen and (absent is None or absent not in screen):
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{text!r} never appeared; the screen was:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ApplianceServer]:
    config = base_config(tmp_path)
    config["appliance"] = {"gc": {"grace": "0s"}}
    running = ApplianceServer(tmp_path / "server", config).start()
    yield running
    running.stop()


def test_tui_drives_a_real_server(server: ApplianceServer, tmp_path: Path) -> None:
    """Filter, open a repository, delete a tag, flip read-only, run a GC, check and repair a
    corrupt layer: the server follows."""
    assert shutil.which("tmux"), "tmux is installed by scripts/test.sh"
    v2 = V2Client(server.url)
    app = v2.push_image("team/app", "v1", [os.urandom(5000)])
    v2.put_manifest("team/app", "v2", app.manifest, "application/vnd.docker.distribution.manifest.v2+json")
    v2.push_image("other/lib", "1.0", [os.urandom(3000)])
    v2.push_blob("team/app", os.urandom(7000))  # an orphan for GC to find
    admin = AdminClient(server.admin_socket)
    command = f"cd {Path.cwd()} && TERM=xterm-256color {sys.executable} -m appliance.cli tui --admin {server.admin_socket}"
    terminal = Terminal(f"ra-tui-{os.getpid()}", command)
    try:
        terminal.wait_for("other/lib")
        terminal.keys("/")
        terminal.type("team")
        terminal.wait_for("team/app", absent="other/lib")
        terminal.keys("Enter", "Enter")
        screen = terminal.wait_for("v2")
        assert "v1" in screen
        terminal.keys("Down", "d")
        terminal.wait_for("Delete 1 tag(s)?")
        terminal.keys("y")
        terminal.wait_for("deleted 1 tag(s)")
        assert [t["tag"] for t in admin.tags("team/app")] == ["v1"]

        terminal.keys("R")
        terminal.wait_for("Turn read-only ON?")
        terminal.keys("y")
        terminal.wait_for("READ-ONLY")
        assert admin.readonly() is True
        assert v2.request("POST", "/v2/team/app/blobs/uploads/").status_code == 405
        terminal.keys("R")
        terminal.wait_for("Turn read-only OFF?")
        terminal.keys("y")
        terminal.wait_for("read-write")
        assert admin.readonly() is False

        terminal.keys("g")
        terminal.wait_for("delete untagged manifests")
        terminal.keys("n")
        terminal.wait_for("Dry run:")
        terminal.keys("x")
        terminal.wait_for("Run garbage collection now?")
        terminal.keys("y")
        screen = terminal.wait_for("GC done")
        last = admin.gc_status()["history"][0]
        assert last["dry_run"] is False and len(last["blobs"]) == 1

        layer = digest_of(app.layers[0])
        blob_path(server.root, layer).write_bytes(b"corrupt")
        terminal.keys("Escape", "i")
        terminal.wait_for("integrity check")
        terminal.keys("c")
        screen = terminal.wait_for("3 problems.")
        assert "corrupt_blob" in screen and "missing_reference" in screen
        assert v2.request("GET", f"/v2/team/app/blobs/{layer}").status_code == 200  # check only
        terminal.keys("r")
        terminal.wait_for("Repair: quarantine what is broken?")
        terminal.keys("y")
        screen = terminal.wait_for("quarantined")
        assert admin.fsck_status()["last"]["repair"] is True
        assert v2.request("GET", f"/v2/team/app/blobs/{layer}").status_code == 404
        assert "Traceback" not in screen
    finally:
        terminal.close()
