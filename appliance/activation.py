"""Serve on the listening socket systemd passed us (socket activation) instead of binding one.

The socket belongs to systemd and outlives our process, so during a restart or an upgrade new
connections wait in the kernel's queue instead of being refused.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from typing import Any

from twisted.internet.interfaces import IListeningPort, IProtocolFactory
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOFactory

from appliance.tls import ReloadableServerTLS

__all__ = ["adopt_listening_socket"]

log = Logger()


def adopt_listening_socket(
    reactor: Any, factory: IProtocolFactory, tls: ReloadableServerTLS | None, fds: Sequence[int]
) -> IListeningPort | None:
    """Listen on the first of `fds` (`systemd.listen_fds()`), with TLS when configured.

    None when nothing was passed: the caller binds `http.addr` instead.
    """
    if not fds:
        return None
    if len(fds) > 1:
        log.warn("socket activation passed {count} sockets; serving on the first", count=len(fds))
    probe = socket.socket(fileno=fds[0])
    family = probe.family
    probe.detach()
    os.set_blocking(fds[0], False)  # Twisted requires it; systemd hands sockets over blocking
    wrapped = TLSMemoryBIOFactory(tls, False, factory) if tls else factory
    port = reactor.adoptStreamPort(fds[0], family, wrapped)
    os.close(fds[0])  # the reactor listens on its own duplicate
    return port
