"""systemd's two small protocols, without libsystemd: `sd_notify` and socket activation.

`notify` tells the service manager we are ready, reloading or stopping, so `Type=notify` units
start their dependants only once the port answers. `listen_fds` returns the sockets systemd
(a `.socket` unit) passed us, so a restart never closes the listening socket.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Mapping, MutableMapping

__all__ = ["LISTEN_FDS_START", "listen_fds", "notify"]

LISTEN_FDS_START = 3  # SD_LISTEN_FDS_START: passed sockets are fds 3, 4, ...


def notify(state: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Send `state` (e.g. "READY=1") to `$NOTIFY_SOCKET`; False when not run by systemd.

    A leading "@" names an abstract socket, as in sd_notify(3).
    """
    address = environ.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        try:
            sock.sendto(state.encode(), address)
        except OSError:
            return False
    return True


def listen_fds(environ: MutableMapping[str, str] = os.environ) -> list[int]:
    """The file descriptors passed by socket activation, and forget them so children don't.

    `LISTEN_PID` must name this process, as in sd_listen_fds(3). A PyInstaller one-file binary
    runs us in a child of the bootloader that systemd started, so its pid counts as ours too.
    """
    pid, count = environ.pop("LISTEN_PID", ""), environ.pop("LISTEN_FDS", "")
    environ.pop("LISTEN_FDNAMES", None)
    ours = {os.getpid(), os.getppid()} if getattr(sys, "frozen", False) else {os.getpid()}
    if not (pid.isdigit() and int(pid) in ours and count.isdigit()):
        return []
    fds = list(range(LISTEN_FDS_START, LISTEN_FDS_START + int(count)))
    for fd in fds:
        os.set_inheritable(fd, False)
    return fds
