"""The /v2/ route table: path patterns to handler names per method, and URL building."""

from __future__ import annotations

import re
from dataclasses import dataclass

_NAME = r"(?P<name>[^?#]+?)"
_SEGMENT = r"[^/]+"


@dataclass(frozen=True)
class Route:
    pattern: re.Pattern[str]
    methods: dict[str, str]


ROUTES = (
    Route(re.compile(r"^/v2/?$"), {"GET": "base", "HEAD": "base"}),
    Route(re.compile(r"^/v2/_catalog$"), {"GET": "catalog"}),
    Route(re.compile(rf"^/v2/{_NAME}/tags/list$"), {"GET": "tags"}),
    Route(
        re.compile(rf"^/v2/{_NAME}/manifests/(?P<reference>{_SEGMENT})$"),
        {"GET": "get_manifest", "HEAD": "get_manifest", "PUT": "put_manifest", "DELETE": "delete_manifest"},
    ),
    Route(re.compile(rf"^/v2/{_NAME}/blobs/uploads/?$"), {"POST": "start_upload"}),
    Route(
        re.compile(rf"^/v2/{_NAME}/blobs/uploads/(?P<upload_id>{_SEGMENT})$"),
        {"GET": "upload_status", "HEAD": "upload_status", "PATCH": "patch_upload", "PUT": "finish_upload", "DELETE": "cancel_upload"},
    ),
    Route(
        re.compile(rf"^/v2/{_NAME}/blobs/(?P<digest>{_SEGMENT})$"),
        {"GET": "get_blob", "HEAD": "get_blob", "DELETE": "delete_blob"},
    ),
    Route(re.compile(rf"^/v2/{_NAME}/referrers/(?P<digest>{_SEGMENT})$"), {"GET": "referrers"}),
)


def match(path: str) -> tuple[Route, dict[str, str]] | None:
    for route in ROUTES:
        found = route.pattern.match(path)
        if found:
            return route, found.groupdict()
    return None


def blob_url(name: str, digest: str) -> str:
    return f"/v2/{name}/blobs/{digest}"


def manifest_url(name: str, reference: str) -> str:
    return f"/v2/{name}/manifests/{reference}"


def upload_url(name: str, upload_id: str, state: str) -> str:
    return f"/v2/{name}/blobs/uploads/{upload_id}?_state={state}"
