"""The pull-through cache: manifests and blobs of mirrored names come from the upstream on a
miss, are stored in our storage as if pushed, and are served from there afterwards.

- A manifest by digest is fetched once: content under a digest never changes.
- A tag is served from storage for `ttl` after it was last checked upstream (the time is kept
  under `/appliance/proxy/tags/`, outside Distribution's tree); after that, a HEAD upstream
  says whether it moved. When the upstream is down or fails, the cached tag is served (stale);
  a miss then is 503 UNAVAILABLE, and 404 when the upstream says the manifest is unknown.
- A blob is streamed from the upstream to the client while it is written to
  `/appliance/proxy/incoming/<id>` and hashed; only when the digest matches is it moved into
  the blob store and linked. The client gets the last chunk only after that check, so a
  corrupt upstream never hands a client a complete wrong blob. A client that goes away does
  not stop the fetch: the blob is still cached for the next pull.
- Pushes and deletes under mirrored names are refused with 405 UNSUPPORTED.

Each decision is reported to `observe(kind, result, fetched_bytes)` (metrics): `kind` is
"manifest" or "blob"; `result` one of `hit` (served from storage, upstream not asked), `miss`
(fetched from the upstream), `revalidated` (the upstream confirmed what is cached, which is
served), `stale` (upstream down, cached tag served), `unknown` (the upstream says it does not
exist), `error` (nothing to serve: upstream down or failing, or the fetch broke).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IConsumer, IPushProducer
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.client import ResponseDone
from twisted.web.http import PotentialDataLoss
from twisted.web.iweb import UNKNOWN_LENGTH, IResponse
from zope.interface import implementer

from appliance.oci import mediatypes
from appliance.oci.digest import Digest, InvalidDigest
from appliance.registry import Registry, RegistryError
from appliance.storage import paths
from appliance.storage.driver import FileWriter, PathNotFound

from .upstream import Upstream, UpstreamUnavailable

__all__ = ["Proxy", "RemoteBlob"]

log = Logger()
MANIFEST_ACCEPT = ", ".join([mediatypes.OCI_INDEX, mediatypes.DOCKER_LIST, mediatypes.OCI_MANIFEST,
                             mediatypes.DOCKER_MANIFEST])
# Bytes fetched but not yet written to storage before the upstream is paused.
_BUFFER_LIMIT = 8 << 20
_MANIFEST_LIMIT = 4 << 20
Observe = Callable[[str, str, int], None]


def _unavailable(message: str) -> RegistryError:
    return RegistryError("UNAVAILABLE", message)


def _failure(error: BaseException) -> str:
    """The `observe` result of a request that raised `error`."""
    unknown = ("MANIFEST_UNKNOWN", "BLOB_UNKNOWN")
    return "unknown" if isinstance(error, RegistryError) and error.code in unknown else "error"


class Proxy:
    """The cache in front of `upstream` for names under `prefix` ("" = every name).

    `run` runs a blocking call in the storage thread pool and returns a Deferred; `clock`
    gives the time (`seconds()`), for `ttl`; `observe` hears each hit or miss (see above)."""

    def __init__(self, registry: Registry, upstream: Upstream, run: Callable[..., Deferred[Any]],
                 clock: Any, ttl: float, prefix: str = "", observe: Observe | None = None) -> None:
        self.registry = registry
        self.upstream = upstream
        self._run = run
        self._clock = clock
        self.ttl = ttl
        self.prefix = prefix
        self.observe: Observe = observe or (lambda kind, result, fetched: None)

    def covers(self, name: str) -> bool:
        return name.startswith(self.prefix) and len(name) > len(self.prefix)

    def remote_name(self, name: str) -> str:
        return name[len(self.prefix):]

    def refuse_writes(self, name: str) -> None:
        """Pushes and deletes under mirrored names: 405 UNSUPPORTED, saying why."""
        if self.covers(name):
            where = f"names under {self.prefix}" if self.prefix else "this registry"
            raise RegistryError(
                "UNSUPPORTED",
                f"{name} is mirrored from {self.upstream.url}: {where} is a pull-through cache "
                "and refuses pushes and deletes", {"name": name})

    def _scope(self, name: str) -> str:
        return f"repository:{self.remote_name(name)}:pull"

    # -- manifests ------------------------------------------------------------------------

    async def ensure_manifest(self, name: str, ref: Digest | str) -> None:
        """Make sure storage holds what `ref` names in `name`, fetching on a miss; a tag is
        checked upstream again once `ttl` has passed."""
        if not self.covers(name):
            return
        try:
            result, fetched = await (self._ensure_digest(name, ref) if isinstance(ref, Digest)
                                     else self._ensure_tag(name, ref))
        except Exception as error:
            self.observe("manifest", _failure(error), 0)
            raise
        self.observe("manifest", result, fetched)

    async def _ensure_digest(self, name: str, ref: Digest) -> tuple[str, int]:
        """(result, bytes fetched) for a manifest by digest."""
        if await self._run(self._is_revision, name, ref):
            return "hit", 0
        try:
            body = await self._fetch_manifest(name, str(ref))
        except UpstreamUnavailable as error:  # by digest: nothing stale to fall back on
            raise _unavailable(f"the upstream registry is unavailable: {error}") from None
        if Digest.of(body, ref.algorithm) != ref:
            raise _unavailable(f"the upstream sent a manifest that does not match {ref}")
        await self._run(self._store_manifest, name, ref, body, None)
        return "miss", len(body)

    async def _ensure_tag(self, name: str, tag: str) -> tuple[str, int]:
        """(result, bytes fetched) for a manifest by tag."""
        local, checked = await self._run(self._cached_tag, name, tag)
        now = self._clock.seconds()
        if local is not None and checked is not None and now - checked < self.ttl:
            return "hit", 0
        try:
            fetched = await self._refresh_tag(name, tag, local)
        except UpstreamUnavailable as error:
            if local is None:
                raise _unavailable(f"the upstream registry is unavailable: {error}") from None
            log.warn("proxy: serving {name}:{tag} from the cache (stale): {error}",
                     name=name, tag=tag, error=error)
            return "stale", 0
        return ("revalidated", 0) if fetched is None else ("miss", fetched)

    async def _refresh_tag(self, name: str, tag: str, local: Digest | None) -> int | None:
        """Ask the upstream where `tag` points; fetch the manifest if it moved. Returns the
        bytes fetched, or None when the cached manifest is current."""
        remote = self.remote_name(name)
        head = await self.upstream.request(
            "HEAD", f"/v2/{remote}/manifests/{tag}", self._scope(name),
            {"Accept": [MANIFEST_ACCEPT]})
        if head.code == 404:
            raise RegistryError("MANIFEST_UNKNOWN", "manifest unknown to the upstream registry",
                                {"reference": tag})
        if head.code != 200:
            raise UpstreamUnavailable(f"HEAD {remote}:{tag} answered HTTP {head.code}")
        announced = _digest_header(head)
        if announced is not None and announced == local:
            await self._run(self._touch_tag, name, tag, announced)
            return None
        body = await self._fetch_manifest(name, str(announced) if announced else tag)
        digest = Digest.of(body, announced.algorithm if announced else "sha256")
        if announced is not None and digest != announced:
            raise UpstreamUnavailable(f"{remote}:{tag}: the manifest does not match {announced}")
        await self._run(self._store_manifest, name, digest, body, tag)
        return len(body)

    async def _fetch_manifest(self, name: str, reference: str) -> bytes:
        remote = self.remote_name(name)
        response = await self.upstream.request(
            "GET", f"/v2/{remote}/manifests/{reference}", self._scope(name),
            {"Accept": [MANIFEST_ACCEPT]})
        if response.code == 404:
            await _discard(response)
            raise RegistryError("MANIFEST_UNKNOWN", "manifest unknown to the upstream registry",
                                {"reference": reference})
        if response.code != 200:
            await _discard(response)
            raise UpstreamUnavailable(f"GET {remote}@{reference} answered HTTP {response.code}")
        if response.length is not UNKNOWN_LENGTH and response.length > _MANIFEST_LIMIT:
            await _discard(response)
            raise UpstreamUnavailable(f"{remote}@{reference}: manifest over {_MANIFEST_LIMIT} B")
        try:
            return await _read_limited(response, _MANIFEST_LIMIT)
        except UpstreamUnavailable:
            raise
        except Exception as error:  # the connection broke while reading
            raise UpstreamUnavailable(f"GET {remote}@{reference}: {error}") from None

    def _is_revision(self, name: str, digest: Digest) -> bool:
        try:
            self.registry.driver.stat(paths.revision_link(name, digest))
        except PathNotFound:
            return False
        return True

    def _cached_tag(self, name: str, tag: str) -> tuple[Digest | None, float | None]:
        """The digest the tag names here (None: not cached) and when it was checked upstream."""
        try:
            local: Digest | None = self.registry.manifests.resolve(name, tag)
        except RegistryError:
            local = None
        try:
            checked = float(json.loads(self.registry.driver.get_content(
                paths.proxy_tag(name, tag)))["checked"])
        except (PathNotFound, ValueError, KeyError, TypeError):
            checked = None
        return local, checked

    def _touch_tag(self, name: str, tag: str, digest: Digest) -> None:
        record = {"digest": str(digest), "checked": self._clock.seconds()}
        self.registry.driver.put_content(paths.proxy_tag(name, tag), json.dumps(record).encode())

    def _store_manifest(self, name: str, digest: Digest, body: bytes, tag: str | None) -> None:
        """As a push would leave it, without requiring its blobs (they come on demand)."""
        driver = self.registry.driver
        self.registry.blobs.put_content(digest, body)
        driver.put_content(paths.revision_link(name, digest), str(digest).encode())
        if tag is not None:
            driver.put_content(paths.tag_index_link(name, tag, digest), str(digest).encode())
            driver.put_content(paths.tag_current_link(name, tag), str(digest).encode())
            self._touch_tag(name, tag, digest)

    # -- blobs ----------------------------------------------------------------------------

    async def blob_miss(self, name: str, digest: Digest, head: bool = False) -> RemoteBlob | None:
        """None when the blob is to be served from storage (not mirrored, or cached); else the
        upstream's answer, ready to stream (`head`: its size only). A GET's outcome is
        observed when its stream ends."""
        if not self.covers(name):
            return None
        if await self._run(self.registry.blobs.is_linked, name, digest):
            self.observe("blob", "hit", 0)
            return None
        try:
            remote = await self._blob_upstream(name, digest, head)
        except Exception as error:
            self.observe("blob", _failure(error), 0)
            raise
        if remote is None:
            self.observe("blob", "revalidated", 0)
        elif head:
            self.observe("blob", "miss", 0)
        return remote

    async def _blob_upstream(self, name: str, digest: Digest, head: bool) -> RemoteBlob | None:
        """Ask the upstream for a blob not linked here; None once a copy stored for another
        repository is linked (the upstream has it under this name too)."""
        remote = self.remote_name(name)
        present = await self._run(self.registry.blobs.exists_global, digest)
        try:
            response = await self.upstream.request(
                "HEAD" if head or present else "GET", f"/v2/{remote}/blobs/{digest}",
                self._scope(name), time_limit=30.0 if head or present else None)
        except UpstreamUnavailable as error:
            raise _unavailable(f"the upstream registry is unavailable: {error}") from None
        if response.code == 404:
            await _discard(response)
            raise RegistryError("BLOB_UNKNOWN", "blob unknown to the upstream registry",
                                {"digest": str(digest)})
        if response.code != 200:
            await _discard(response)
            raise _unavailable(f"the upstream answered HTTP {response.code} for {remote}@{digest}")
        if present:  # stored for another repository: the upstream has it here too, link it
            await self._run(self.registry.blobs.link, name, digest)
            return None
        return RemoteBlob(self, name, digest, response)


class RemoteBlob:
    """A blob on its way from the upstream; `size` is None when the upstream did not say."""

    def __init__(self, proxy: Proxy, name: str, digest: Digest, response: IResponse) -> None:
        self._proxy = proxy
        self.name = name
        self.digest = digest
        self._response = response
        # The header, not `length`: a HEAD's body is empty whatever size it announces.
        announced = response.headers.getRawHeaders(b"content-length", [b""])[0]
        self.size: int | None = int(announced) if announced.isdigit() else (
            None if response.length is UNKNOWN_LENGTH else int(response.length))
        self._tee: _Tee | None = None  # while and after streaming: the bytes received

    @property
    def received(self) -> int:
        """The bytes received from the upstream so far."""
        return self._tee.received if self._tee is not None else 0

    def discard(self) -> Deferred[None]:
        return Deferred.fromCoroutine(_discard(self._response))

    async def stream(self, consumer: IConsumer, gone: Deferred[Any] | None = None) -> None:
        """Send the blob to `consumer` while storing it; `gone` fires if the client leaves.
        Raises 503 UNAVAILABLE (nothing stored; the client's response is cut short) if the
        fetch fails or does not verify."""
        try:
            await self._stream(consumer, gone)
        except BaseException:
            self._proxy.observe("blob", "error", self.received)
            raise
        self._proxy.observe("blob", "miss", self.received)

    async def _stream(self, consumer: IConsumer, gone: Deferred[Any] | None) -> None:
        run, driver = self._proxy._run, self._proxy.registry.driver
        incoming = paths.proxy_incoming(str(uuid.uuid4()))
        writer: FileWriter = await run(driver.writer, incoming)
        self._tee = tee = _Tee(consumer, writer, run, self.digest)
        if gone is not None:
            gone.addErrback(lambda _: tee.stopProducing())
        if not tee.client_gone:
            consumer.registerProducer(tee, True)
        try:
            self._response.deliverBody(tee)
            await tee.done
            if self.size is not None and tee.received != self.size:
                raise UpstreamUnavailable(f"{self.digest}: got {tee.received} of {self.size} bytes")
            actual = Digest(self.digest.algorithm, tee.hasher.hexdigest())
            if actual != self.digest:
                raise UpstreamUnavailable(f"the upstream sent {actual} for {self.digest}")
            await run(self._commit, writer, incoming)
        except UpstreamUnavailable as error:
            await run(_cancel, writer)
            log.warn("proxy: fetching {name}@{digest} failed: {error}", name=self.name,
                     digest=str(self.digest), error=error)
            raise _unavailable(f"fetching the blob from the upstream failed: {error}") from None
        except BaseException:
            await run(_cancel, writer)
            raise
        finally:
            if not tee.client_gone:  # a request whose client left has no channel any more
                consumer.unregisterProducer()
        tee.release()

    def _commit(self, writer: FileWriter, incoming: str) -> None:
        blobs, driver = self._proxy.registry.blobs, self._proxy.registry.driver
        writer.commit()
        writer.close()
        if blobs.exists_global(self.digest):
            driver.delete(incoming)
        else:
            driver.move(incoming, paths.blob_data(self.digest))
        blobs.link(self.name, self.digest)


@implementer(IPushProducer)
class _Tee(Protocol):
    """Receives the upstream body: hashes it, hands it to the client (holding back the last
    chunk until the digest is checked) and queues it for the storage writer. The upstream is
    paused while the client or storage is behind; a client that left only stops the copy."""

    def __init__(self, consumer: IConsumer, writer: FileWriter, run: Callable[..., Deferred[Any]],
                 digest: Digest) -> None:
        self.done: Deferred[None] = Deferred()
        self.hasher = digest.hasher()
        self.received = 0
        self._consumer = consumer
        self._writer = writer
        self._run = run
        self._writes: Deferred[Any] = succeed(None)
        self._queued = 0
        self._held = b""
        self._client_paused = self._storage_paused = self.client_gone = False
        self._paused = False
        self._error: Failure | None = None

    def dataReceived(self, data: bytes) -> None:
        self.hasher.update(data)
        self.received += len(data)
        if not self.client_gone and self._held:
            self._consumer.write(self._held)
        self._held = data
        self._queued += len(data)
        self._writes.addCallback(self._write, data)
        self._writes.addCallbacks(self._written, self._failed, callbackArgs=(len(data),),
                                  errbackArgs=(len(data),))
        if self._queued > _BUFFER_LIMIT:
            self._storage_paused = True
            self._update()

    def _write(self, _: object, data: bytes) -> Deferred[Any] | None:
        return None if self._error is not None else self._run(self._writer.write, data)

    def _failed(self, failure: Failure, size: int) -> None:
        """Storage refused a write: stop the fetch (the rest of the queue is skipped)."""
        self._queued -= size
        if self._error is None:
            self._error = failure
            if self.transport is not None:
                self.transport.stopProducing()

    def _written(self, _: object, size: int) -> None:
        self._queued -= size
        if self._storage_paused and self._queued <= _BUFFER_LIMIT // 2:
            self._storage_paused = False
            self._update()

    def connectionLost(self, reason: Failure | None = None) -> None:
        ended = reason if reason is not None else Failure(ResponseDone())

        def finished(_: object) -> None:
            if self._error is not None:
                self.done.errback(self._error)
            elif ended.check(ResponseDone, PotentialDataLoss):
                self.done.callback(None)
            else:
                failed = UpstreamUnavailable(f"the upstream fetch failed: {ended.value}")
                self.done.errback(Failure(failed))

        # Every queued write must be stored (or have failed) before the fetch counts as done.
        self._writes.addCallbacks(finished, self.done.errback)

    def release(self) -> None:
        """The digest checked out: the client gets the last chunk."""
        if not self.client_gone and self._held:
            self._consumer.write(self._held)
        self._held = b""

    def _update(self) -> None:
        paused = (self._client_paused and not self.client_gone) or self._storage_paused
        if paused == self._paused or self.transport is None:
            return
        self._paused = paused
        if paused:
            self.transport.pauseProducing()
        else:
            self.transport.resumeProducing()

    # The client side's IPushProducer.
    def pauseProducing(self) -> None:
        self._client_paused = True
        self._update()

    def resumeProducing(self) -> None:
        self._client_paused = False
        self._update()

    def stopProducing(self) -> None:
        self.client_gone = True
        self._update()


def _cancel(writer: FileWriter) -> None:
    try:
        writer.cancel()
    finally:
        writer.close()


def _digest_header(response: IResponse) -> Digest | None:
    value = response.headers.getRawHeaders(b"docker-content-digest", [None])[0]
    try:
        return Digest.parse(value.decode("latin-1")) if value else None
    except InvalidDigest:
        return None


async def _read_limited(response: IResponse, limit: int) -> bytes:
    import treq

    parts: list[bytes] = []
    total = 0

    def collect(chunk: bytes) -> None:
        nonlocal total
        total += len(chunk)
        if total > limit:
            raise UpstreamUnavailable(f"manifest over {limit} bytes")
        parts.append(chunk)

    await treq.collect(response, collect)
    return b"".join(parts)


async def _discard(response: IResponse) -> None:
    import treq

    with contextlib.suppress(Exception):  # an answer we do not use
        await treq.content(response)
