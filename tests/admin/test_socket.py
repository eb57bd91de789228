"""The admin socket: private to the server's user, replaced when stale, left to a live owner."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.admin.client import AdminClient, AdminError
from tests.api.client import V2Client
from tests.api.conftest import running
from tests.server import ApplianceServer, base_config

# Run as another user, and from "/" so the working folder is no obstacle.
AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
PROBE = """
import sys
from appliance.admin.client import AdminClient, AdminError
try:
    AdminClient(sys.argv[1], timeout=5).status()
except AdminError as error:
    print(error)
    sys.exit(1)
print("connected")
"""


@pytest.fixture(scope="module")
def open_folder() -> Iterator[Path]:
    """A folder everyone may enter (pytest's own are 0700), so only the socket's mode decides."""
    folder = Path(tempfile.mkdtemp(prefix="admin-sock-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def private(
    tmp_path_factory: pytest.TempPathFactory, open_folder: Path
) -> Iterator[ApplianceServer]:
    def socket_in_new_folder(config: dict[str, Any], workdir: Path) -> None:
        config["appliance"] = {"admin": {"socket": str(open_folder / "run" / "admin.sock")}}

    with running(tmp_path_factory, "socket", socket_in_new_folder) as started:
        yield started


def probe_as_nobody(path: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*AS_NOBODY, sys.executable, "-c", PROBE, path],
        capture_output=True,
        text=True,
        timeout=30,
        cwd="/",
    )


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv"
)
def test_socket_is_private_to_the_server_user(private: ApplianceServer) -> None:
    """The socket is 0600 in a new 0700 folder, owned by the server's user; nobody else connects."""
    path = Path(private.admin_socket)
    info = path.stat()
    assert stat.S_ISSOCK(info.st_mode)
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert info.st_uid == os.geteuid()
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    path.parent.chmod(0o755)  # only the socket's own mode is left in the way
    try:
        refused = probe_as_nobody(str(path))
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "permission denied" in refused.stdout
        assert "Traceback" not in refused.stderr
        path.chmod(0o666)  # the control: the same user gets in once the mode allows it
        try:
            assert probe_as_nobody(str(path)).stdout.strip() == "connected"
        finally:
            path.chmod(0o600)
    finally:
        path.parent.chmod(0o700)
    assert AdminClient(str(path)).status()["read_only"] is False


def test_stale_socket_is_replaced_and_removed_on_stop(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A socket file left by a dead server is replaced at start; a clean stop removes the socket."""
    workdir = tmp_path_factory.mktemp("stale")
    path = workdir / "admin.sock"
    with socket.socket(socket.AF_UNIX) as dead:
        dead.bind(str(path))  # bound, never listening, closed: what a killed server leaves
    server = ApplianceServer(workdir, base_config(workdir)).start()
    try:
        assert AdminClient(str(path)).status()["totals"]["repositories"] == 0
    finally:
        server.stop()
    assert not path.exists()
    with pytest.raises(
        AdminError, match=r"cannot reach the admin socket at .*: is the server running\?"
    ):
        AdminClient(str(path)).status()


def test_live_socket_is_left_to_its_owner(
    tmp_path_factory: pytest.TempPathFactory, private: ApplianceServer
) -> None:
    """A second server given a socket a live server answers on warns and serves v2 only."""
    V2Client(private.url).push_image("socket/first", "v1", [b"layer"])

    def same_socket(config: dict[str, Any], workdir: Path) -> None:
        config["appliance"] = {"admin": {"socket": private.admin_socket}}

    with running(tmp_path_factory, "socket-second", same_socket) as second:
        assert V2Client(second.url).request("GET", "/v2/").status_code == 200
        deadline = time.monotonic() + 20  # with workers, worker 0 may start after another
        while "another server answers on the admin socket" not in second.log():
            assert time.monotonic() < deadline, second.log()
            time.sleep(0.1)
        assert AdminClient(private.admin_socket).status()["totals"]["repositories"] >= 1
    assert Path(private.admin_socket).exists()


def test_a_file_in_the_way_stops_the_start(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A regular file at the socket path stops the start with a clear message, no traceback."""
    workdir = tmp_path_factory.mktemp("notsocket")
    (workdir / "admin.sock").write_text("precious")
    with pytest.raises(RuntimeError) as raised:
        ApplianceServer(workdir, base_config(workdir)).start()
    assert "exists and is not a socket" in str(raised.value)
    assert "Traceback" not in str(raised.value)
    assert (workdir / "admin.sock").read_text() == "precious"
