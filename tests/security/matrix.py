"""The access-control matrix as data: routes, credentials, what each credential may do, and the
verdict each real response stands for.

A route names the permission it needs (`Need`); a credential lists the permissions it holds.
The expected verdict of a cell follows from those two alone, so the expectation is written once
per route and once per credential, never per cell. The observed verdict comes from the status:
401/403/429 deny, a `NOT_FOUND` for the path itself means the route is not served, any other
answer below 500 means the request got past authorization. A 5xx is always unexpected.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter

ALLOW, DENY, ABSENT, ERROR = "allow", "deny", "absent", "error"
DENIALS = frozenset({401, 403, 429})


class Need:
    """What a route asks of the caller. `OPEN` routes ask nothing (health, metrics)."""

    OPEN = "open"
    BASE = "base"  # any valid credential: `GET /v2/`
    PULL, PUSH, DELETE = "pull", "push", "delete"
    CATALOG = "catalog"
    MOUNT = "mount"  # push on the target and pull on the source repository
    ADMIN = "admin"


@dataclass(frozen=True)
class Call:
    """One request of the matrix. `prepare()` returns the URL when the call needs fresh state
    (an upload session of its own); `port` picks the main or the debug listener. `form` fields
    are sent form-encoded with the credential's own; `judge` replaces `observed` (the token
    endpoint answers 200 to everyone: what it grants is the verdict)."""

    label: str
    method: str
    path: str
    need: str
    port: str = "main"
    params: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    data: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    form: Mapping[str, str] | None = None
    prepare: Callable[[], str] | None = None
    judge: Callable[[requests.Response], str] | None = None


@dataclass(frozen=True)
class Credential:
    """A column: the headers sent, the permissions they prove, the client's source address."""

    label: str
    headers: Mapping[str, str]
    grants: frozenset[str]
    source: str = "127.0.0.1"
    form: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Cell:
    call: Call
    credential: Credential
    expected: str
    observed: str
    status: int

    @property
    def ok(self) -> bool:
        return self.expected == self.observed


def expected(call: Call, credential: Credential, absent: frozenset[str]) -> str:
    if call.need in absent:
        return ABSENT
    if call.need == Need.OPEN or call.need in credential.grants:
        return ALLOW
    return DENY


def observed(response: requests.Response) -> str:
    if response.status_code >= 500:
        return ERROR
    if response.status_code in DENIALS:
        return DENY
    if response.status_code == 404 and _error_code(response) in ("NOT_FOUND", None):
        return ABSENT  # the path is not served at all (not an unknown manifest or blob)
    return ALLOW


def _error_code(response: requests.Response) -> str | None:
    try:
        return str(response.json()["errors"][0]["code"])
    except (ValueError, KeyError, IndexError, TypeError):
        return None


class _SourceAddress(HTTPAdapter):
    """Connect from a chosen loopback address, so failed logins of one column do not count
    against another column's address in the server's login limiter."""

    def __init__(self, source: str) -> None:
        self._source = source
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self._source, 0)
        super().init_poolmanager(*args, **kwargs)


def session_from(source: str) -> requests.Session:
    session = requests.Session()
    session.mount("http://", _SourceAddress(source))
    session.mount("https://", _SourceAddress(source))
    return session


def run_matrix(
    calls: Sequence[Call],
    credentials: Sequence[Credential],
    urls: Mapping[str, str],
    absent: Iterable[str] = (),
) -> list[Cell]:
    """Send every call with every credential; `urls` maps a call's port to its base URL."""
    missing = frozenset(absent)
    sessions = {c.source: session_from(c.source) for c in credentials}
    cells = []
    for credential in credentials:
        session = sessions[credential.source]
        for call in calls:
            path = call.prepare() if call.prepare is not None else call.path
            url = path if path.startswith("http") else urls[call.port] + path
            data = call.data if call.form is None else {**call.form, **credential.form}
            response = session.request(
                call.method, url, params=dict(call.params), json=call.json, data=data,
                headers={**call.headers, **credential.headers}, timeout=30,
                allow_redirects=False, verify=False)
            verdict = (call.judge or observed)(response)
            cells.append(Cell(call, credential, expected(call, credential, missing), verdict,
                              response.status_code))
    return cells


def table(cells: Sequence[Cell]) -> str:
    """Markdown: one row per route, one column per credential; a cell is `verdict status`,
    with `!` (and the expected verdict) where they differ. 429 is the login limiter."""
    calls = list(dict.fromkeys(cell.call.label for cell in cells))
    columns = list(dict.fromkeys(cell.credential.label for cell in cells))
    by_key = {(cell.call.label, cell.credential.label): cell for cell in cells}
    lines = ["| route | " + " | ".join(columns) + " |",
             "| --- | " + " | ".join("---" for _ in columns) + " |"]
    for label in calls:
        row = []
        for column in columns:
            cell = by_key[(label, column)]
            text = f"{cell.observed} {cell.status}"
            if cell.observed == DENY and cell.status not in DENIALS:
                text += " (scope not granted)"  # the token endpoint's refusal
            row.append(text if cell.ok else f"**!{text}** (expected {cell.expected})")
        lines.append(f"| {label} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def counts(cells: Sequence[Cell]) -> dict[str, int]:
    """Cells, unexpected allows (anything reached that should not have), unexpected denials."""
    return {
        "cells": len(cells),
        "unexpected_allows": sum(c.observed == ALLOW and c.expected != ALLOW for c in cells),
        "unexpected_denials": sum(c.observed == DENY and c.expected != DENY for c in cells),
        "other_mismatches": sum(not c.ok and c.observed not in (ALLOW, DENY) for c in cells),
    }
