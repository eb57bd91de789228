"""Fuzz the admin HTTP API on the main port: hostile names and references in its paths, random
JSON bodies for copy, read-only, GC, fsck and purge, with good, missing and junk credentials."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.admin import routes
from appliance.auth.htpasswd import hash_password, write_entries
from tests.api.client import OCI_MANIFEST, PushedImage, V2Client
from tests.api.conftest import running

from . import strategies as fz
from .conftest import FilesAround, Fuzzed, after_the_run, fuzz_settings
from .wire import Tally, head

ADMIN = ("alice", "alice-pw")
KEEP = "keep/admin"
REPO = routes.REPOSITORIES + "/{name}"
ENDPOINTS = (
    ("status", "GET", routes.STATUS),
    ("repositories", "GET", routes.REPOSITORIES + "?n={ref}&last={name}"),
    ("tags", "GET", REPO + "/tags"),
    ("delete_tag", "DELETE", REPO + "/tags/{ref}"),
    ("manifest", "GET", REPO + "/manifests/{ref}"),
    ("delete_manifest", "DELETE", REPO + "/manifests/{ref}"),
    ("copy", "POST", routes.COPY),
    ("readonly", "GET", routes.READONLY),
    ("set_readonly", "PUT", routes.READONLY),
    ("gc", "GET", routes.GC),
    ("start_gc", "POST", routes.GC),
    ("fsck", "GET", routes.FSCK),
    ("start_fsck", "POST", routes.FSCK),
    ("last_purge", "GET", routes.PURGE),
    ("purge_uploads", "POST", routes.PURGE),
    ("notifications", "GET", routes.NOTIFICATIONS),
    ("unknown", "PATCH", routes.PREFIX + "/{name}"),
)
BODY_KEYS = ("source", "destination", "enabled", "dry_run", "delete_untagged", "repair", "age")
images = st.builds(lambda name, sep, ref: f"{name}{sep}{ref}",
                   fz.names, st.sampled_from([":", "@", ""]), fz.references)
bodies = st.one_of(
    st.dictionaries(st.sampled_from(BODY_KEYS), st.one_of(fz.json_values, images), max_size=4)
    .map(lambda doc: json.dumps(doc).encode()),
    fz.json_values.map(lambda doc: json.dumps(doc).encode()),
    st.binary(max_size=100),
)
credentials = st.sampled_from([
    "Basic " + base64.b64encode(b"alice:alice-pw").decode(),  # most cases: the admin
    "Basic " + base64.b64encode(b"alice:alice-pw").decode(),
    "Basic " + base64.b64encode(b"alice:alice-pw").decode(),
    "Basic " + base64.b64encode(b"bob:bob-pw").decode(),  # a user, not an admin
    "Basic " + base64.b64encode(b"alice:wrong").decode(),
    "Basic !!!", "Bearer x", "",
])


@dataclass
class AdminTarget(Fuzzed):
    image: PushedImage


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdminTarget]:
    def edit(config: dict[str, Any], workdir: Path) -> None:
        htpasswd = workdir / "htpasswd"
        write_entries(str(htpasswd), {"alice": hash_password("alice-pw"),
                                      "bob": hash_password("bob-pw")})
        config["auth"] = {"htpasswd": {"realm": "fuzz", "path": str(htpasswd)}}
        config["appliance"] = {"admin": {"users": ["alice"]}}

    with running(tmp_path_factory, "fuzz-admin", edit) as server:
        client = V2Client(server.url, auth=ADMIN)
        image = client.push_image(KEEP, "v1", [b"admin layer"], OCI_MANIFEST)
        files = FilesAround(server)
        files.snapshot()
        files.before.add(str(server.workdir / "htpasswd"))
        yield AdminTarget(server, files, image)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e[0] for e in ENDPOINTS])
@fuzz_settings(max_examples=12)
@given(name=fz.names, ref=fz.references, body=bodies, authorization=credentials)
def test_admin_routes(target: AdminTarget, tally: Tally, endpoint: tuple[str, str, str], name: str,
                      ref: str, body: bytes, authorization: str) -> None:
    """Each admin route with edge and hostile names, references and bodies: never a 5xx."""
    label, method, template = endpoint
    path = fz.quoted(template.format(name=name, ref=ref))
    headers = {"Connection": "close", "Content-Type": "application/json"}
    if authorization:
        headers["Authorization"] = authorization
    target.send(tally, label, head(method, path, headers, len(body)) + body)


def test_after_the_run(target: AdminTarget, tally: Tally) -> None:
    """No 5xx, nothing outside the root, and the kept image still pulls."""
    after_the_run(target.server, tally, target.files)
    client = V2Client(target.server.url, auth=ADMIN)
    client.request("PUT", routes.READONLY, json={"enabled": False})
    manifest = client.request("GET", f"/v2/{KEEP}/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert manifest.content == target.image.manifest
    for blob in (target.image.config, *target.image.layers):
        assert client.request("GET", f"/v2/{KEEP}/blobs/{fz.sha256(blob)}").content == blob
