"""The admin API's route table and URL builders, shared by the server and the client.

Routes are matched by method and path together: a repository name may itself end in `/tags`,
so `DELETE …/a/tags/tags` deletes tag `tags` of `a` while `GET …/a/tags/tags` lists `a/tags`.
"""

from __future__ import annotations

import re
from urllib.parse import quote

PREFIX = "/admin/v1"
STATUS = f"{PREFIX}/status"
REPOSITORIES = f"{PREFIX}/repositories"
COPY = f"{PREFIX}/copy"
READONLY = f"{PREFIX}/readonly"
GC = f"{PREFIX}/gc"
FSCK = f"{PREFIX}/fsck"
PURGE = f"{PREFIX}/uploads/purge"
NOTIFICATIONS = f"{PREFIX}/notifications"

_REPOSITORY = rf"{REPOSITORIES}/(?P<name>[^?#]+?)"
_SEGMENT = r"[^/]+"

ROUTES: tuple[tuple[str, re.Pattern[str], str], ...] = tuple(
    (method, re.compile(f"^{pattern}$"), handler)
    for method, pattern, handler in (
        ("GET", STATUS, "status"),
        ("GET", REPOSITORIES, "repositories"),
        ("GET", rf"{_REPOSITORY}/tags", "tags"),
        ("DELETE", rf"{_REPOSITORY}/tags/(?P<tag>{_SEGMENT})", "delete_tag"),
        ("GET", rf"{_REPOSITORY}/manifests/(?P<reference>{_SEGMENT})", "manifest"),
        ("DELETE", rf"{_REPOSITORY}/manifests/(?P<reference>{_SEGMENT})", "delete_manifest"),
        ("POST", COPY, "copy"),
        ("GET", READONLY, "readonly"),
        ("PUT", READONLY, "set_readonly"),
        ("GET", GC, "gc_status"),
        ("POST", GC, "start_gc"),
        ("GET", FSCK, "fsck_status"),
        ("POST", FSCK, "start_fsck"),
        ("GET", PURGE, "last_purge"),
        ("POST", PURGE, "purge_uploads"),
        ("GET", NOTIFICATIONS, "notifications"),
    )
)


def match(method: str, path: str) -> tuple[str | None, dict[str, str], list[str]]:
    """The handler for `method` on `path` and its parameters, plus every method `path` allows.

    No handler and no methods: unknown path. No handler but methods: 405 with `Allow`.
    """
    allowed = []
    for route_method, pattern, handler in ROUTES:
        found = pattern.match(path)
        if found is None:
            continue
        if route_method == method:
            return handler, found.groupdict(), [route_method]
        allowed.append(route_method)
    return None, {}, sorted(set(allowed))


def tags_url(name: str) -> str:
    return f"{REPOSITORIES}/{name}/tags"


def tag_url(name: str, tag: str) -> str:
    return f"{REPOSITORIES}/{name}/tags/{quote(tag, safe='')}"


def manifest_url(name: str, reference: str) -> str:
    return f"{REPOSITORIES}/{name}/manifests/{quote(reference, safe=':')}"
