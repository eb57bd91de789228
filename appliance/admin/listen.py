"""The admin socket: a UNIX socket only the server's user can open.

Its folder is made 0700 when missing and the socket is 0600, so file permissions are the
access control. A socket left by a dead server is replaced; one a live server answers on is
left alone (that server keeps its admin API, this one serves none).
"""

from __future__ import annotations

import os
import socket
import stat
from typing import Any

from twisted.internet.error import CannotListenError
from twisted.logger import Logger
from twisted.web.server import Site

log = Logger()


def claim(path: str) -> bool:
    """Make the folder and clear a stale socket; False when a live server already owns `path`."""
    os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return True
    if not stat.S_ISSOCK(mode):
        raise ValueError(f"appliance.admin.socket: {path} exists and is not a socket; move it away")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(2)
        try:
            probe.connect(path)
        except (ConnectionRefusedError, FileNotFoundError):
            os.unlink(path)
            log.info("replaced the stale admin socket {path} of a server that is gone", path=path)
            return True
        except PermissionError:
            raise OSError(
                f"cannot use the admin socket {path}: permission denied (another user's server?)"
            ) from None
    return False


def listen_admin(reactor: Any, path: str, site: Site) -> Any | None:
    """Listen on `path` (blocking, reactor thread); None when another server owns it.

    Twisted binds, then chmods: the umask keeps the socket private in between. Call this
    before starting any thread, since the umask is process-wide.
    """
    if not claim(path):
        log.warn(
            "another server answers on the admin socket {path}; this one serves no admin socket",
            path=path,
        )
        return None
    previous = os.umask(0o177)
    try:
        return reactor.listenUNIX(path, site, mode=0o600)
    except CannotListenError as error:
        raise OSError(f"cannot listen on the admin socket {path}: {error.socketError}") from None
    finally:
        os.umask(previous)
