"""An in-memory admin API behind the TUI's transport interface, for Pilot and snapshot tests."""

from __future__ import annotations

import re
from typing import Any

from tui.client import ClientError

DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64
DIGEST_C = "sha256:" + "c" * 64
CREATED = "2026-11-20T10:00:00Z"


class FakeTransport:
    """Answers like the admin API does; records every write in `calls`."""

    def __init__(self) -> None:
        self.read_only = False
        self.calls: list[tuple[str, str, Any]] = []
        self.reachable = True
        self.gc_runs: list[dict[str, Any]] = []
        self.fsck_last: dict[str, Any] | None = None
        self.tags: dict[str, dict[str, dict[str, Any]]] = {
            "team/api": {
                "v1": self._tag("v1", DIGEST_A, 31_000_000),
                "stable": self._tag("stable", DIGEST_A, 31_000_000),
                "v2": self._tag("v2", DIGEST_B, 33_500_000),
            },
            "team/web": {"latest": self._tag("latest", DIGEST_C, 120_000_000, index=True)},
            "tools/builder": {"1.0": self._tag("1.0", DIGEST_B, 33_500_000)},
        }

    @staticmethod
    def _tag(tag: str, digest: str, size: int, index: bool = False) -> dict[str, Any]:
        return {
            "tag": tag, "digest": digest, "size": size, "created": CREATED,
            "media_type": "application/vnd.oci.image.index.v1+json" if index
            else "application/vnd.docker.distribution.manifest.v2+json",
            "kind": "index" if index else "image",
            "platforms": [{"os": "linux", "architecture": "amd64"}, {"os": "linux", "architecture": "arm64",
                                                                     "variant": "v8"}] if index else [],
        }

    @staticmethod
    def _fsck(repair: bool) -> dict[str, Any]:
        """A check (or repair) that finds one corrupt layer and what it breaks."""
        repository = "/docker/registry/v2/repositories/team/api"
        found = [("corrupt_blob", None, f"/docker/registry/v2/blobs/sha256/bb/{DIGEST_B[7:]}/data",
                  DIGEST_B, "content does not match its digest"),
                 ("dangling_link", "team/api", f"{repository}/_layers", DIGEST_B,
                  "its blob is corrupt"),
                 ("missing_reference", "team/api", f"{repository}/_manifests", DIGEST_A,
                  f"needs {DIGEST_B}, not sound in the repository")]
        return {"repair": repair, "started": 1_790_000_000.0, "finished": 1_790_000_002.0,
                "blobs": 42, "bytes": 184_500_000, "manifests": 9, "links": 57, "stale_links": 0,
                "repositories": 3, "quarantine": "/appliance/quarantine/20261120T100000Z" if repair else None,
                "problems": [{"kind": kind, "repository": name, "path": path, "digest": digest,
                              "detail": detail, "action": "quarantined" if repair else ""}
                             for kind, name, path, digest, detail in found]}

    def request(self, method: str, path: str, body: Any = None) -> Any:
        if not self.reachable:
            raise ClientError("cannot reach the admin socket at /run/x.sock: is the server running?")
        if method != "GET":
            self.calls.append((method, path, body))
        route = path.removeprefix("/admin/v1")
        if route == "/status":
            return {"version": "0.1.0", "storage_driver": "filesystem", "read_only": self.read_only,
                    "free_bytes": 50_000_000_000,
                    "totals": {"repositories": len(self.tags), "tags": sum(map(len, self.tags.values())),
                               "bytes": 184_500_000}}
        if route == "/repositories":
            return {"repositories": [
                {"name": name, "tags": len(tags), "unique_bytes": 10_000_000 * (i + 1),
                 "shared_bytes": 33_500_000 if name != "team/web" else 0, "last_push": 1_790_000_000 + i}
                for i, (name, tags) in enumerate(sorted(self.tags.items()))]}
        if route == "/readonly" and method == "PUT":
            self.read_only = bool(body["enabled"])
            return {"enabled": self.read_only}
        if route == "/gc" and method == "POST":
            self.gc_runs.insert(0, {"dry_run": body["dry_run"], "started": 1_790_000_000.0,
                                    "manifests": [{"repository": "team/api", "digest": DIGEST_B}],
                                    "blobs": [DIGEST_B, DIGEST_C], "bytes_freed": 2_500_000})
            return {"started": True}
        if route == "/gc":
            return {"running": False, "progress": {"phase": "done", "done": 0, "total": 0, "bytes": 0},
                    "error": None, "history": self.gc_runs}
        if route == "/fsck" and method == "POST":
            self.fsck_last = self._fsck(bool(body["repair"]))
            return {"running": True, "progress": {"phase": "repositories", "done": 0, "total": 3},
                    "error": None, "last": None}
        if route == "/fsck":
            return {"running": False, "progress": {"phase": "done", "done": 0, "total": 0},
                    "error": None, "last": self.fsck_last}
        if route == "/uploads/purge":
            return {"dry_run": body["dry_run"], "uploads": [{"repository": "team/api", "upload": "u-1"}],
                    "bytes_freed": 4096}
        if route == "/copy":
            name, tag = body["destination"].rsplit(":", 1)
            source_name, source_tag = body["source"].rsplit(":", 1)
            self.tags.setdefault(name, {})[tag] = dict(self.tags[source_name][source_tag], tag=tag)
            return {}
        found = re.fullmatch(r"/repositories/(.+)/(tags|manifests)(?:/(.+))?", route)
        if found is None:
            raise ClientError(f"no fake for {method} {path}")
        name, kind, reference = found.groups()
        if kind == "tags" and reference is None:
            return {"tags": sorted(self.tags[name].values(), key=lambda t: t["tag"])}
        if kind == "tags" and method == "DELETE":
            del self.tags[name][reference]
            return {}
        if kind == "manifests" and method == "DELETE":
            removed = sorted(t for t, v in self.tags[name].items() if v["digest"] == reference)
            for tag in removed:
                del self.tags[name][tag]
            return {"removed_tags": removed}
        tag = self.tags[name].get(reference) or next(v for v in self.tags[name].values() if v["digest"] == reference)
        return {
            "digest": tag["digest"], "media_type": tag["media_type"], "kind": tag["kind"], "size": tag["size"],
            "tags": sorted(t for t, v in self.tags[name].items() if v["digest"] == tag["digest"]),
            "config": None if tag["kind"] == "index" else {
                "created": CREATED, "os": "linux", "architecture": "amd64", "entrypoint": ["/app"],
                "cmd": ["--serve"], "labels": {"org.opencontainers.image.source": "https://git.example/api"}},
            "layers": [] if tag["kind"] == "index" else [
                {"digest": DIGEST_B, "size": 30_000_000, "media_type": "application/vnd.docker.image.rootfs.diff.tar.gzip"}],
            "children": [{"digest": DIGEST_A, "size": 500, "platform": p} for p in tag["platforms"]],
            "referrers": [{"digest": DIGEST_C, "artifact_type": "application/vnd.dev.cosign.signature"}],
        }
