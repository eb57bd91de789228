"""Admin API handlers: check the request, run one registry call in the storage pool, answer JSON.

Each handler takes the parsed JSON body and the path parameters and returns (status, value);
`resource.py` does routing, authentication and errors. Writes obey read-only mode and
`storage.delete.enabled` as the v2 API does; flipping read-only, GC, fsck repair and upload
purging do not, since they are how an operator gets out of trouble.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any, TypeVar
from urllib.parse import unquote

from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from appliance import __version__
from appliance.api.v2 import parse_name
from appliance.oci.digest import Digest
from appliance.oci.reference import InvalidName, InvalidTag, split_reference
from appliance.registry import Registry, RegistryError
from appliance.registry.manifests import parse_reference

T = TypeVar("T")
Body = dict[str, Any]
Reply = tuple[int, Any]


class AdminApi:
    notifier: Any = None  # an `appliance.notify.Notifier`, set by the server when configured
    mirrored: str | None = None  # the pull-through cache's prefix, set by the server if any

    def __init__(self, registry: Registry, pool: ThreadPool, reactor: Any) -> None:
        self.registry = registry
        self._pool = pool
        self._reactor = reactor
        self._started = reactor.seconds()

    def run(self, function: Callable[..., T], *args: Any) -> Deferred[T]:
        return deferToThreadPool(self._reactor, self._pool, function, *args)

    async def status(self, body: Body) -> Reply:
        totals = await self.run(self.registry.usage.totals)
        return 200, {
            "version": __version__,
            "uptime_seconds": round(self._reactor.seconds() - self._started, 3),
            "read_only": self.registry.readonly.enabled,
            "storage_driver": self.registry.driver.name,
            "free_bytes": await self.run(self.registry.driver.free_bytes),
            "totals": asdict(totals),
        }

    async def repositories(self, body: Body) -> Reply:
        found = await self.run(self.registry.usage.repositories)
        return 200, {"repositories": [asdict(usage) for usage in found]}

    async def tags(self, body: Body, name: str) -> Reply:
        name = parse_name(name)
        found = await self.run(self.registry.details.tags, name)
        return 200, {"name": name, "tags": [asdict(tag) for tag in found]}

    async def manifest(self, body: Body, name: str, reference: str) -> Reply:
        name, ref = parse_name(name), parse_reference(unquote(reference))
        return 200, asdict(await self.run(self.registry.details.manifest, name, ref))

    async def delete_tag(self, body: Body, name: str, tag: str) -> Reply:
        name, ref = parse_name(name), parse_reference(unquote(tag))
        if isinstance(ref, Digest):
            raise RegistryError(
                "TAG_INVALID",
                "this deletes one tag; delete a digest with DELETE …/manifests/<digest>",
            )
        self.registry.check_deletable()
        digest = await self.run(self.registry.manifests.delete_tag, name, ref)
        return 200, {"name": name, "tag": ref, "digest": str(digest)}

    async def delete_manifest(self, body: Body, name: str, reference: str) -> Reply:
        name, ref = parse_name(name), parse_reference(unquote(reference))
        if not isinstance(ref, Digest):
            raise RegistryError(
                "DIGEST_INVALID",
                "this deletes a manifest and every tag on it, by "
                "digest; delete one tag with DELETE …/tags/<tag>",
            )
        self.registry.check_deletable()
        removed = await self.run(self.registry.manifests.delete, name, ref)
        return 200, {"name": name, "digest": str(ref), "removed_tags": removed}

    async def copy(self, body: Body) -> Reply:
        source, reference = _image(body, "source")
        destination, tag = _image(body, "destination")
        if not reference:
            raise RegistryError(
                "BAD_REQUEST", "source needs a tag or digest (repo:tag or repo@digest)"
            )
        tag = tag or reference  # a bare `repo` as destination keeps the source's tag
        if isinstance(tag, Digest):
            raise RegistryError("BAD_REQUEST", "destination must name a tag (repo:tag)")
        self.registry.check_writable()
        result = await self.run(self.registry.copier.copy, source, reference, destination, tag)
        return 201, {
            "source": body["source"],
            "destination": f"{destination}:{tag}",
            **asdict(result),
        }

    async def readonly(self, body: Body) -> Reply:
        flag = self.registry.readonly
        return 200, {"enabled": flag.enabled, "changed_at": flag.changed_at}

    async def set_readonly(self, body: Body) -> Reply:
        await self.run(self.registry.readonly.set, _flag(body, "enabled", None))
        return await self.readonly(body)

    async def start_gc(self, body: Body) -> Reply:
        dry_run = _flag(body, "dry_run", False)
        if not self.registry.maintenance.start_gc(dry_run, _flag(body, "delete_untagged", False)):
            raise RegistryError(
                "CONFLICT", "a garbage collection is already running on this server"
            )
        return 202, await self.run(self.registry.maintenance.gc_status)

    async def gc_status(self, body: Body) -> Reply:
        return 200, await self.run(self.registry.maintenance.gc_status)

    async def start_fsck(self, body: Body) -> Reply:
        maintenance, repair = self.registry.maintenance, _flag(body, "repair", False)
        if not maintenance.start_fsck(repair, self.registry.manifests.max_bytes, self.mirrored):
            raise RegistryError("CONFLICT", "an integrity check is already running on this server")
        return 202, await self.run(maintenance.fsck_status)

    async def fsck_status(self, body: Body) -> Reply:
        return 200, await self.run(self.registry.maintenance.fsck_status)

    async def purge_uploads(self, body: Body) -> Reply:
        dry_run, age = _flag(body, "dry_run", False), _seconds(body, "age")
        result = await self.run(self.registry.maintenance.purge_uploads, dry_run, age)
        return 200, result.to_json()

    async def notifications(self, body: Body) -> Reply:
        if self.notifier is None:
            return 200, {"mediatype": None, "endpoints": []}
        return 200, self.notifier.status()

    async def last_purge(self, body: Body) -> Reply:
        last = self.registry.maintenance.last_purge
        return 200, {"last": last.to_json() if last else None}


def _flag(body: Body, key: str, default: bool | None) -> bool:
    """A boolean field; `default` None makes it required."""
    value = body.get(key, default)
    if not isinstance(value, bool):
        raise RegistryError("BAD_REQUEST", f"{key} must be true or false", {"field": key})
    return value


def _seconds(body: Body, key: str) -> float | None:
    """An optional number of seconds, 0 or more."""
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise RegistryError("BAD_REQUEST", f"{key} must be seconds, 0 or more", {"field": key})
    return float(value)


def _image(body: Body, key: str) -> tuple[str, Digest | str]:
    """`repo:tag`, `repo@digest` or `repo` -> (name, tag or digest, or "" when neither)."""
    text = body.get(key)
    if not isinstance(text, str):
        raise RegistryError("BAD_REQUEST", f"{key} must be a string like repo:tag", {"field": key})
    try:
        name, reference = split_reference(text)
    except InvalidName as error:
        raise RegistryError("NAME_INVALID", f"{key}: {error}") from None
    except InvalidTag as error:
        raise RegistryError("TAG_INVALID", f"{key}: {error}") from None
    if not reference:
        return name, ""
    parsed = parse_reference(reference)
    if "@" in text and not isinstance(parsed, Digest):
        raise RegistryError("DIGEST_INVALID", f"{key}: {reference!r} after @ must be a digest")
    return name, parsed
