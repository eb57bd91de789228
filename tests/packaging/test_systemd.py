"""appliance.systemd: sd_notify and socket activation's LISTEN_FDS, without systemd."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from appliance import systemd

from .harness import NotifySocket


def test_notify_sends_one_datagram_to_a_socket_path(tmp_path: Path) -> None:
    """With NOTIFY_SOCKET naming a file, notify sends the state as one datagram and says so."""
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(path)
        assert systemd.notify("READY=1\nSTATUS=serving", {"NOTIFY_SOCKET": path})
        assert listener.recv(100) == b"READY=1\nSTATUS=serving"


def test_notify_reaches_an_abstract_socket() -> None:
    """A NOTIFY_SOCKET starting with "@" names an abstract socket, as in sd_notify(3)."""
    listener = NotifySocket()
    try:
        assert systemd.notify("STOPPING=1", {"NOTIFY_SOCKET": listener.address})
        assert listener.wait_for("STOPPING=1", timeout=5) == ["STOPPING=1"]
    finally:
        listener.close()


def test_notify_without_systemd_or_listener_is_a_no_op(tmp_path: Path) -> None:
    """No NOTIFY_SOCKET, or one nobody listens on, returns False and raises nothing."""
    assert not systemd.notify("READY=1", {})
    assert not systemd.notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "gone")})


def listen_fds_in_child(environ: str, frozen: bool = False) -> str:
    """Run listen_fds in a fresh interpreter whose fd 3 is a listening socket; its output."""
    code = f"""
import os, socket, sys
from appliance import systemd
os.dup2(int(sys.argv[1]), 3)
sys.frozen = {frozen}
environ = {environ}
fds = systemd.listen_fds(environ)
print(fds, sorted(environ), [os.get_inheritable(fd) for fd in fds],
      [socket.socket(fileno=fd).getsockname()[0] for fd in fds])
"""
    with socket.create_server(("127.0.0.1", 0)) as listening:
        fd = listening.fileno()
        done = subprocess.run([sys.executable, "-c", code, str(fd)], pass_fds=(fd,),
                              capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_listen_fds_for_this_process_and_forgets_them() -> None:
    """LISTEN_PID naming us gives fd 3 (not inherited further) and the variables are removed."""
    environ = '{"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "1", "LISTEN_FDNAMES": "x", "X": "1"}'
    assert listen_fds_in_child(environ) == "[3] ['X'] [False] ['127.0.0.1']"


@pytest.mark.parametrize("pid", ["1", "", "not-a-pid", "os.getppid()"])
def test_listen_fds_meant_for_another_process_are_ignored(pid: str) -> None:
    """A LISTEN_PID that is not ours (our parent's, garbage) means nothing was passed to us."""
    value = pid if pid.startswith("os.") else repr(pid)
    environ = f'{{"LISTEN_PID": str({value}), "LISTEN_FDS": "1"}}'
    assert listen_fds_in_child(environ) == "[] [] [] []"


def test_listen_fds_accepts_the_one_file_bootloader_pid() -> None:
    """Frozen by PyInstaller, the server is a child of the bootloader that systemd started."""
    environ = '{"LISTEN_PID": str(os.getppid()), "LISTEN_FDS": "1"}'
    assert listen_fds_in_child(environ, frozen=True) == "[3] [] [False] ['127.0.0.1']"
