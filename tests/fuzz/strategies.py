"""Hypothesis strategies for the registry's inputs, at and beyond the grammar's edges.

Names, tags and digests come in three kinds: valid (up to the maximum lengths), just past the
edges (256-character names, 129-character tags, wrong digest lengths), and hostile (path
traversal in every spelling, NUL, backslashes, unicode look-alikes, separators in a row).
Every hostile name carries `MARKER`, so a file the server wrongly wrote outside its storage root
can be found by name afterwards.
"""

from __future__ import annotations

import hashlib
import json
import string
from typing import Any

from hypothesis import strategies as st

from appliance.oci.reference import MAX_NAME_LENGTH
from tests.api.client import (
    DOCKER_CONFIG,
    DOCKER_LAYER,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
)

MARKER = "fuzzmark"
TRAVERSALS = ("..", "%2e%2e", "%2E%2E", ".%2e", "%2e.", "..%2f", "%2f..", "%2F", "%00", "\\",
              "..\\..", "%5c", "%5C..", "%252e%252e", "%c0%ae%c0%ae", "\u2025", "\uff0e\uff0e",
              ".", "", "~", "%0a", "%0d%0a", "\x00", "..;", "%3b", "*", "?x=", "#")
MEDIA_TYPES = (DOCKER_MANIFEST, DOCKER_LIST, OCI_MANIFEST, OCI_INDEX, OCI_CONFIG, OCI_LAYER,
               DOCKER_CONFIG, DOCKER_LAYER, OCI_EMPTY,
               "application/vnd.docker.distribution.manifest.v1+prettyjws",
               "application/json", "text/plain", "",
               "application/vnd.oci.image.manifest.v1+json; x=1",
               "*/*", "application/vnd.oci.image.manifest.v1+json\x00")

_ALNUM = string.ascii_lowercase + string.digits
component = st.from_regex(r"\A[a-z0-9]{1,8}(?:(?:\.|_|__|-{1,3})[a-z0-9]{1,8}){0,2}\Z")
valid_names = st.lists(component, min_size=1, max_size=4).map("/".join)


@st.composite
def long_names(draw: st.DrawFn) -> str:
    """Valid components summing to just under, at or just over the 255-character limit."""
    length = draw(st.sampled_from([MAX_NAME_LENGTH - 1, MAX_NAME_LENGTH, MAX_NAME_LENGTH + 1,
                                   MAX_NAME_LENGTH * 4]))
    parts, left = [], length
    while left > 0:
        size = min(left, draw(st.integers(1, 60)))
        parts.append(draw(st.text(_ALNUM, min_size=size, max_size=size)))
        left -= size + 1
    return "/".join(parts)[:length]


@st.composite
def hostile_names(draw: st.DrawFn) -> str:
    """A name with a traversal or an illegal character somewhere among marked components."""
    parts = [MARKER, *draw(st.lists(st.sampled_from([MARKER, "a", "b-c"]), max_size=2))]
    bad = draw(st.one_of(st.sampled_from(TRAVERSALS), st.text(min_size=1, max_size=6),
                         st.sampled_from(["A", "a__-b", "a..b", "-a", "a-", "_a", "a___b", "é",
                                          "a/", "/a", "a//b"])))
    parts.insert(draw(st.integers(0, len(parts))), bad)
    return "/".join(parts)


names = st.one_of(valid_names, long_names(), hostile_names())

valid_tags = st.from_regex(r"\A[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}\Z")
tags = st.one_of(
    valid_tags,
    st.text(string.ascii_letters, min_size=129, max_size=129),  # one past the grammar
    st.sampled_from(["-lead", ".lead", "a:b", "a@b", "a/b", MARKER + "/..", "%2e%2e", "é", "\x00"]),
    st.builds(lambda t, b: t + b, valid_tags, st.sampled_from(TRAVERSALS)),
    st.text(min_size=1, max_size=20),
)


def hexes(length: int) -> st.SearchStrategy[str]:
    return st.text("0123456789abcdef", min_size=length, max_size=length)


digests = st.one_of(
    hexes(64).map("sha256:".__add__),
    hexes(128).map("sha512:".__add__),
    hexes(96).map("sha384:".__add__),
    st.integers(0, 200).flatmap(hexes).map("sha256:".__add__),
    hexes(64).map(lambda h: "sha256:" + h.upper()),
    st.sampled_from(["sha256:", "sha256", ":abc", "md5:d41d8cd98f00b204e9800998ecf8427e",
                     "sha256+b64:AAAA", "SHA256:" + "a" * 64, "sha256:" + "../" * 10,
                     "sha256:" + "a" * 62 + "%00", "sha256%3a" + "a" * 64]),
    st.builds(lambda a, h: f"{a}:{h}", st.text(min_size=0, max_size=12), st.text(max_size=70)),
)
references = st.one_of(tags, digests)


def quoted(text: str) -> bytes:
    """The text as it would sit in a request target: raw bytes, with `%` sequences kept."""
    return text.encode("utf-8", "surrogatepass")


# --- headers -------------------------------------------------------------------------------

numbers = st.one_of(st.integers(-5, 10**20).map(str),
                    st.sampled_from(["", "abc", "1.5", "0x10", "+5", "-0", " 5", "5 5", "١٢"]))
ranges = st.one_of(
    st.builds(lambda a, b: f"bytes={a}-{b}", st.just("") | numbers, st.just("") | numbers),
    st.sampled_from(["bytes=0-0,5-9", "bytes=-", "items=0-5", "bytes 0-5", "bytes=5-2", "=", ""]),
    st.text(max_size=30),
)
content_ranges = st.one_of(
    st.builds(lambda a, b: f"{a}-{b}", numbers, numbers),
    st.builds(lambda a, b, t: f"bytes {a}-{b}/{t}", numbers, numbers, numbers | st.just("*")),
    st.text(max_size=30),
)
header_names = st.sampled_from(["Range", "Content-Range", "Content-Length", "Content-Type",
                                "Accept", "Authorization", "Transfer-Encoding", "Host",
                                "Expect", "If-None-Match", "X-Forwarded-Proto", "X-Junk"])
header_values = st.one_of(st.text(max_size=40), st.text(min_size=2000, max_size=9000),
                          numbers, ranges, st.sampled_from(MEDIA_TYPES),
                          st.sampled_from(["Basic !!!", "Basic " + "A" * 5000, "Bearer x.y.z",
                                           "Bearer", "chunked", "gzip, chunked", "100-continue"]))


# --- manifests -----------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


def descriptor_of(known: list[tuple[str, int]]) -> st.SearchStrategy[dict[str, Any]]:
    """Descriptors pointing at `known` blobs (digest, size), at missing ones, or malformed."""
    real = st.sampled_from(known).map(lambda k: {"digest": k[0], "size": k[1]})
    missing = hexes(64).map(lambda h: {"digest": "sha256:" + h, "size": 10})
    return st.builds(
        lambda base, media_type, size, extra: {**base, "mediaType": media_type, **size, **extra},
        st.one_of(real, missing, st.fixed_dictionaries({"digest": digests})),
        st.sampled_from(MEDIA_TYPES),
        st.one_of(st.just({}), st.fixed_dictionaries({"size": st.one_of(
            st.integers(-10, 2**64), st.text(max_size=5), st.none())})),
        st.one_of(st.just({}), st.fixed_dictionaries({"annotations": json_values}),
                  st.fixed_dictionaries({"platform": json_values}),
                  st.fixed_dictionaries({"urls": json_values})),
    )


def manifests(known: list[tuple[str, int]]) -> st.SearchStrategy[bytes]:
    """Manifest bodies: random JSON, near-valid image manifests and indexes with one thing off,
    invalid UTF-8 and JSON, and bodies over the 4 MiB limit."""
    descriptor = descriptor_of(known)
    image = st.fixed_dictionaries(
        {"schemaVersion": st.sampled_from([2, 1, 3, 0, -1, "2", 2.0, None, 10**30]),
         "mediaType": st.sampled_from(MEDIA_TYPES),
         "config": st.one_of(descriptor, json_values),
         "layers": st.one_of(st.lists(descriptor, max_size=3), json_values)},
        optional={"subject": descriptor, "annotations": json_values,
                  "artifactType": st.text(max_size=30),
                  "manifests": st.lists(descriptor, max_size=2)})
    index = st.fixed_dictionaries(
        {"schemaVersion": st.sampled_from([2, 1]), "mediaType": st.sampled_from(MEDIA_TYPES),
         "manifests": st.one_of(st.lists(descriptor, max_size=3), json_values)})
    encoded = st.one_of(image, index, json_values).map(lambda doc: json.dumps(doc).encode())
    return st.one_of(
        encoded,
        st.binary(max_size=200),
        encoded.map(lambda b: b[: len(b) // 2]),  # truncated JSON
        st.just(b'{"schemaVersion": 2, "x": "' + b"a" * (4 * 1024 * 1024) + b'"}'),
        st.just(b"\xff\xfe{}"),
        st.just(b'{"schemaVersion": 2, "layers": [' + b"[" * 5000 + b"]" * 5000 + b"]}"),
    )


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()
