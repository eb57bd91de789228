"""Handlers for the Docker Registry HTTP API v2 / OCI distribution spec endpoints.

Each handler validates the request, runs one registry operation in the storage thread pool,
and writes the spec's headers. Errors are `RegistryError`s, turned into the error envelope by
the resource in `resource.py`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote, unquote

from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool
from twisted.web.server import Request

from appliance.notify.events import BLOB_MEDIA_TYPE, RequestInfo
from appliance.oci import mediatypes
from appliance.oci.digest import Digest, InvalidDigest
from appliance.oci.manifest import InvalidManifest
from appliance.oci.manifest import parse as parse_manifest
from appliance.oci.reference import InvalidName, check_name
from appliance.registry import Registry, RegistryError
from appliance.registry.manifests import ManifestTooLarge, StoredManifest, parse_reference
from appliance.registry.uploads import check_upload_id

from . import routes
from .ranges import Unsatisfiable, parse_content_range, parse_range
from . import streaming
from .uploadstate import BadUploadState, UploadState, UploadStateSigner

T = TypeVar("T")
JSON = "application/json; charset=utf-8"


def _arg(request: Request, key: str) -> str | None:
    values = request.args.get(key.encode())
    return values[0].decode("utf-8", "replace") if values else None


def _header(request: Request, name: str) -> str | None:
    value = request.getHeader(name)
    return value.decode("latin-1") if isinstance(value, bytes) else value


def parse_name(text: str) -> str:
    try:
        return check_name(text)
    except InvalidName as error:
        raise RegistryError("NAME_INVALID", str(error), {"name": text}) from None


def _mount_source(request: Request) -> tuple[Digest, str] | None:
    """`?mount=DIGEST&from=NAME`, or None when absent or unusable: a registry that cannot mount
    SHOULD open an upload session instead (the spec; Distribution does so for a malformed
    digest or name too), and the client then pushes the blob."""
    mount, source = _arg(request, "mount"), _arg(request, "from")
    if mount is None or source is None:
        return None
    try:
        return Digest.parse(unquote(mount)), check_name(source)
    except (InvalidDigest, InvalidName):
        return None


def parse_digest(text: str | None) -> Digest:
    if text is None:
        raise RegistryError("DIGEST_INVALID", "a digest parameter is required")
    try:
        return Digest.parse(unquote(text))
    except InvalidDigest as error:
        raise RegistryError("DIGEST_INVALID", str(error), {"digest": text}) from None


def paginate(items: list[str], request: Request, path: str) -> tuple[list[str], str | None]:
    """Apply `n` and `last`; return the page and the `Link` header for the next one.

    `n` must be ASCII digits: `str.isdigit` also accepts "²" (which `int` refuses) and "٣".
    Over 4300 digits `int` refuses too (CPython's int_max_str_digits): that is a bad `n`.
    """
    last, n_text = _arg(request, "last"), _arg(request, "n")
    if last:
        items = [item for item in items if item > last]
    if n_text is None:
        return items, None
    try:
        if not (n_text.isascii() and n_text.isdigit()):
            raise ValueError(n_text)
        n = int(n_text)
    except ValueError:
        raise RegistryError(
            "PAGINATION_NUMBER_INVALID", f"n must be a non-negative integer, not {n_text[:40]!r}"
        ) from None
    page = items[:n]
    if len(items) <= n or not page:
        return page, None
    return page, f'<{path}?n={n}&last={quote(page[-1])}>; rel="next"'


class V2Api:
    notifier: Any = None  # an `appliance.notify.Notifier`, set by the server when configured
    proxy: Any = None  # an `appliance.proxy.Proxy` (pull-through cache), when `proxy` is configured

    def __init__(self, registry: Registry, pool: ThreadPool, reactor: Any, signer: UploadStateSigner, base_url: Callable[[Request], str]) -> None:
        self.registry = registry
        self._pool = pool
        self._reactor = reactor
        self._signer = signer
        self._base_url = base_url

    def _run(self, function: Callable[..., T], *args: Any) -> Deferred[T]:
        return deferToThreadPool(self._reactor, self._pool, function, *args)

    def _emit(self, request: Request, action: str, target: dict[str, Any]) -> None:
        """Tell the notifier (when there is one) that a request succeeded, as Distribution's
        notification bridge does; called once the response is complete."""
        if self.notifier is not None:
            self.notifier.emit(action, target, request_info(request))

    def _blob_target(self, request: Request, name: str, blob: Digest, size: int) -> dict[str, Any]:
        return {"mediaType": BLOB_MEDIA_TYPE, "digest": str(blob), "size": size,
                "repository": name,
                "url": self._base_url(request) + routes.blob_url(name, str(blob))}

    def _manifest_target(self, request: Request, name: str, ref: Digest | str,
                         stored: StoredManifest, parsed: Any = None) -> dict[str, Any]:
        target: dict[str, Any] = {
            "mediaType": stored.media_type, "digest": str(stored.digest), "size": len(stored.body),
            "repository": name,
            "url": self._base_url(request) + routes.manifest_url(name, str(stored.digest)),
        }
        if isinstance(ref, str):
            target["tag"] = ref
        if self.notifier is not None and self.notifier.include_references:
            target["references"] = _references(stored, parsed)
        return target

    def _location(self, request: Request, path: str) -> None:
        request.setHeader("Location", self._base_url(request) + path)

    # -- base, catalog, tags ------------------------------------------------------------

    async def base(self, request: Request) -> None:
        write_json(request, 200, {})

    async def catalog(self, request: Request) -> None:
        names = await self._run(self.registry.catalog.repositories)
        page, link = paginate(names, request, "/v2/_catalog")
        if link:
            request.setHeader("Link", link)
        write_json(request, 200, {"repositories": page})

    async def tags(self, request: Request, name: str) -> None:
        name = parse_name(name)
        tags = await self._run(self.registry.manifests.tags, name)
        page, link = paginate(tags, request, f"/v2/{name}/tags/list")
        if link:
            request.setHeader("Link", link)
        write_json(request, 200, {"name": name, "tags": page})

    # -- manifests ----------------------------------------------------------------------

    async def get_manifest(self, request: Request, name: str, reference: str) -> None:
        name, ref = parse_name(name), parse_reference(unquote(reference))
        accepted = _accepted_types(request)
        if self.proxy is not None:  # a mirrored name: fetched from the upstream on a miss
            await self.proxy.ensure_manifest(name, ref)
        manifest = await self._run(self._negotiated_manifest, name, ref, accepted)
        request.setResponseCode(200)
        request.setHeader("Content-Type", manifest.media_type)
        request.setHeader("Docker-Content-Digest", str(manifest.digest))
        request.setHeader("ETag", f'"{manifest.digest}"')
        request.setHeader("Content-Length", str(len(manifest.body)))
        request.write(manifest.body)
        if request.method == b"GET":
            self._emit(request, "pull", self._manifest_target(request, name, ref, manifest))

    def _negotiated_manifest(self, name: str, ref: Digest | str, accepted: set[str]) -> StoredManifest:
        """As stored; an index asked for by a client that takes only images gives linux/amd64."""
        manifest = self.registry.manifests.get(name, ref)
        if not accepted or manifest.media_type in accepted or "*/*" in accepted:
            return manifest
        if manifest.media_type in mediatypes.INDEXES and accepted & mediatypes.IMAGE_MANIFESTS:
            child = _default_platform_child(manifest.body)
            if child is not None:
                return self.registry.manifests.get(name, child)
        return manifest

    async def put_manifest(self, request: Request, name: str, reference: str) -> None:
        name, ref = parse_name(name), parse_reference(unquote(reference))
        self.registry.check_writable()
        body = request.content
        if body.size > self.registry.manifests.max_bytes:
            raise ManifestTooLarge(self.registry.manifests.max_bytes)
        data = body.read()
        digest, manifest = await self._run(
            self.registry.manifests.put, name, ref, data, _header(request, "Content-Type")
        )
        request.setResponseCode(201)
        self._location(request, routes.manifest_url(name, str(digest)))
        request.setHeader("Docker-Content-Digest", str(digest))
        if manifest.subject is not None:
            request.setHeader("OCI-Subject", str(manifest.subject.digest))
        request.setHeader("Content-Length", "0")
        stored = StoredManifest(digest, manifest.media_type, data)
        self._emit(request, "push", self._manifest_target(request, name, ref, stored, manifest))

    async def delete_manifest(self, request: Request, name: str, reference: str) -> None:
        name, ref = parse_name(name), parse_reference(unquote(reference))
        self.registry.check_deletable()
        if isinstance(ref, Digest):
            await self._run(self.registry.manifests.delete, name, ref)
        else:
            await self._run(self.registry.manifests.delete_tag, name, ref)
        request.setResponseCode(202)
        request.setHeader("Content-Length", "0")
        # As Distribution 2.8: a digest delete names the digest, a tag delete the tag.
        self._emit(request, "delete", {"repository": name, **(
            {"digest": str(ref)} if isinstance(ref, Digest) else {"tag": ref})})

    async def referrers(self, request: Request, name: str, digest: str) -> None:
        name, subject = parse_name(name), parse_digest(digest)
        artifact_type = _arg(request, "artifactType")
        found = await self._run(self.registry.manifests.referrers, name, subject, artifact_type)
        if artifact_type:
            request.setHeader("OCI-Filters-Applied", "artifactType")
        index = {"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX, "manifests": found}
        write_json(request, 200, index, content_type=mediatypes.OCI_INDEX)

    # -- blobs --------------------------------------------------------------------------

    async def get_blob(self, request: Request, name: str, digest: str) -> None:
        name, blob = parse_name(name), parse_digest(digest)
        if self.proxy is not None:  # a mirrored name not cached yet: streamed from the upstream
            remote = await self.proxy.blob_miss(name, blob, head=request.method == b"HEAD")
            if remote is not None:
                await self._send_remote(request, name, blob, remote)
                return
        if request.method == b"GET":
            redirect = await self._run(self.registry.blobs.redirect_url, name, blob)
            if redirect is not None:  # the bytes go from the backend straight to the client
                url, info = redirect
                request.setResponseCode(307)
                request.setHeader("Location", url)
                request.setHeader("Docker-Content-Digest", str(blob))
                request.setHeader("Content-Length", "0")
                self._emit(request, "pull", self._blob_target(request, name, blob, info.size))
                return
        describe = self.registry.blobs.describe if request.method == b"GET" else self.registry.blobs.stat
        info = await self._run(describe, name, blob)
        request.setHeader("Docker-Content-Digest", str(blob))
        request.setHeader("ETag", f'"{blob}"')
        request.setHeader("Accept-Ranges", "bytes")
        request.setHeader("Cache-Control", "max-age=31536000")
        request.setHeader("Content-Type", "application/octet-stream")
        start, end = 0, info.size - 1
        range_header = _header(request, "Range")
        if range_header and info.size > 0:
            try:
                wanted = parse_range(range_header, info.size)
            except Unsatisfiable as error:
                request.setHeader("Content-Range", f"bytes */{info.size}")
                raise RegistryError("RANGE_INVALID", str(error)) from None
            if wanted is not None:
                start, end = wanted
                request.setResponseCode(206)
                request.setHeader("Content-Range", f"bytes {start}-{end}/{info.size}")
        length = end - start + 1
        request.setHeader("Content-Length", str(length))
        if request.method == b"HEAD" or length == 0:
            return
        source, _ = await self._run(self.registry.blobs.open, name, blob, start, info)
        await streaming.send(source, length, request, self._run)
        self._emit(request, "pull", self._blob_target(request, name, blob, info.size))

    async def _send_remote(self, request: Request, name: str, blob: Digest, remote: Any) -> None:
        """A blob from the upstream, whole (a Range is ignored on a miss), stored as it goes."""
        request.setHeader("Docker-Content-Digest", str(blob))
        request.setHeader("ETag", f'"{blob}"')
        request.setHeader("Content-Type", "application/octet-stream")
        if remote.size is not None:
            request.setHeader("Content-Length", str(remote.size))
        if request.method == b"HEAD":
            await remote.discard()
            return
        await remote.stream(request, request.notifyFinish())
        self._emit(request, "pull", self._blob_target(request, name, blob, remote.size or 0))

    async def delete_blob(self, request: Request, name: str, digest: str) -> None:
        name, blob = parse_name(name), parse_digest(digest)
        self.registry.check_deletable()
        await self._run(self.registry.blobs.unlink, name, blob)
        request.setResponseCode(202)
        request.setHeader("Docker-Content-Digest", str(blob))
        request.setHeader("Content-Length", "0")
        self._emit(request, "delete", {"repository": name, "digest": str(blob)})

    # -- uploads ------------------------------------------------------------------------

    async def start_upload(self, request: Request, name: str) -> None:
        name = parse_name(name)
        self.registry.check_writable()
        mount = _mount_source(request)
        if mount is not None:
            blob, source = mount
            info = await self._run(self.registry.blobs.mount, name, source, blob)
            if info is not None:
                self._blob_created(request, name, blob)
                self._emit(request, "mount", {**self._blob_target(request, name, blob, info.size),
                                              "fromRepository": source})
                return
        digest_arg = _arg(request, "digest")
        if digest_arg is not None:
            blob = parse_digest(digest_arg)
            info = await self._run(self._monolithic, name, blob, request.content)
            self._blob_created(request, name, blob)
            self._emit(request, "push", self._blob_target(request, name, blob, info.size))
            return
        upload_id = await self._run(self.registry.uploads.start, name)
        self._upload_accepted(request, name, upload_id, 0)

    def _monolithic(self, name: str, digest: Digest, body: Any) -> Any:
        upload_id = self.registry.uploads.start(name)
        return self.registry.uploads.finish(name, upload_id, digest, body)

    async def patch_upload(self, request: Request, name: str, upload_id: str) -> None:
        name, upload_id = self._upload_target(request, name, upload_id)
        self.registry.check_writable()
        body = request.content
        start = self._chunk_start(request, body.size)
        end = await self._run(self.registry.uploads.append, name, upload_id, body, start)
        self._upload_accepted(request, name, upload_id, end)

    async def finish_upload(self, request: Request, name: str, upload_id: str) -> None:
        name, upload_id = self._upload_target(request, name, upload_id)
        self.registry.check_writable()
        blob = parse_digest(_arg(request, "digest"))
        body = request.content
        start = self._chunk_start(request, body.size) if body.size else None
        info = await self._run(self.registry.uploads.finish, name, upload_id, blob, body if body.size else None, start)
        self._blob_created(request, name, blob)
        self._emit(request, "push", self._blob_target(request, name, blob, info.size))

    async def upload_status(self, request: Request, name: str, upload_id: str) -> None:
        name, upload_id = self._upload_target(request, name, upload_id)
        size = await self._run(self.registry.uploads.size, name, upload_id)
        self._upload_headers(request, name, upload_id, size)
        request.setResponseCode(204)

    async def cancel_upload(self, request: Request, name: str, upload_id: str) -> None:
        name, upload_id = self._upload_target(request, name, upload_id)
        self.registry.check_writable()
        await self._run(self.registry.uploads.cancel, name, upload_id)
        request.setResponseCode(204)

    def _upload_target(self, request: Request, name: str, upload_id: str) -> tuple[str, str]:
        """Check the signed `_state` (when present) names this repository and upload."""
        name, upload_id = parse_name(name), check_upload_id(upload_id)
        token = _arg(request, "_state")
        if token is not None:
            try:
                state = self._signer.verify(token)
            except BadUploadState as error:
                raise RegistryError("BLOB_UPLOAD_INVALID", str(error)) from None
            if (state.name, state.upload_id) != (name, upload_id):
                raise RegistryError("BLOB_UPLOAD_INVALID", "upload state belongs to another upload")
        return name, upload_id

    def _chunk_start(self, request: Request, size: int) -> int | None:
        header = _header(request, "Content-Range")
        if header is None:
            return None
        try:
            start, end = parse_content_range(header)
        except ValueError as error:
            raise RegistryError("BLOB_UPLOAD_INVALID", str(error)) from None
        if end - start + 1 != size:
            raise RegistryError(
                "BLOB_UPLOAD_INVALID", f"Content-Range {header} does not match the {size}-byte body"
            )
        return start

    def _upload_headers(self, request: Request, name: str, upload_id: str, size: int) -> None:
        state = self._signer.sign(UploadState(name, upload_id, size))
        self._location(request, routes.upload_url(name, upload_id, state))
        request.setHeader("Range", f"0-{max(size - 1, 0)}")
        request.setHeader("Docker-Upload-UUID", upload_id)
        request.setHeader("Content-Length", "0")

    def _upload_accepted(self, request: Request, name: str, upload_id: str, size: int) -> None:
        self._upload_headers(request, name, upload_id, size)
        request.setResponseCode(202)

    def _blob_created(self, request: Request, name: str, blob: Digest) -> None:
        request.setResponseCode(201)
        self._location(request, routes.blob_url(name, str(blob)))
        request.setHeader("Docker-Content-Digest", str(blob))
        request.setHeader("Content-Length", "0")


def request_info(request: Request) -> RequestInfo:
    """Who asked, for an event's `request` and `actor`."""
    peer = request.getClientAddress()
    host, port = getattr(peer, "host", None), getattr(peer, "port", None)
    user = getattr(request, "user_name", "-")
    return RequestInfo(
        id=str(uuid.uuid4()), addr=f"{host}:{port}" if host else "", host=_header(request, "host") or "",
        method=request.method.decode("latin-1"), useragent=_header(request, "user-agent") or "",
        actor="" if user == "-" else user)


def _references(stored: StoredManifest, parsed: Any) -> list[dict[str, Any]]:
    """What a manifest points at (config, layers, child manifests), for `includereferences`."""
    if parsed is None:
        try:
            parsed = parse_manifest(stored.body, stored.media_type)
        except InvalidManifest:
            return []
    found = [parsed.config] if parsed.config is not None else []
    return [d.to_json() for d in (*found, *parsed.layers, *parsed.children)]


def write_json(request: Request, code: int, value: Any, content_type: str = JSON) -> None:
    body = json.dumps(value).encode()
    request.setResponseCode(code)
    request.setHeader("Content-Type", content_type)
    request.setHeader("Content-Length", str(len(body)))
    request.write(body)


def _accepted_types(request: Request) -> set[str]:
    types: set[str] = set()
    for value in request.requestHeaders.getRawHeaders(b"accept", []):
        for part in value.decode("latin-1").split(","):
            media_type = part.split(";")[0].strip()
            if media_type:
                types.add(media_type)
    return types


def _default_platform_child(body: bytes) -> Digest | None:
    try:
        children = json.loads(body).get("manifests", [])
        for child in children:
            platform = child.get("platform") or {}
            if platform.get("os") == "linux" and platform.get("architecture") == "amd64":
                return Digest.parse(child["digest"])
    except (ValueError, AttributeError, KeyError, TypeError, InvalidDigest):
        return None
    return None
