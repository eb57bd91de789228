"""Differential test: our /v2/ API against CNCF Distribution 2.8.2, request for request.

Both registries (ours, and ``/usr/bin/docker-registry`` 2.8.2, the reference we claim to
behave like) start on loopback with plain HTTP, no auth, empty storage and deletes enabled.
A fixed, deterministic corpus of request scenarios (no randomness: every byte is a constant)
is replayed against each server in the same order; multi-step flows follow the ``Location``
that each server itself returned.  For every request the test reduces the answer to what a
client depends on (see :class:`Answer`) and compares the two.

What it proves: every place where we answer differently from Distribution is either listed
in :data:`ALLOWED` with a one-line reason (a deliberate difference), or makes the test fail.
A stale :data:`ALLOWED` entry (a difference that no longer occurs) fails as well, so the list
stays an exact account of how we diverge.

It runs in well under 20 s (about 400 requests per server), so it is not marked ``e2e``; it
needs Distribution's ``/usr/bin/docker-registry`` (``E2E_DISTRIBUTION`` overrides the path).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import astuple, dataclass, field
from typing import Any

import pytest
import requests

from tests.api.client import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    DOCKER_SCHEMA1_SIGNED,
    OCI_INDEX,
    OCI_MANIFEST,
    digest_of,
    image_manifest,
    index_manifest,
)
from tests.e2e.tools import Distribution
from tests.server import ApplianceServer, base_config

# ------------------------------------------------------------------------------ fixed corpus

CONFIG = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
LAYER = bytes(range(256)) * 2  # 512 bytes, so ranges have room
OTHER = b"a blob no manifest refers to"
CHUNK1, CHUNK2 = b"first chunk, 23 bytes..", b"second chunk"
ZERO_DIGEST = "sha256:" + "0" * 64  # well formed, never stored
MISSING_UPLOAD = "00000000-0000-4000-8000-000000000000"  # UUID-shaped, never issued


def docker_image() -> bytes:
    return image_manifest(CONFIG, [LAYER], DOCKER_MANIFEST)


def oci_image() -> bytes:
    return image_manifest(CONFIG, [LAYER], OCI_MANIFEST)


# ------------------------------------------------------------------------------- observation


@dataclass(frozen=True)
class Answer:
    """The parts of a response a client relies on; bodies, dates, upload ids and Location
    values differ legitimately between servers and are left out."""

    status: int
    errors: tuple[str, ...] | None = None  # sorted set of errors[].code on 4xx/5xx
    digest: str | None = None  # Docker-Content-Digest
    location: bool | None = None  # Location present, on 201/202 only
    length: str | None = None  # Content-Length, on successful HEAD only
    range: str | None = None  # Range (upload progress)
    content_range: str | None = None  # Content-Range (blob range reads)
    listing: tuple[Any, ...] | None = None  # (names, Link present) for tags/catalog
    truncated: bool | None = None  # body shorter than its Content-Length

    def __str__(self) -> str:
        names = ("status", "errors", "digest", "location", "length", "range", "content_range",
                 "listing", "truncated")
        return " ".join(f"{n}={v}" if n != "status" else str(v)
                        for n, v in zip(names, astuple(self), strict=True) if v is not None)


def error_codes(response: requests.Response) -> tuple[str, ...] | None:
    """The set of error codes in a v2 error body, or None if the body is not one."""
    if response.status_code < 400:
        return None
    try:
        errors = response.json().get("errors")
        return tuple(sorted({str(e.get("code")) for e in errors}))
    except (ValueError, AttributeError, TypeError):
        return None


def listing_of(response: requests.Response) -> tuple[Any, ...] | None:
    """(names, has Link) of a 200 tags/catalog answer: pagination is only visible there."""
    if response.status_code != 200:
        return None
    try:
        body = response.json()
    except ValueError:
        return ("<not json>",)
    names = body.get("tags", body.get("repositories"))
    return (tuple(names) if isinstance(names, list) else names, "Link" in response.headers)


def read_body(response: requests.Response) -> bool | None:
    """Read the body; True if it ended before its Content-Length (the answer is still kept:
    Distribution 2.8 does this on some 416s, and a status is worth comparing)."""
    try:
        response.content  # noqa: B018 - reads and caches the body
    except requests.RequestException:
        response._content = b""  # what did arrive is not a usable body
        return True
    return None


def answer_of(response: requests.Response, listing: bool, truncated: bool | None) -> Answer:
    headers = response.headers
    method = response.request.method
    ok = response.status_code < 300  # an error's length is only that of its body
    return Answer(
        status=response.status_code,
        errors=error_codes(response),
        digest=headers.get("Docker-Content-Digest"),
        location=("Location" in headers) if response.status_code in (201, 202) else None,
        length=headers.get("Content-Length") if method == "HEAD" and ok else None,
        range=headers.get("Range"),
        content_range=headers.get("Content-Range"),
        listing=listing_of(response) if listing else None,
        truncated=truncated,
    )


@dataclass
class Recorder:
    """Sends a scenario's requests to one server and keeps one labelled Answer per request.

    Paths are sent byte for byte (``..`` and ``//`` are not normalised away) after `base`;
    absolute URLs (a server's own ``Location``) are followed as given.
    """

    base: str
    steps: list[tuple[str, Answer]] = field(default_factory=list)
    session: requests.Session = field(default_factory=requests.Session)
    at: str = "/v2/no-upload-started"  # the current upload session's URL, see `upload`

    def send(
        self,
        label: str,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        listing: bool = False,
    ) -> requests.Response:
        assert label not in dict(self.steps), f"duplicate step label {label!r}"
        url = path if "://" in path else self.base + path  # urljoin would drop `..`
        prepared = self.session.prepare_request(
            requests.Request(method, url, headers=headers or {}, data=body)
        )
        prepared.url = url  # undo requests' dot-segment normalisation
        response = self.session.send(prepared, timeout=30, allow_redirects=False, stream=True)
        truncated = read_body(response)
        self.steps.append((label, answer_of(response, listing, truncated)))
        return response

    def upload(self, label: str, method: str, path: str, **kwargs: Any) -> requests.Response:
        """A step of an upload session: later steps go to the Location it last returned
        (``self.at``), as a client does; an error answer leaves ``self.at`` unchanged."""
        response = self.send(label, method, path, **kwargs)
        if response.status_code < 300 and "Location" in response.headers:
            self.at = response.headers["Location"]
        return response

    def push_blob(
        self, label: str, repo: str, data: bytes, algorithm: str = "sha256"
    ) -> requests.Response:
        """POST then PUT with the body: the upload both servers implement (Distribution 2.8
        ignores `?digest=` on POST, so a monolithic POST would leave setup half done)."""
        self.upload(f"{label} POST", "POST", f"/v2/{repo}/blobs/uploads/")
        return self.send(f"{label} PUT", "PUT",
                         with_query(self.at, f"digest={digest_of(data, algorithm)}"),
                         headers={"Content-Type": "application/octet-stream"}, body=data)

    def push_manifest(
        self, label: str, repo: str, ref: str, body: bytes, media_type: str
    ) -> requests.Response:
        return self.send(label, "PUT", f"/v2/{repo}/manifests/{ref}",
                         headers={"Content-Type": media_type}, body=body)

    def push_image(self, prefix: str, repo: str, tag: str, media_type: str) -> bytes:
        """Config and layer, then the manifest by tag; returns the manifest bytes."""
        self.push_blob(f"{prefix} config", repo, CONFIG)
        self.push_blob(f"{prefix} layer", repo, LAYER)
        body = image_manifest(CONFIG, [LAYER], media_type)
        self.push_manifest(f"{prefix} manifest", repo, tag, body, media_type)
        return body


def with_query(location: str, query: str) -> str:
    return location + ("&" if "?" in location else "?") + query


Scenario = Callable[[Recorder], None]
SCENARIOS: dict[str, Scenario] = {}


def scenario(fn: Scenario) -> Scenario:
    """Register a scenario; they run in definition order, the same order on both servers."""
    SCENARIOS[fn.__name__] = fn
    return fn


def run_scenario(name: str, base: str) -> list[tuple[str, Answer]]:
    """One scenario against the server at `base`: its (step label, answer) list, in order."""
    recorder = Recorder(base)
    SCENARIOS[name](recorder)
    return recorder.steps


def replay(base: str) -> dict[tuple[str, str], Answer]:
    """Every scenario against one server: {(scenario, step): answer}."""
    return {(name, label): answer
            for name in SCENARIOS for label, answer in run_scenario(name, base)}


# ------------------------------------------------------------------------------- scenarios


@scenario
def base_routes(r: Recorder) -> None:
    r.send("GET /v2/", "GET", "/v2/")
    r.send("HEAD /v2/", "HEAD", "/v2/")
    r.send("GET /v2", "GET", "/v2")
    r.send("POST /v2/", "POST", "/v2/")
    r.send("DELETE /v2/", "DELETE", "/v2/")
    r.send("GET /v2/nothing", "GET", "/v2/nothing")
    r.send("GET /v2/repo/nothing/x", "GET", "/v2/repo/nothing/x")
    r.send("GET /v2/repo/blobs/", "GET", "/v2/repo/blobs/")
    r.send("GET /v2/repo/manifests/", "GET", "/v2/repo/manifests/")
    r.send("GET /v3/", "GET", "/v3/")


PAGES = ["", "?n=0", "?n=1", "?n=2", "?n=-1", "?n=abc", "?n=1&last=list/a", "?last=b",
         "?last=list/b", "?last=zzz", "?n=100000"]


@scenario
def listings(r: Recorder) -> None:
    """Tags and catalog pagination.  Runs second, before any other scenario has made a
    repository, so the catalog holds exactly list/a, list/b, list/c on both servers."""
    for repo in ("list/c", "list/a", "list/b"):
        r.push_blob(f"{repo} config", repo, CONFIG)
        r.push_blob(f"{repo} layer", repo, LAYER)
        for tag in ("c", "a", "b"):
            r.push_manifest(f"{repo} tag {tag}", repo, tag, docker_image(), DOCKER_MANIFEST)
    for page in PAGES:
        r.send(f"tags{page}", "GET", f"/v2/list/a/tags/list{page}", listing=True)
        r.send(f"catalog{page}", "GET", f"/v2/_catalog{page}", listing=True)
    r.send("tags of unknown repo", "GET", "/v2/nowhere/tags/list", listing=True)
    r.send("HEAD catalog", "HEAD", "/v2/_catalog")
    r.send("HEAD tags", "HEAD", "/v2/list/a/tags/list")


@scenario
def wrong_methods(r: Recorder) -> None:
    """A known route with a method it does not serve."""
    r.push_image("setup", "methods", "v1", DOCKER_MANIFEST)
    blob = f"/v2/methods/blobs/{digest_of(LAYER)}"
    for method, path in [
        ("PUT", "/v2/_catalog"),
        ("POST", "/v2/_catalog"),
        ("DELETE", "/v2/_catalog"),
        ("PUT", "/v2/methods/tags/list"),
        ("DELETE", "/v2/methods/tags/list"),
        ("POST", "/v2/methods/manifests/v1"),
        ("PATCH", "/v2/methods/manifests/v1"),
        ("PUT", blob),
        ("POST", blob),
        ("PATCH", blob),
        ("GET", "/v2/methods/blobs/uploads/"),
        ("PUT", "/v2/methods/blobs/uploads/"),
        ("DELETE", "/v2/methods/blobs/uploads/"),
        ("POST", f"/v2/methods/blobs/uploads/{MISSING_UPLOAD}"),
    ]:
        r.send(f"{method} {path.replace(digest_of(LAYER), '<digest>')}", method, path)


NAMES = {
    "lower": "abc",
    "nested": "a/b/c/d",
    "uppercase": "ABC",
    "dot-dot segment": "a/../b",
    "dot segment": "a/./b",
    "trailing slash": "abc/",
    "empty component": "a//b",
    "leading dash": "-a",
    "trailing dash": "a-",
    "double underscore": "a__b",
    "triple underscore": "a___b",
    "double dash": "a--b",
    "dot": "a.b",
    "double dot": "a..b",
    "dot underscore": "a._b",
    "255 chars": "/".join(["a" * 127, "b" * 127]),
    "256 chars": "/".join(["a" * 128, "b" * 127]),
    "300 chars one component": "a" * 300,
    "percent slash": "a%2Fb",
}


@scenario
def repository_names(r: Recorder) -> None:
    """Names at and past the edges of the name grammar and its 255-character limit."""
    for label, name in NAMES.items():
        r.send(f"tags {label}", "GET", f"/v2/{name}/tags/list")
        r.send(f"manifest {label}", "HEAD", f"/v2/{name}/manifests/latest")
        r.send(f"blob {label}", "HEAD", f"/v2/{name}/blobs/{ZERO_DIGEST}")


TAGS = {
    "128 chars": "t" * 128,
    "129 chars": "t" * 129,
    "leading dot": ".x",
    "leading dash": "-x",
    "leading underscore": "_x",
    "mixed": "X.y-z_9",
    "plus": "a+b",
    "colon": "a:b",
}


@scenario
def tag_names(r: Recorder) -> None:
    """Tags at and past the edges of ``[\\w][\\w.-]{0,127}``: PUT then GET each."""
    r.push_blob("config", "tags", CONFIG)
    r.push_blob("layer", "tags", LAYER)
    for label, tag in TAGS.items():
        r.push_manifest(f"PUT {label}", "tags", tag, docker_image(), DOCKER_MANIFEST)
        r.send(f"GET {label}", "GET", f"/v2/tags/manifests/{tag}",
               headers={"Accept": DOCKER_MANIFEST})


DIGESTS = {
    "short hex": "sha256:abc",
    "uppercase hex": "sha256:" + "A" * 64,
    "65 hex": "sha256:" + "0" * 65,
    "unknown algorithm": "md5:" + "0" * 32,
    "sha512 form": "sha512:" + "0" * 128,
    "sha384 form": "sha384:" + "0" * 96,
    "no algorithm": "0" * 64,
    "empty hex": "sha256:",
}


@scenario
def digest_forms(r: Recorder) -> None:
    """Malformed or unusual digests in blob and manifest URLs."""
    for label, digest in DIGESTS.items():
        r.send(f"HEAD blob {label}", "HEAD", f"/v2/digests/blobs/{digest}")
        r.send(f"GET manifest {label}", "GET", f"/v2/digests/manifests/{digest}")
        r.send(f"DELETE blob {label}", "DELETE", f"/v2/digests/blobs/{digest}")
    r.send("PUT manifest sha512 digest", "PUT",
           f"/v2/digests/manifests/{digest_of(b'{}', 'sha512')}",
           headers={"Content-Type": DOCKER_MANIFEST}, body=b"{}")
    r.push_blob("upload sha512", "digests", OTHER, "sha512")
    r.send("HEAD sha512 blob", "HEAD", f"/v2/digests/blobs/{digest_of(OTHER, 'sha512')}")


RANGES = {
    "first ten": "bytes=0-9",
    "suffix": "bytes=-10",
    "open": "bytes=5-",
    "last byte": "bytes=511-511",
    "end past size": "bytes=500-600",
    "start past size": "bytes=600-700",
    "start at size": "bytes=512-",
    "multiple": "bytes=0-1,5-6",
    "reversed": "bytes=9-0",
    "garbage": "bytes=abc",
    "other unit": "items=0-9",
    "zero suffix": "bytes=-0",
}


@scenario
def blobs(r: Recorder) -> None:
    path = f"/v2/blobs/blobs/{digest_of(LAYER)}"
    r.send("HEAD unknown", "HEAD", path)
    r.send("GET unknown", "GET", path)
    r.push_blob("push", "blobs", LAYER)
    r.send("HEAD existing", "HEAD", path)
    r.send("GET existing", "GET", path)
    for label, value in RANGES.items():
        r.send(f"GET range {label}", "GET", path, headers={"Range": value})
    r.send("HEAD range", "HEAD", path, headers={"Range": "bytes=0-9"})
    r.send("HEAD other repo", "HEAD", f"/v2/blobs-other/blobs/{digest_of(LAYER)}")
    r.send("DELETE existing", "DELETE", path)
    r.send("HEAD deleted", "HEAD", path)
    r.send("DELETE deleted", "DELETE", path)
    r.send("DELETE unknown", "DELETE", f"/v2/blobs/blobs/{ZERO_DIGEST}")


@scenario
def monolithic_uploads(r: Recorder) -> None:
    r.send("right digest", "POST", f"/v2/mono/blobs/uploads/?digest={digest_of(OTHER)}",
           body=OTHER)
    r.send("HEAD after right", "HEAD", f"/v2/mono/blobs/{digest_of(OTHER)}")
    r.send("wrong digest", "POST", f"/v2/mono/blobs/uploads/?digest={digest_of(LAYER)}",
           body=OTHER)
    r.send("HEAD after wrong", "HEAD", f"/v2/mono/blobs/{digest_of(LAYER)}")
    r.send("malformed digest", "POST", "/v2/mono/blobs/uploads/?digest=sha256:xyz", body=OTHER)
    r.send("empty body with digest", "POST",
           f"/v2/mono/blobs/uploads/?digest={digest_of(b'')}")


@scenario
def post_then_put(r: Recorder) -> None:
    r.upload("POST", "POST", "/v2/putflow/blobs/uploads/")
    started = r.at
    r.upload("PUT body", "PUT", with_query(started, f"digest={digest_of(OTHER)}"),
             headers={"Content-Type": "application/octet-stream"}, body=OTHER)
    r.send("HEAD blob", "HEAD", f"/v2/putflow/blobs/{digest_of(OTHER)}")
    r.send("GET finished upload", "GET", started)


OCTETS = {"Content-Type": "application/octet-stream"}


@scenario
def chunked_upload(r: Recorder) -> None:
    """PATCH without, then with a Content-Range at the offset; status (GET, HEAD) between."""
    end = len(CHUNK1) + len(CHUNK2) - 1
    r.upload("POST", "POST", "/v2/chunks/blobs/uploads/")
    r.upload("PATCH no Content-Range", "PATCH", r.at, body=CHUNK1, headers=OCTETS)
    r.upload("status after first", "GET", r.at)
    r.upload("PATCH at offset", "PATCH", r.at, body=CHUNK2,
             headers={**OCTETS, "Content-Range": f"{len(CHUNK1)}-{end}"})
    r.upload("status after second", "GET", r.at)
    r.upload("HEAD status", "HEAD", r.at)
    r.upload("PUT digest", "PUT", with_query(r.at, f"digest={digest_of(CHUNK1 + CHUNK2)}"))
    r.send("HEAD blob", "HEAD", f"/v2/chunks/blobs/{digest_of(CHUNK1 + CHUNK2)}")


@scenario
def chunk_out_of_order(r: Recorder) -> None:
    """A Content-Range that does not start at the offset, or does not parse."""
    r.upload("POST", "POST", "/v2/chunks-bad/blobs/uploads/")
    r.upload("PATCH first", "PATCH", r.at, body=CHUNK1, headers=OCTETS)
    r.upload("PATCH not at offset", "PATCH", r.at, body=CHUNK2,
             headers={**OCTETS, "Content-Range": f"0-{len(CHUNK2) - 1}"})
    r.upload("status after bad range", "GET", r.at)
    r.upload("POST second", "POST", "/v2/chunks-bad/blobs/uploads/")
    r.upload("PATCH malformed range", "PATCH", r.at, body=CHUNK2,
             headers={**OCTETS, "Content-Range": "garbage"})
    r.upload("status after malformed range", "GET", r.at)


@scenario
def upload_put_errors(r: Recorder) -> None:
    for label, query in [("no digest", ""), ("wrong digest", f"digest={digest_of(LAYER)}"),
                         ("malformed digest", "digest=sha256:xyz")]:
        r.upload(f"POST for {label}", "POST", "/v2/puterr/blobs/uploads/")
        r.upload(f"PUT {label}", "PUT", with_query(r.at, query) if query else r.at, body=OTHER)
        r.upload(f"status after {label}", "GET", r.at)
    r.send("HEAD wrong blob", "HEAD", f"/v2/puterr/blobs/{digest_of(LAYER)}")


@scenario
def upload_cancel(r: Recorder) -> None:
    r.upload("POST", "POST", "/v2/cancel/blobs/uploads/")
    r.upload("PATCH", "PATCH", r.at, body=CHUNK1)
    r.upload("DELETE", "DELETE", r.at)
    r.upload("GET after DELETE", "GET", r.at)
    r.upload("DELETE again", "DELETE", r.at)
    r.upload("PATCH after DELETE", "PATCH", r.at, body=CHUNK2)


@scenario
def unknown_upload(r: Recorder) -> None:
    for shape, upload in [("uuid", MISSING_UPLOAD), ("garbage", "not-an-upload")]:
        path = f"/v2/unknown/blobs/uploads/{upload}"
        r.send(f"GET {shape}", "GET", path)
        r.send(f"PATCH {shape}", "PATCH", path, body=CHUNK1)
        r.send(f"PUT {shape}", "PUT", f"{path}?digest={digest_of(CHUNK1)}", body=CHUNK1)
        r.send(f"DELETE {shape}", "DELETE", path)


@scenario
def cross_repo_mount(r: Recorder) -> None:
    r.push_blob("setup", "mount-src", LAYER)
    layer = digest_of(LAYER)
    for label, query in [
        ("existing blob", f"mount={layer}&from=mount-src"),
        ("missing blob", f"mount={ZERO_DIGEST}&from=mount-src"),
        ("missing from", f"mount={digest_of(OTHER)}"),
        ("unknown source repo", f"mount={layer}&from=nowhere"),
        ("invalid source name", f"mount={layer}&from=UPPER"),
        ("malformed digest", "mount=sha256:xyz&from=mount-src"),
    ]:
        r.send(label, "POST", f"/v2/mount-dst/blobs/uploads/?{query}")
    r.send("HEAD mounted", "HEAD", f"/v2/mount-dst/blobs/{layer}")


@scenario
def manifest_puts(r: Recorder) -> None:
    r.push_blob("config", "mput", CONFIG)
    r.push_blob("layer", "mput", LAYER)
    docker, oci = docker_image(), oci_image()
    r.push_manifest("docker by tag", "mput", "docker", docker, DOCKER_MANIFEST)
    r.push_manifest("oci by tag", "mput", "oci", oci, OCI_MANIFEST)
    r.push_manifest("docker by digest", "mput", digest_of(docker), docker, DOCKER_MANIFEST)
    r.push_manifest("oci by wrong digest", "mput", digest_of(docker), oci, OCI_MANIFEST)
    r.push_manifest("missing layer", "mput", "nolayer",
                    image_manifest(CONFIG, [OTHER], DOCKER_MANIFEST), DOCKER_MANIFEST)
    r.push_manifest("missing config", "mput", "noconfig",
                    image_manifest(OTHER, [LAYER], OCI_MANIFEST), OCI_MANIFEST)
    r.push_manifest("invalid JSON", "mput", "badjson", b"{not json", DOCKER_MANIFEST)
    r.push_manifest("empty body", "mput", "empty", b"", DOCKER_MANIFEST)
    r.push_manifest("text/plain type", "mput", "textplain", docker, "text/plain")
    r.push_manifest("empty Content-Type", "mput", "notype", oci, "")
    r.push_manifest("OCI body, docker type", "mput", "mismatch", oci, DOCKER_MANIFEST)
    r.push_manifest("unknown type", "mput", "unknowntype", docker, "application/x-nothing")
    schema1 = json.dumps({"schemaVersion": 1, "name": "mput", "tag": "v1",
                          "architecture": "amd64", "fsLayers": [], "history": []}).encode()
    r.push_manifest("schema1 unsigned", "mput", "schema1", schema1, DOCKER_SCHEMA1_SIGNED)
    r.push_manifest("schema1 as json", "mput", "schema1json", schema1, "application/json")
    no_version = json.dumps({"mediaType": OCI_MANIFEST, "config": {}, "layers": []}).encode()
    r.push_manifest("no schemaVersion", "mput", "noversion", no_version, OCI_MANIFEST)
    r.push_manifest("uppercase repo name", "MPUT", "v1", docker, DOCKER_MANIFEST)


ACCEPTS = {
    "no Accept": None,
    "docker": DOCKER_MANIFEST,
    "oci": OCI_MANIFEST,
    "list only": DOCKER_LIST,
    "schema1 only": DOCKER_SCHEMA1_SIGNED,
    "wildcard": "*/*",
    "docker+oci": f"{DOCKER_MANIFEST}, {OCI_MANIFEST}",
}


@scenario
def manifest_gets(r: Recorder) -> None:
    """GET/HEAD each stored manifest by tag and by digest under various Accept headers."""
    r.push_image("docker", "mget", "docker", DOCKER_MANIFEST)
    r.push_image("oci", "mget", "oci", OCI_MANIFEST)
    refs = {"docker tag": "docker", "oci tag": "oci",
            "docker digest": digest_of(docker_image()), "oci digest": digest_of(oci_image())}
    for ref_label, ref in refs.items():
        for accept_label, accept in ACCEPTS.items():
            headers = {"Accept": accept} if accept else {}
            for method in ("GET", "HEAD"):
                r.send(f"{method} {ref_label}, {accept_label}", method,
                       f"/v2/mget/manifests/{ref}", headers=headers)
    r.send("GET unknown tag", "GET", "/v2/mget/manifests/nope")
    r.send("HEAD unknown tag", "HEAD", "/v2/mget/manifests/nope")
    r.send("GET unknown digest", "GET", f"/v2/mget/manifests/{ZERO_DIGEST}")
    r.send("GET unknown repo", "GET", "/v2/nowhere/manifests/latest")


@scenario
def manifest_deletes(r: Recorder) -> None:
    body = r.push_image("setup", "mdel", "v1", DOCKER_MANIFEST)
    digest = digest_of(body)
    r.push_manifest("second tag", "mdel", "v2", body, DOCKER_MANIFEST)
    r.send("DELETE by tag", "DELETE", "/v2/mdel/manifests/v1")
    r.send("GET tag after tag DELETE", "GET", "/v2/mdel/manifests/v1",
           headers={"Accept": DOCKER_MANIFEST})
    r.send("DELETE by digest", "DELETE", f"/v2/mdel/manifests/{digest}")
    r.send("GET digest after DELETE", "GET", f"/v2/mdel/manifests/{digest}",
           headers={"Accept": DOCKER_MANIFEST})
    r.send("GET other tag after DELETE", "GET", "/v2/mdel/manifests/v2",
           headers={"Accept": DOCKER_MANIFEST})
    r.send("tags after DELETE", "GET", "/v2/mdel/tags/list", listing=True)
    r.send("DELETE digest again", "DELETE", f"/v2/mdel/manifests/{digest}")
    r.send("DELETE unknown tag", "DELETE", "/v2/mdel/manifests/nope")
    r.send("DELETE unknown repo", "DELETE", f"/v2/nowhere/manifests/{digest}")
    r.send("layer still there", "HEAD", f"/v2/mdel/blobs/{digest_of(LAYER)}")


@scenario
def manifest_indexes(r: Recorder) -> None:
    """Indexes whose children are missing, and one whose child exists."""
    child = r.push_image("child", "idx", "child", OCI_MANIFEST)
    present = {"mediaType": OCI_MANIFEST, "digest": digest_of(child), "size": len(child),
               "platform": {"architecture": "amd64", "os": "linux"}}
    missing = {**present, "digest": ZERO_DIGEST}
    docker_missing = {**missing, "mediaType": DOCKER_MANIFEST}
    r.push_manifest("OCI index, child present", "idx", "good",
                    index_manifest([present]), OCI_INDEX)
    r.push_manifest("OCI index, child missing", "idx", "bad", index_manifest([missing]),
                    OCI_INDEX)
    r.push_manifest("docker list, child missing", "idx", "badlist",
                    index_manifest([docker_missing], DOCKER_LIST), DOCKER_LIST)
    r.push_manifest("empty OCI index", "idx", "empty", index_manifest([]), OCI_INDEX)
    r.send("GET index, docker Accept", "GET", "/v2/idx/manifests/good",
           headers={"Accept": DOCKER_MANIFEST})
    r.send("GET index, index Accept", "GET", "/v2/idx/manifests/good",
           headers={"Accept": OCI_INDEX})


@scenario
def referrers(r: Recorder) -> None:
    """OCI 1.1 referrers and subject: newer than Distribution 2.8."""
    child = r.push_image("subject", "refs", "v1", OCI_MANIFEST)
    r.send("GET referrers", "GET", f"/v2/refs/referrers/{digest_of(child)}")
    with_subject = image_manifest(
        CONFIG, [LAYER], OCI_MANIFEST,
        subject={"mediaType": OCI_MANIFEST, "digest": digest_of(child), "size": len(child)})
    r.push_manifest("PUT with subject", "refs", digest_of(with_subject), with_subject,
                    OCI_MANIFEST)


@scenario
def catalog_contents(r: Recorder) -> None:
    """Runs last: which of all the repositories made so far the catalog lists."""
    r.send("catalog", "GET", "/v2/_catalog", listing=True)
    r.send("tags of repo with only blobs", "GET", "/v2/putflow/tags/list", listing=True)
    r.send("tags of repo with only an upload", "GET", "/v2/chunks-bad/tags/list", listing=True)


# ------------------------------------------------------------------------------ allow-list



def each(scenario_name: str, steps: Iterable[str], reason: str) -> dict[tuple[str, str], str]:
    """Allow several steps of one scenario for the same reason."""
    return {(scenario_name, step): reason for step in steps}


def both_methods(*steps: str) -> list[str]:
    return [f"{method} {step}" for step in steps for method in ("GET", "HEAD")]


BAD_NAMES = ["uppercase", "leading dash", "trailing dash", "triple underscore", "double dot",
             "dot underscore"]
UNCLEAN_PATHS = ["trailing slash", "empty component", "dot-dot segment", "dot segment"]
TOO_LONG = ["256 chars", "300 chars one component"]
BAD_TAGS = ["129 chars", "leading dot", "leading dash", "plus"]
NOT_DIGESTS = ["short hex", "uppercase hex", "65 hex", "unknown algorithm"]
SCHEMA1_REWRITE = ["no Accept", "oci", "list only", "schema1 only", "wildcard"]
OCI_REFUSED = ["no Accept", "docker", "list only", "schema1 only", "wildcard"]
UPLOAD_STEPS = [f"{m} {shape}" for shape in ("uuid", "garbage")
                for m in ("GET", "PATCH", "PUT", "DELETE")]
CONTENT_TYPE = ("a Content-Type that is no manifest type: we judge the manifest by its body's "
                "mediaType (the bytes stored and hashed); Distribution 2.8 refuses "
                "MANIFEST_INVALID")
BLOB_ONLY_REPO = ("a repository with only blobs or uploads holds no image: not in our catalog "
                  "(its tags/list is 404, as in Distribution); Distribution lists it")

#: Every difference we accept, with why.  Keys are (scenario, step).  Known bugs on our side
#: are NOT here: they fail the test until fixed.
ALLOWED: dict[tuple[str, str], str] = {
    ("base_routes", "GET /v2"): "Distribution's router redirects /v2 to /v2/ (301); we serve it",
    **each("base_routes", ["POST /v2/", "DELETE /v2/"],
           "the base route is GET/HEAD only for us (405); Distribution answers any method 200"),
    **each("base_routes", ["GET /v2/nothing", "GET /v2/repo/nothing/x", "GET /v2/repo/blobs/",
                           "GET /v2/repo/manifests/", "GET /v3/"],
           "unknown path: same 404, we add a v2 error body NOT_FOUND (Distribution: plain text)"),
    **each("wrong_methods", [f"{m} {path}" for m, path in [
        ("PUT", "/v2/_catalog"), ("POST", "/v2/_catalog"), ("DELETE", "/v2/_catalog"),
        ("PUT", "/v2/methods/tags/list"), ("DELETE", "/v2/methods/tags/list"),
        ("POST", "/v2/methods/manifests/v1"), ("PATCH", "/v2/methods/manifests/v1"),
        ("PUT", "/v2/methods/blobs/<digest>"), ("POST", "/v2/methods/blobs/<digest>"),
        ("PATCH", "/v2/methods/blobs/<digest>")]],
        "same 405; we add a v2 error body UNSUPPORTED (Distribution: empty body)"),
    **each("wrong_methods", ["GET /v2/methods/blobs/uploads/", "PUT /v2/methods/blobs/uploads/",
                             "DELETE /v2/methods/blobs/uploads/",
                             f"POST /v2/methods/blobs/uploads/{MISSING_UPLOAD}"],
           "method not served on an upload route: we 405 UNSUPPORTED, Distribution 404"),
    **each("repository_names", [f"{kind} {name}" for name in BAD_NAMES
                                for kind in ("tags", "manifest", "blob")],
           "name outside the grammar: we answer the spec's 400 NAME_INVALID, Distribution's "
           "router a plain 404"),
    **each("repository_names", [f"{kind} {name}" for name in UNCLEAN_PATHS
                                for kind in ("tags", "manifest", "blob")],
           "'//', '.' or '..' in the path: Distribution's router 301-redirects to the cleaned "
           "path; we rewrite nothing and answer 400 NAME_INVALID"),
    **each("repository_names", [f"{kind} {name}" for name in TOO_LONG
                                for kind in ("tags", "manifest", "blob")],
           "name over 255 characters: we 400 NAME_INVALID, Distribution 2.8 fails with 500"),
    **each("repository_names", ["tags 255 chars", "manifest 255 chars", "blob 255 chars"],
           "255-character name is valid: we 404 NAME_UNKNOWN, Distribution 2.8 fails with 500"),
    **each("repository_names", ["tags percent slash", "manifest percent slash",
                                "blob percent slash"],
           "we do not decode %2F into a path separator (400 NAME_INVALID); Go's router does"),
    **each("tag_names", [f"{m} {tag}" for tag in BAD_TAGS for m in ("PUT", "GET")],
           "tag outside [\\w][\\w.-]{0,127}: we 400 TAG_INVALID, Distribution's router 404"),
    **each("tag_names", ["PUT colon", "GET colon"],
           "a reference with ':' is a malformed digest: we 400 DIGEST_INVALID, Distribution 500"),
    **each("digest_forms", [f"GET manifest {d}" for d in NOT_DIGESTS],
           "malformed manifest digest: we 400 DIGEST_INVALID, Distribution 2.8 fails with 500"),
    **each("digest_forms", ["HEAD blob no algorithm", "DELETE blob no algorithm",
                            "HEAD blob empty hex", "GET manifest empty hex",
                            "DELETE blob empty hex"],
           "not a digest at all: we 400 DIGEST_INVALID, Distribution's router a plain 404"),
    **each("digest_forms", ["HEAD blob sha384 form", "GET manifest sha384 form",
                            "DELETE blob sha384 form"],
           "sha384 is not an OCI-registered algorithm: we 400 DIGEST_INVALID (the spec's code "
           "for an unsupported one); go-digest knows it, Distribution 404"),
    **each("digest_forms", ["upload sha512 PUT", "HEAD sha512 blob"],
           "sha512 blob: we answer its sha512 digest, Distribution 2.8 its canonical sha256"),
    **each("blobs", [f"GET range {r}" for r in ("start past size", "start at size", "reversed",
                                                 "garbage", "other unit")],
           "same 416; we add RANGE_INVALID (and Content-Range), Distribution sends a body "
           "shorter than its Content-Length"),
    ("blobs", "GET range multiple"):
        "several ranges: we ignore Range and send the whole blob (RFC 9110 allows it); "
        "Distribution (Go's ServeContent) answers 206 multipart/byteranges",
    ("chunked_upload", "HEAD status"):
        "HEAD of an upload: our headers are GET's (Content-Length: 0, as in the v2 spec's "
        "upload status example); Distribution omits Content-Length on the HEAD",
    ("blobs", "GET range zero suffix"):
        "bytes=-0 is unsatisfiable (RFC 9110): we 416; Go answers 206 'bytes 512-511/512'",
    ("blobs", "DELETE existing"):
        "we echo Docker-Content-Digest on the 202, as the spec lists; Distribution does not",
    **each("monolithic_uploads", ["right digest", "HEAD after right", "wrong digest",
                                  "malformed digest", "empty body with digest"],
           "monolithic POST ?digest= (spec): Distribution 2.8 ignores it and opens a session"),
    **each("chunk_out_of_order", ["PATCH not at offset", "status after bad range",
                                  "PATCH malformed range", "status after malformed range"],
           "we check PATCH Content-Range (416/400, nothing written); Distribution 2.8 "
           "ignores it and appends"),
    ("upload_put_errors", "status after wrong digest"):
        "unknown upload: we answer the spec's BLOB_UPLOAD_UNKNOWN, Distribution "
        "BLOB_UPLOAD_INVALID",
    **each("unknown_upload", UPLOAD_STEPS,
           "unknown upload: we answer the spec's BLOB_UPLOAD_UNKNOWN, Distribution "
           "BLOB_UPLOAD_INVALID"),
    **each("manifest_puts", ["text/plain type", "empty Content-Type", "unknown type"],
           CONTENT_TYPE),
    ("manifest_puts", "no schemaVersion"):
        "we 400 MANIFEST_INVALID, Distribution 2.8 fails with 500",
    ("manifest_puts", "uppercase repo name"):
        "name outside the grammar: we 400 NAME_INVALID, Distribution's router a plain 404",
    **each("manifest_gets", both_methods(*(f"docker tag, {a}" for a in SCHEMA1_REWRITE)),
           "no schema 2 in Accept: Distribution 2.8 tries a schema 1 rewrite (and fails, 400); "
           "we never produce schema 1 and serve the bytes as pushed (README)"),
    **each("manifest_gets", both_methods(*(f"oci {ref}, {a}" for ref in ("tag", "digest")
                                           for a in OCI_REFUSED)),
           "no OCI type in Accept: Distribution 2.8 answers 404; we serve the bytes as pushed "
           "(README)"),
    ("manifest_indexes", "GET index, docker Accept"):
        "an OCI index to a client without index types: we pick linux/amd64 as Distribution "
        "does for Docker lists (README); Distribution 404s for OCI indexes",
    **each("manifest_deletes", ["DELETE by tag", "GET tag after tag DELETE",
                                "DELETE unknown tag"],
           "DELETE by tag removes the tag (OCI spec, README); Distribution 2.8: 400 "
           "DIGEST_INVALID"),
    ("manifest_deletes", "tags after DELETE"):
        "no tags left: we send [], Distribution 2.8 null",
    ("referrers", "GET referrers"): "OCI 1.1 referrers API: Distribution 2.8 has none",
    **each("listings", ["tags", "tags?n=0", "tags?n=1", "tags?n=2", "tags?n=1&last=list/a",
                        "tags?last=b", "tags?last=list/b", "tags?last=zzz", "tags?n=100000"],
           "tags in lexical order with n/last pagination (spec, README); Distribution 2.8 "
           "ignores both and lists in storage order"),
    **each("listings", ["tags?n=-1", "catalog?n=-1", "tags?n=abc", "catalog?n=abc"],
           "we reject a bad n with 400 PAGINATION_NUMBER_INVALID; Distribution 2.8 ignores it"),
    ("listings", "catalog?n=100000"):
        "we allow any n (README: no cap); Distribution 2.8 refuses n over 1000",
    ("catalog_contents", "catalog"): BLOB_ONLY_REPO,
}


# ------------------------------------------------------------------------------- the test

Differences = dict[tuple[str, str], tuple[Answer, Answer]]  # (scenario, step): (ours, theirs)


@pytest.fixture(scope="module")
def differences(tmp_path_factory: pytest.TempPathFactory) -> Differences:
    """Replay the corpus on both servers (each fresh) and keep the steps that differ."""
    workdir = tmp_path_factory.mktemp("compat")
    ours_server = ApplianceServer(workdir / "ours", base_config(workdir / "ours")).start()
    try:
        with Distribution(workdir / "dist", workdir / "dist-data") as theirs_server:
            theirs = replay(theirs_server.url)
        ours = replay(ours_server.url)
    finally:
        ours_server.stop()
    # A handler that failed is a bug even when the client saw a tidy error.
    assert "Traceback" not in ours_server.log(), ours_server.log()
    assert ours.keys() == theirs.keys()
    found = {key: (ours[key], theirs[key]) for key in ours if ours[key] != theirs[key]}
    print(table(found, f"{len(found)} of {len(ours)} requests ({len(SCENARIOS)} scenarios) "
                       "answered differently; !! = not in ALLOWED"))
    return found


def table(found: Differences, title: str) -> str:
    """scenario | step, then our answer and Distribution's, one difference after another."""
    lines = [f"\n{title}"]
    for (name, step), (ours, theirs) in found.items():
        mark = "  " if (name, step) in ALLOWED else "!!"
        lines.append(f"{mark} {name} | {step}\n     ours: {ours}\n     dist: {theirs}")
    return "\n".join(lines)


def test_every_difference_is_allowed(differences: Differences) -> None:
    unexplained = {key: pair for key, pair in differences.items() if key not in ALLOWED}
    assert not unexplained, table(unexplained, f"{len(unexplained)} unexplained differences")


def test_allow_list_has_no_stale_entries(differences: Differences) -> None:
    stale = [key for key in ALLOWED if key not in differences]
    assert not stale, f"allowed differences that no longer occur: {stale}"
