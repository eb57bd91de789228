"""A manifest PUT's body is spooled only up to `maxmanifestsize`: a huge one fills no disk, and
the handler still sees its full size (and answers 413). Pins the Twisted private attributes
(`HTTPChannel._command`/`_path`) the site reads before the request knows its method and path."""

from __future__ import annotations

import os
from pathlib import Path

from twisted.internet.testing import StringTransport
from twisted.web.server import Request

from appliance.api.site import RegistrySite
from tests.packaging.test_connections import Held

CAP = 64 * 1024


def send(tmp_path: Path, head: bytes, size: int) -> tuple[Request, int]:
    """The request as the resource got it, and the largest its spool file grew."""
    held = Held()
    site = RegistrySite(held, str(tmp_path), 0, max_manifest_bytes=CAP)
    protocol = site.buildProtocol(None)
    protocol.makeConnection(StringTransport())
    protocol.dataReceived(head % size)
    spooled = 0
    for _ in range(size // 65536):
        protocol.dataReceived(b"x" * 65536)
        spooled = max([spooled, *(os.path.getsize(p) for p in tmp_path.iterdir())])
    return held.requests[0], spooled


def test_a_huge_manifest_is_counted_not_spooled(tmp_path: Path) -> None:
    """16 MiB to a manifest: the body's size is 16 MiB, the spool file never passes the cap."""
    request, spooled = send(tmp_path, b"PUT /v2/a/manifests/t HTTP/1.1\r\nHost: r\r\n"
                                      b"Content-Length: %d\r\n\r\n", 16 << 20)
    assert request.content.size == 16 << 20
    assert 0 < spooled <= CAP


def test_other_bodies_are_spooled_whole(tmp_path: Path) -> None:
    """A blob upload of the same size is kept whole."""
    request, spooled = send(tmp_path, b"PATCH /v2/a/blobs/uploads/u HTTP/1.1\r\nHost: r\r\n"
                                      b"Content-Length: %d\r\n\r\n", 1 << 20)
    assert request.content.size == 1 << 20
    assert spooled == 1 << 20
