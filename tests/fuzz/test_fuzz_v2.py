"""Fuzz every /v2/ endpoint of one real server: hostile names, references, headers and bodies.

No answer may be a 5xx or carry a traceback; afterwards nothing may have been written outside
the storage root, no spooled body may be left behind, and the image pushed before the run must
still pull byte for byte.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from tests.api.client import DOCKER_MANIFEST, OCI_MANIFEST, PushedImage, V2Client
from tests.api.conftest import running

from . import strategies as fz
from .conftest import FilesAround, Fuzzed, after_the_run, fuzz_settings
from .wire import Tally, head

KEEP = "keep/base"  # pushed before the run; must be intact after it
_TAGS = "docker/registry/v2/repositories/{}/_manifests/tags"
HEADER_TIMEOUT = 2

# (label, method, target template): {name}, {ref} (tag, digest or upload id), {other} (a name).
ENDPOINTS = (
    ("base", "GET", "/v2/"),
    ("base", "HEAD", "/v2/"),
    ("catalog", "GET", "/v2/_catalog?n={ref}&last={name}"),
    ("tags", "GET", "/v2/{name}/tags/list?n=2&last={ref}"),
    ("manifest_get", "GET", "/v2/{name}/manifests/{ref}"),
    ("manifest_head", "HEAD", "/v2/{name}/manifests/{ref}"),
    ("manifest_put", "PUT", "/v2/{name}/manifests/{ref}"),
    ("manifest_delete", "DELETE", "/v2/{name}/manifests/{ref}"),
    ("blob_get", "GET", "/v2/{name}/blobs/{ref}"),
    ("blob_head", "HEAD", "/v2/{name}/blobs/{ref}"),
    ("blob_delete", "DELETE", "/v2/{name}/blobs/{ref}"),
    ("upload_post", "POST", "/v2/{name}/blobs/uploads/"),
    ("upload_post", "POST", "/v2/{name}/blobs/uploads/?digest={ref}"),
    ("upload_patch", "PATCH", "/v2/{name}/blobs/uploads/{ref}?_state={other}"),
    ("upload_put", "PUT", "/v2/{name}/blobs/uploads/{ref}?digest={ref}&_state={other}"),
    ("upload_get", "GET", "/v2/{name}/blobs/uploads/{ref}"),
    ("upload_delete", "DELETE", "/v2/{name}/blobs/uploads/{ref}?_state={other}"),
    ("mount", "POST", "/v2/{name}/blobs/uploads/?mount={ref}&from={other}"),
    ("referrers", "GET", "/v2/{name}/referrers/{ref}?artifactType={other}"),
)
BY_LABEL: dict[str, list[tuple[str, str, str]]] = {}
for _endpoint in ENDPOINTS:
    BY_LABEL.setdefault(_endpoint[0], []).append(_endpoint)


@dataclass
class Target(Fuzzed):
    client: V2Client
    image: PushedImage

    @property
    def known(self) -> list[tuple[str, int]]:
        blobs = [self.image.config, *self.image.layers]
        return [(fz.sha256(blob), len(blob)) for blob in blobs]


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    def edit(config: dict[str, Any], workdir: Path) -> None:
        config["appliance"] = {"limits": {"headertimeout": f"{HEADER_TIMEOUT}s",
                                          "idletimeout": "4s", "maxbodysize": "8MiB"}}

    with running(tmp_path_factory, "fuzz-v2", edit) as server:
        client = V2Client(server.url)
        image = client.push_image(KEEP, "v1", [b"layer one " * 100, b"layer two"], OCI_MANIFEST)
        yield Target(server, FilesAround(server).snapshot(), client, image)


def fill(template: str, name: str, ref: str, other: str, encode: bool) -> bytes:
    """The target with the parts in place, raw or percent-encoded (the server never decodes
    path segments; query values it does)."""
    def part(text: str) -> str:
        return quote(text, safe="/%:@") if encode else text
    return fz.quoted(template.format(name=part(name), ref=part(ref), other=part(other)))


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[f"{e[0]}-{e[2]}" for e in ENDPOINTS])
@fuzz_settings(max_examples=16)
@given(name=fz.names, ref=fz.references,
       other=st.one_of(fz.names, st.text(max_size=40)), encode=st.booleans(),
       body=st.binary(max_size=64))
def test_every_endpoint_with_edge_names_and_references(
        target: Target, tally: Tally, endpoint: tuple[str, str, str], name: str, ref: str,
        other: str, encode: bool, body: bytes) -> None:
    """Names, tags, digests and upload ids at and past the grammar's edges, traversal in every
    spelling, in path and query: every answer is a 4xx/2xx/3xx with the spec's headers."""
    label, method, template = endpoint
    data = head(method, fill(template, name, ref, other, encode), {"Connection": "close"},
                len(body)) + body
    target.send(tally, label, data)


def _live_upload(target: Target, name: str = "fuzz/uploads") -> str:
    """A fresh upload session's URL path and query, as the server gave it."""
    location = target.client.start_upload(name).headers["Location"]
    return location.split(target.server.url, 1)[-1]


@pytest.mark.parametrize("label", sorted(BY_LABEL))
@fuzz_settings(max_examples=14)
@given(headers=st.lists(st.tuples(fz.header_names, fz.header_values), max_size=4)
       | st.just([("X-Flood", "v")] * 250) | st.just([("X-Huge", "h" * 70_000)]),
       body=st.binary(max_size=256))
def test_every_endpoint_with_hostile_headers(target: Target, tally: Tally, label: str,
                                             headers: list[tuple[str, str]], body: bytes) -> None:
    """Bad `Range`, `Content-Range`, `Content-Length`, `Content-Type`, `Accept`, huge values,
    more headers or bytes than `appliance.limits` allow, and junk, on requests that would
    otherwise succeed (real blobs, manifests and live uploads)."""
    method, template = BY_LABEL[label][0][1:]
    digest = target.image.layers and fz.sha256(target.image.layers[0])
    if label.startswith("upload_") and label != "upload_post":
        path = _live_upload(target)
        target_bytes = (path + (f"&digest={digest}" if label == "upload_put" else "")).encode()
    else:
        ref = target.image.digest if label.startswith("manifest") else digest
        if label == "manifest_put":
            ref, body = "hdr", target.image.manifest
        name = "fuzz/headers" if label.endswith("delete") else KEEP
        target_bytes = fill(template, name, ref, KEEP, False)
    given_length = any(key.lower() in ("content-length", "transfer-encoding") for key, _ in headers)
    data = head(method, target_bytes, [("Connection", "close"), *headers],
                None if given_length else len(body)) + body
    # A fuzzed length may promise more than is sent: hang up rather than wait for the timeout.
    target.send(tally, label, data, half_close=given_length)


@fuzz_settings(max_examples=150)
@given(data=st.data(), reference=st.one_of(fz.valid_tags.map(lambda t: "f" + t[:127]), fz.digests),
       content_type=st.sampled_from(fz.MEDIA_TYPES))
def test_malformed_and_oversized_manifests(target: Target, tally: Tally, data: st.DataObject,
                                           reference: str, content_type: str) -> None:
    """Random JSON, wrong schemaVersion, descriptors of missing blobs, media types that differ
    from the body's, invalid UTF-8, truncated JSON, deep nesting and bodies over 4 MiB."""
    body = data.draw(fz.manifests(target.known))
    request = head("PUT", fill("/v2/{name}/manifests/{ref}", KEEP, reference, "", False),
                   {"Content-Type": content_type, "Connection": "close"}, len(body)) + body
    target.send(tally, "manifest_put", request)


BODY_ENDPOINTS = ("upload_patch", "upload_put", "upload_post", "manifest_put")


@fuzz_settings(max_examples=100)
@given(label=st.sampled_from(BODY_ENDPOINTS), declared=st.integers(0, 4096),
       sent=st.integers(0, 4096),
       chunked=st.sampled_from([None, "valid", "bad-size", "no-end", "huge-size"]))
def test_truncated_and_overlong_bodies(target: Target, tally: Tally, label: str, declared: int,
                                       sent: int, chunked: str | None) -> None:
    """A body shorter than its `Content-Length` (then the client hangs up), longer than it (the
    rest is parsed as a next request), or chunked with bad sizes: never a 5xx."""
    digest = fz.sha256(b"x" * sent)
    if label in ("upload_patch", "upload_put"):
        path = _live_upload(target) + (f"&digest={digest}" if label == "upload_put" else "")
    elif label == "upload_post":
        path = f"/v2/fuzz/bodies/blobs/uploads/?digest={digest}"
    else:
        path = "/v2/fuzz/bodies/manifests/trunc"
    method = "POST" if label == "upload_post" else "PATCH" if label == "upload_patch" else "PUT"
    payload = b"x" * sent
    if chunked is None:
        data = head(method, path.encode(), {"Content-Type": DOCKER_MANIFEST}, declared) + payload
    else:
        size = {"valid": f"{sent:x}", "bad-size": "zz", "no-end": f"{sent:x}",
                "huge-size": "f" * 40}[chunked]
        end = b"" if chunked == "no-end" else b"\r\n0\r\n\r\n"
        data = head(method, path.encode(), {"Transfer-Encoding": "chunked"}) + \
            size.encode() + b"\r\n" + payload + end
    target.send(tally, label, data, half_close=True)


def test_a_newline_smuggled_in_by_percent_encoding_is_refused(target: Target, tally: Tally) -> None:
    """References are percent-decoded, and the grammar's `$` let a trailing "\\n" through: a
    manifest PUT to `v1%0a` made a tag folder named "v1\\n", and `…%0a` digests were taken."""
    layer = fz.sha256(target.image.layers[0])
    cases = [("PUT", f"/v2/{KEEP}/manifests/v1%0a", "TAG_INVALID"),
             ("GET", f"/v2/{KEEP}/blobs/{layer}%0a", "DIGEST_INVALID"),
             ("PUT", f"/v2/{KEEP}/manifests/{target.image.digest}%0A", "DIGEST_INVALID")]
    for method, path, code in cases:
        body = target.image.manifest if method == "PUT" else b""
        data = head(method, path.encode(), {"Content-Type": OCI_MANIFEST, "Connection": "close"},
                    len(body)) + body
        answer = target.send(tally, "manifest_put" if method == "PUT" else "blob_get", data)
        assert answer.status == 400, (path, answer)
        assert code.encode() in answer.body
    assert not any("\n" in tag for tag in os.listdir(target.server.root / _TAGS.format(KEEP)))


def test_clients_hanging_up_while_their_request_is_handled(target: Target, tally: Tally) -> None:
    """A whole body, then the client hangs up at once: Twisted drops the request while the
    handler is storing the body in a thread. It must finish without a traceback (the body used
    to be closed under it) and leave no spooled file (checked below)."""
    for size in (10, 300_000, 2_000_000):
        blob = bytes([size % 251]) * size
        for path in (f"/v2/fuzz/hangup/blobs/uploads/?digest={fz.sha256(blob)}",
                     _live_upload(target, "fuzz/hangup")):
            data = head("PATCH" if "_state" in path else "POST", path.encode(), {}, size) + blob
            target.send(tally, "hang_up", data, half_close=True)
    time.sleep(1)  # the handlers finish after their clients left


def test_slowloris_and_abandoned_uploads(target: Target, tally: Tally) -> None:
    """Slow clients (headers a byte at a time, a body that stops) are cut off while others are
    served; uploads abandoned mid-body leave no spooled file behind."""
    address = ("127.0.0.1", target.server.port)
    slow = [socket.create_connection(address, timeout=15) for _ in range(5)]
    for index, sock in enumerate(slow):
        path = _live_upload(target) if index % 2 else "/v2/"
        sock.sendall(f"PATCH {path} HTTP/1.1\r\nHost: x\r\n".encode())
    started = time.monotonic()
    abandoned = [_live_upload(target) for _ in range(3)]
    for path in abandoned:  # half a body, then the client disappears
        with socket.create_connection(address, timeout=15) as sock:
            sock.sendall(head("PATCH", path.encode(), {}, 100_000) + b"y" * 40_000)
    while time.monotonic() - started < HEADER_TIMEOUT + 1:
        for sock in slow:
            with contextlib.suppress(OSError):  # already cut off
                sock.sendall(b"X")
        assert requests.get(f"{target.server.url}/v2/", timeout=5).status_code == 200
        time.sleep(0.2)
    for sock in slow:
        sock.settimeout(5)
        answer = b""
        try:
            while chunk := sock.recv(4096):
                answer += chunk
        except OSError:
            pass
        sock.close()
        tally.cases["slowloris"] += 1
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    for path in abandoned:
        status = target.client.request("GET", path)
        tally.cases["abandoned_upload"] += 1
        assert status.status_code == 204
        assert status.headers["Range"] == "0-0"
    spool = target.server.root / "appliance" / "spool"
    assert not spool.exists() or list(spool.iterdir()) == []


def test_after_the_run(target: Target, tally: Tally) -> None:
    """No 5xx, nothing outside the root, the server healthy and the kept image intact."""
    after_the_run(target.server, tally, target.files)
    client = target.client
    assert client.request("GET", "/v2/").status_code == 200
    manifest = client.request("GET", f"/v2/{KEEP}/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert manifest.content == target.image.manifest
    for blob in (target.image.config, *target.image.layers):
        assert client.request("GET", f"/v2/{KEEP}/blobs/{fz.sha256(blob)}").content == blob
