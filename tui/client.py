"""All of the TUI's I/O: the admin API, as typed records. Screens call it from worker threads.

The transport (UNIX socket or HTTPS with credentials) is `appliance.admin.client`, which is
plain `http.client`: nothing here imports Twisted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote


class ClientError(Exception):
    """The admin API refused or could not be reached; the message says what to do."""


class Transport(Protocol):
    def request(self, method: str, path: str, body: Any = None) -> Any: ...


@dataclass(frozen=True)
class Status:
    version: str
    driver: str
    read_only: bool
    repositories: int
    tags: int
    total_bytes: int
    free_bytes: int | None = None


@dataclass(frozen=True)
class Repository:
    name: str
    tags: int
    unique_bytes: int
    shared_bytes: int
    last_push: float | None


@dataclass(frozen=True)
class Tag:
    tag: str
    digest: str
    media_type: str
    kind: str
    size: int
    created: str | None
    platforms: tuple[dict[str, str], ...] = ()


@dataclass(frozen=True)
class Manifest:
    repository: str
    digest: str
    media_type: str
    kind: str
    size: int
    tags: tuple[str, ...]
    config: dict[str, Any] | None
    layers: tuple[dict[str, Any], ...]
    children: tuple[dict[str, Any], ...]
    referrers: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class JobState:
    """A job of the server (GC, fsck): the run going on, and the result of the last one."""

    running: bool
    phase: str
    done: int
    total: int
    error: str | None
    last: dict[str, Any] | None

    @staticmethod
    def progress(raw: dict[str, Any]) -> dict[str, Any]:
        progress = raw.get("progress") or {}
        return {"running": bool(raw.get("running")), "phase": str(progress.get("phase", "idle")),
                "done": int(progress.get("done", 0)), "total": int(progress.get("total", 0)),
                "error": raw.get("error")}


@dataclass(frozen=True)
class GCState(JobState):
    history: tuple[dict[str, Any], ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class FsckState(JobState):
    """`last`: the last check's counts and `problems` (each kind, repository, path, digest,
    detail, and with a repair the action taken)."""


class AdminClient:
    """The admin API's operations, one method each, blocking."""

    def __init__(self, transport: Transport, target: str) -> None:
        self._transport = transport
        self.target = target

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        try:
            return self._transport.request(method, f"/admin/v1{path}", body)
        except ClientError:
            raise
        except Exception as error:  # the transport's own errors carry the advice
            raise ClientError(str(error)) from None

    def status(self) -> Status:
        raw = self._call("GET", "/status")
        totals = raw.get("totals", {})
        return Status(
            version=str(raw.get("version", "?")),
            driver=str(raw.get("storage_driver", raw.get("driver", "?"))),
            read_only=bool(raw.get("read_only", False)),
            repositories=int(totals.get("repositories", 0)),
            tags=int(totals.get("tags", 0)),
            total_bytes=int(totals.get("bytes", 0)),
            free_bytes=raw.get("free_bytes"),
        )

    def repositories(self) -> list[Repository]:
        raw = self._call("GET", "/repositories")
        items = raw.get("repositories", raw) if isinstance(raw, dict) else raw
        return [
            Repository(r["name"], int(r.get("tags", 0)), int(r.get("unique_bytes", 0)),
                       int(r.get("shared_bytes", 0)), r.get("last_push"))
            for r in items
        ]

    def tags(self, repository: str) -> list[Tag]:
        raw = self._call("GET", f"/repositories/{repository}/tags")
        items = raw.get("tags", raw) if isinstance(raw, dict) else raw
        return [
            Tag(t["tag"], t["digest"], t.get("media_type", ""), t.get("kind", "image"), int(t.get("size", 0)),
                t.get("created"), tuple(t.get("platforms") or ()))
            for t in items
        ]

    def manifest(self, repository: str, reference: str) -> Manifest:
        raw = self._call("GET", f"/repositories/{repository}/manifests/{quote(reference, safe=':')}")
        return Manifest(
            repository, raw["digest"], raw.get("media_type", ""), raw.get("kind", ""), int(raw.get("size", 0)),
            tuple(raw.get("tags") or ()), raw.get("config"), tuple(raw.get("layers") or ()),
            tuple(raw.get("children") or ()), tuple(raw.get("referrers") or ()),
        )

    def delete_tag(self, repository: str, tag: str) -> None:
        self._call("DELETE", f"/repositories/{repository}/tags/{tag}")

    def delete_manifest(self, repository: str, digest: str) -> list[str]:
        raw = self._call("DELETE", f"/repositories/{repository}/manifests/{digest}")
        return list(raw.get("removed_tags", [])) if isinstance(raw, dict) else []

    def copy(self, source: str, destination: str) -> None:
        self._call("POST", "/copy", {"source": source, "destination": destination})

    def set_read_only(self, enabled: bool) -> bool:
        return bool(self._call("PUT", "/readonly", {"enabled": enabled}).get("enabled", enabled))

    def start_gc(self, dry_run: bool, delete_untagged: bool) -> None:
        self._call("POST", "/gc", {"dry_run": dry_run, "delete_untagged": delete_untagged})

    def gc_state(self) -> GCState:
        raw = self._call("GET", "/gc")
        history = tuple(raw.get("history") or ())
        return GCState(**JobState.progress(raw), last=history[0] if history else None,
                       history=history)

    def start_fsck(self, repair: bool) -> None:
        self._call("POST", "/fsck", {"repair": repair})

    def fsck_state(self) -> FsckState:
        raw = self._call("GET", "/fsck")
        return FsckState(**JobState.progress(raw), last=raw.get("last"))

    def purge_uploads(self, dry_run: bool) -> dict[str, Any]:
        return self._call("POST", "/uploads/purge", {"dry_run": dry_run})
