"""OpenStack Swift through python-swiftclient, in Distribution's Swift layout.

Object names are Distribution's (`registry/storage/driver/swift`): `<prefix>/files<path>` with
the slashes around it trimmed, so one container can be served by Distribution and by us in turn.
Large files are Dynamic Large Objects, as Distribution writes them: the segments are
`<prefix>/segments/<3 hex>/<37 hex>/<%016d part number, from 1>` and the file itself is an empty
object whose `X-Object-Manifest: <container>/<segments prefix>` makes Swift serve (GET, HEAD,
ranges) the segments joined in name order. Small files are plain objects.

Swift has no rename and no append, and a DLO's segments are just objects that a manifest names
by prefix. So (see also docs/storage.md):
- `appends = False`: uploads keep each chunk as its own object and `concatenate` them;
- `move` and `concatenate` copy server-side (Swift's COPY) into *new* segments, then `move`
  deletes the source with its segments. A set of segments therefore belongs to one manifest
  only, and deleting any file may delete its segments: nothing can be left pointing at them
  (Distribution re-points a second manifest at the same segments, which a later delete of
  either one breaks);
- `delete` removes a manifest before its segments, and only the caller whose DELETE of the
  manifest succeeded goes on to its segments: of a `move` and a `delete` racing on one file
  (garbage collection and a pull taking a blob back), one wins and the other finds nothing;
- `create_exclusive` is a PUT with `If-None-Match: *` and a claim of its own, checked after
  the racers are done: Swift checks the condition when a PUT starts, not when it lands.

Connections: one swiftclient `Connection` per thread at a time, from a small pool, sharing one
token; a reader keeps its connection until it is closed. Authentication is tempauth/v1 through
swiftclient, or Keystone v2/v3 (password, project scope, region and interface from the
catalog) with a few lines of our own, so python-keystoneclient is not needed.

Connection errors, timeouts, throttling and 5xx answers raise `StorageUnavailable` (after a
couple of quick retries), which clients see as 503 UNAVAILABLE.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, BinaryIO
from urllib.parse import quote, urlsplit

import requests
from swiftclient.client import ClientException, Connection

from .driver import FileInfo, PathNotFound, StorageError, StorageUnavailable, check_path, translated
from .spool import LocalSpool

MIN_CHUNK = 1 << 20  # Distribution's minChunkSize for Swift
DEFAULT_CHUNK = 20 << 20  # and its default
MAX_OBJECT = 5 << 30  # Swift's default max_file_size: the largest plain object or segment
_READ = 1 << 16
LISTING_PAGE = 10_000  # Swift's default (and usual largest) container listing page
_COPY_WORKERS = 4
_RETRYABLE = frozenset({408, 429, 498})
CLAIM = "X-Object-Meta-Appliance-Claim"
TEMPURL_RECHECK = 300.0  # seconds between looks at the temp URL key and methods
KEY_SETTLE = 10.0  # seconds a newly set temp URL key may take to be honoured


@dataclass(frozen=True)
class SwiftOptions:
    """The driver's settings, named after Distribution's `storage.swift` keys."""

    authurl: str
    username: str
    password: str
    container: str
    authversion: int = 0  # 0: from the URL ("v3" -> 3, "v2" -> 2, else 1), as ncw/swift does
    tenant: str = ""
    tenantid: str = ""
    domain: str = ""
    domainid: str = ""
    tenantdomain: str = ""
    tenantdomainid: str = ""
    trustid: str = ""
    region: str = ""
    endpointtype: str = "public"
    insecureskipverify: bool = False
    chunksize: int = DEFAULT_CHUNK
    prefix: str = ""
    secretkey: str = ""
    accesskey: str = ""
    tempurlcontainerkey: bool = False
    tempurlmethods: tuple[str, ...] = ()
    spooldirectory: str = ""  # empty: a folder of our own under the system temp dir
    redirect_expiry: int = 20 * 60  # seconds a temp URL stays valid (Distribution's 20m)
    timeout: float = 60.0
    retries: int = 2


def auth_version(options: SwiftOptions) -> int:
    if options.authversion:
        return options.authversion
    url = options.authurl
    return 3 if "v3" in url else 2 if "v2" in url else 1


# -- errors --------------------------------------------------------------------------------


def translate(error: Exception, path: str) -> StorageError:
    """A swiftclient/requests failure as one of ours."""
    if isinstance(error, ClientException):
        status = error.http_status
        if status == 404:
            return PathNotFound(path)
        if status is None or status >= 500 or status in _RETRYABLE:
            reason = status or error.msg
            return StorageUnavailable(f"swift backend unavailable ({reason}) at {path}")
        if status == 401:
            return StorageError(f"swift refused our credentials at {path}")
        return StorageError(f"swift {path}: {status} {error.http_reason or error.msg}".rstrip())
    if isinstance(error, requests.RequestException | OSError):
        return StorageUnavailable(f"swift backend unreachable at {path}: {error}")
    return StorageError(f"swift {path}: {error}")


def _status(error: StorageError) -> int | None:
    cause = error.__cause__
    return cause.http_status if isinstance(cause, ClientException) else None


# -- authentication ------------------------------------------------------------------------


class SwiftAuth:
    """One token and storage URL shared by every connection; renewed when Swift refuses it."""

    def __init__(self, options: SwiftOptions) -> None:
        self.options = options
        self.version = auth_version(options)
        self.project_id = options.tenantid
        self._token: str | None = None
        self._url = ""
        self._lock = threading.Lock()

    def credentials(self, stale: str | None = None) -> tuple[str, str]:
        """(storage URL, token); a new token when `stale` is the one we hold."""
        with self._lock:
            if self._token is None or self._token == stale:
                with translated(translate, self.options.authurl):
                    self._url, self._token = self._authenticate()
            return self._url, self._token

    def _authenticate(self) -> tuple[str, str]:
        if self.version == 1:
            return self._v1()
        body = self._v2_body() if self.version == 2 else self._v3_body()
        tokens = "/tokens" if self.version == 2 else "/auth/tokens"
        url = self.options.authurl.rstrip("/") + tokens
        got = requests.post(url, json=body, timeout=self.options.timeout,
                            verify=not self.options.insecureskipverify)
        self._check(got)
        answer = got.json()
        if self.version == 2:
            access = answer["access"]
            self.project_id = (access["token"].get("tenant") or {}).get("id", self.project_id)
            endpoints = [
                {"region": e.get("region", ""), "url": e.get(f"{self._interface()}URL", "")}
                for service in access.get("serviceCatalog", [])
                if service.get("type") == "object-store"
                for e in service.get("endpoints", [])
            ]
            token = access["token"]["id"]
        else:
            found = answer["token"]
            self.project_id = (found.get("project") or {}).get("id", self.project_id)
            endpoints = [
                {"region": e.get("region_id") or e.get("region", ""), "url": e.get("url", "")}
                for service in found.get("catalog", []) if service.get("type") == "object-store"
                for e in service.get("endpoints", []) if e.get("interface") == self._interface()
            ]
            token = got.headers["X-Subject-Token"]
        for endpoint in endpoints:
            region = self.options.region
            if endpoint["url"] and (not region or endpoint["region"] == region):
                return endpoint["url"].rstrip("/"), token
        raise StorageError(f"swift: no {self._interface()} object-store endpoint"
                           f"{' in region ' + self.options.region if self.options.region else ''}"
                           f" in the catalog of {self.options.authurl}")

    def _v1(self) -> tuple[str, str]:
        got = requests.get(self.options.authurl, timeout=self.options.timeout,
                           verify=not self.options.insecureskipverify,
                           headers={"X-Auth-User": self.options.username,
                                    "X-Auth-Key": self.options.password})
        self._check(got)
        return got.headers["X-Storage-Url"].rstrip("/"), got.headers["X-Auth-Token"]

    def _check(self, got: requests.Response) -> None:
        if got.status_code in (401, 403):
            raise StorageError(f"swift authentication failed at {self.options.authurl} "
                               f"({got.status_code}): check username, password, tenant and domain")
        if got.status_code >= 300:
            raise ClientException("authentication failed", http_status=got.status_code,
                                  http_reason=got.reason)

    def _interface(self) -> str:
        kind = (self.options.endpointtype or "public").lower()
        aliases = {"publicurl": "public", "internalurl": "internal", "adminurl": "admin"}
        return aliases.get(kind, kind)

    def _v2_body(self) -> dict[str, Any]:
        auth: dict[str, Any] = {"passwordCredentials": {"username": self.options.username,
                                                        "password": self.options.password}}
        if self.options.tenantid:
            auth["tenantId"] = self.options.tenantid
        elif self.options.tenant:
            auth["tenantName"] = self.options.tenant
        return {"auth": auth}

    def _v3_body(self) -> dict[str, Any]:
        o = self.options
        user: dict[str, Any] = {"name": o.username, "password": o.password}
        user_domain = {"name": o.domain} if o.domain else {"id": o.domainid} if o.domainid else None
        if user_domain:
            user["domain"] = user_domain
        auth: dict[str, Any] = {"identity": {"methods": ["password"], "password": {"user": user}}}
        if o.trustid:
            auth["scope"] = {"OS-TRUST:trust": {"id": o.trustid}}
        elif o.tenantid:
            auth["scope"] = {"project": {"id": o.tenantid}}
        elif o.tenant:
            project_domain = ({"name": o.tenantdomain} if o.tenantdomain
                              else {"id": o.tenantdomainid} if o.tenantdomainid else user_domain)
            auth["scope"] = {"project": {"name": o.tenant,
                                         **({"domain": project_domain} if project_domain else {})}}
        return {"auth": auth}


class _Connection(Connection):  # type: ignore[misc]
    """swiftclient's Connection, authenticated through the shared `SwiftAuth`."""

    def __init__(self, auth: SwiftAuth) -> None:
        options = auth.options
        # authurl/user/key only tell swiftclient it may ask us again after a 401.
        super().__init__(authurl=options.authurl, user=options.username, key="-",
                         retries=options.retries, starting_backoff=0.25, max_backoff=2,
                         insecure=options.insecureskipverify, timeout=options.timeout)
        self._auth = auth
        self._issued: str | None = None

    def get_auth(self) -> tuple[str, str]:
        url, token = self._auth.credentials(stale=self._issued)
        self._issued = token
        return url, token


# -- reading -------------------------------------------------------------------------------


class ObjectReader(io.RawIOBase):
    """A GET's body as a file; its connection goes back to the pool once the body is read."""

    def __init__(self, body: Any, path: str, release: Callable[[bool], None]) -> None:
        super().__init__()
        self._body = body
        self._path = path
        self._release: Callable[[bool], None] | None = release
        self._buffer = b""
        self._done = False

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        while not self._buffer and not self._done:
            with translated(translate, self._path):
                piece = self._body.read(max(size, _READ))
            if piece:
                self._buffer = piece
            else:
                self._done = True
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def readall(self) -> bytes:
        pieces = [self._buffer]
        self._buffer = b""
        while not self._done:
            with translated(translate, self._path):
                piece = self._body.read(1 << 20)
            if piece:
                pieces.append(piece)
            else:
                self._done = True
        return b"".join(pieces)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            if not self._done:
                with contextlib.suppress(Exception):
                    self._body.close()
            release(self._done)
        super().close()


# -- writing -------------------------------------------------------------------------------


class SwiftWriter:
    """Buffers up to `chunksize`: a small file is one PUT at `commit`, a larger one goes up
    segment by segment and appears (its manifest) at `commit`. `cancel`, or `close` without
    `commit`, deletes the segments written so far."""

    def __init__(self, driver: SwiftDriver, path: str, name: str) -> None:
        self._driver = driver
        self._path = path
        self._name = name
        self._buffer = bytearray()
        self._segments: str | None = None
        self._count = 0
        self._size = 0
        self._finished = False

    def write(self, data: bytes) -> int:
        if self._finished:
            raise StorageError(f"write to a finished writer for {self._path}")
        self._buffer += data
        self._size += len(data)
        chunk = self._driver.options.chunksize
        while len(self._buffer) > chunk:  # keep the last piece for commit: it may be the only one
            self._put_segment(bytes(self._buffer[:chunk]))
            del self._buffer[:chunk]
        return len(data)

    def size(self) -> int:
        return self._size

    def _put_segment(self, data: bytes) -> None:
        try:
            if self._segments is None:
                self._segments = self._driver._new_segments(self._path)
            self._count += 1
            self._driver._put(segment_name(self._segments, self._count), self._path, data)
        except BaseException:
            self.cancel()
            raise

    def commit(self) -> None:
        if self._finished:
            raise StorageError(f"commit of a finished writer for {self._path}")
        try:
            if self._segments is None:
                self._driver._put(self._name, self._path, bytes(self._buffer))
            else:
                if self._buffer:
                    self._put_segment(bytes(self._buffer))
                self._driver._put_manifest(self._name, self._path, self._segments)
        except BaseException:
            self.cancel()
            raise
        self._buffer.clear()
        self._finished = True

    def cancel(self) -> None:
        self._finished = True
        self._buffer.clear()
        segments, self._segments = self._segments, None
        if segments is not None:
            driver = self._driver
            driver._delete_segments(driver.container, segments, self._path, strict=False)

    def close(self) -> None:
        if not self._finished:
            self.cancel()


def segment_name(segments: str, number: int) -> str:
    """Distribution's `getSegmentPath`."""
    return f"{segments}/{number:016d}"


@dataclass(frozen=True)
class _Object:
    """What a HEAD tells about one object."""

    name: str
    size: int
    modified: float
    timestamp: str
    manifest: str | None  # X-Object-Manifest: "<container>/<segments prefix>"


# -- the driver ----------------------------------------------------------------------------


class SwiftDriver:
    """Distribution's storage driver interface over one Swift container (see the module doc)."""

    appends = False
    claim_settle = 0.5  # seconds `create_exclusive` waits for racing PUTs to land

    def __init__(self, options: SwiftOptions, name: str = "swift") -> None:
        if options.chunksize < MIN_CHUNK:
            raise StorageError(f"chunksize must be at least {MIN_CHUNK}")
        if options.chunksize > MAX_OBJECT:
            raise StorageError(f"chunksize must be at most {MAX_OBJECT}")
        self.options = options
        self.name = name
        self.container = options.container
        self.auth = SwiftAuth(options)
        self._files = (options.prefix + "/files").strip("/")
        self._pool: list[_Connection] = []
        self._pool_lock = threading.Lock()
        self._ready = False
        self._page_size = LISTING_PAGE
        self._ready_lock = threading.Lock()
        self._spool = LocalSpool(options.spooldirectory)
        self._tempurl: tuple[str, tuple[str, ...]] | None = None
        self._tempurl_checked = 0.0
        self._tempurl_lock = threading.Lock()

    # -- names -------------------------------------------------------------------------

    def _name(self, path: str) -> str:
        """Distribution's `swiftPath`: trim slashes around prefix + "/files" + path."""
        checked = check_path(path)
        return (self.options.prefix + "/files" + (checked if checked != "/" else "")).strip("/")

    def _folder(self, path: str) -> str:
        """The prefix every object inside the folder `path` starts with."""
        return self._name(path) + "/"

    def _path(self, name: str) -> str:
        return name[len(self._files):].rstrip("/") or "/"

    def _new_segments(self, path: str) -> str:
        """Distribution's `swiftSegmentPath`: a fresh, random segments prefix."""
        digest = hashlib.sha1(path.encode() + secrets.token_bytes(32)).hexdigest()
        return f"{self.options.prefix}/segments/{digest[:3]}/{digest[3:]}".strip("/")

    # -- connections -------------------------------------------------------------------

    def _take(self) -> _Connection:
        with self._pool_lock:
            if self._pool:
                return self._pool.pop()
        return _Connection(self.auth)

    def _give_back(self, connection: _Connection, reusable: bool = True) -> None:
        if not reusable:
            with contextlib.suppress(Exception):
                connection.close()
            return
        with self._pool_lock:
            if len(self._pool) < 64:
                self._pool.append(connection)
                return
        connection.close()

    def _call(self, path: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """One swiftclient call on a pooled connection, its failures translated."""
        self._ensure_container()
        return self._raw(path, method, *args, **kwargs)

    def _raw(self, path: str, method: str, *args: Any, **kwargs: Any) -> Any:
        connection = self._take()
        ok = False
        try:
            with translated(translate, path):
                result = getattr(connection, method)(*args, **kwargs)
            ok = True
            return result
        finally:
            self._give_back(connection, ok)

    def _ensure_container(self) -> None:
        """Create the container on first use if it is missing (as Distribution does at start)."""
        if self._ready:
            return
        with self._ready_lock:
            if self._ready:
                return
            try:
                self._raw(self.container, "head_container", self.container)
            except PathNotFound:
                self._raw(self.container, "put_container", self.container)
            try:  # a cluster may serve shorter listing pages than 10,000
                info = self._raw(self.container, "get_capabilities")
                self._page_size = int(info.get("swift", {}).get("container_listing_limit", 0)) or 1
            except StorageUnavailable:
                raise
            except (StorageError, TypeError, ValueError):
                self._page_size = 1  # unknown: page until an empty page
            self._ready = True

    # -- small helpers -----------------------------------------------------------------

    def _head(self, name: str, path: str) -> _Object:
        headers = self._call(path, "head_object", self.container, name)
        return _Object(name, int(headers.get("content-length") or 0),
                       _http_time(headers), headers.get("x-timestamp", ""),
                       headers.get("x-object-manifest"))

    def _put(self, name: str, path: str, body: Any, length: int | None = None,
             headers: dict[str, str] | None = None) -> None:
        if isinstance(body, bytes | bytearray):  # seekable, so swiftclient can retry it
            body, length = io.BytesIO(body), len(body)
        self._call(path, "put_object", self.container, name, body, content_length=length,
                   content_type="application/octet-stream", headers=headers)

    def _put_manifest(self, name: str, path: str, segments: str) -> None:
        self._put(name, path, b"", headers={"X-Object-Manifest": f"{self.container}/{segments}"})

    def _listing(self, path: str, prefix: str, delimiter: str | None = None,
                 container: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Objects (and `subdir`s) under `prefix`, in name order: `limit` of them, or all, page
        by page; a page shorter than Swift's page size is the last (no extra request)."""
        found: list[dict[str, Any]] = []
        marker = None
        while True:
            _, page = self._call(path, "get_container", container or self.container,
                                 prefix=prefix, delimiter=delimiter, marker=marker,
                                 limit=limit or LISTING_PAGE)
            found += page
            if limit is not None or not page or len(page) < min(self._page_size, LISTING_PAGE):
                return found
            marker = page[-1].get("name") or page[-1].get("subdir")

    def _segments_of(self, manifest: str, path: str) -> tuple[str, list[dict[str, Any]]]:
        """The container and the segments (listing entries, in order) a DLO manifest names."""
        container, _, prefix = manifest.partition("/")
        try:
            return container, self._listing(path, prefix, container=container)
        except PathNotFound:
            return container, []

    def _delete_segments(self, container: str, prefix: str, path: str, strict: bool = True) -> None:
        try:
            entries = self._listing(path, prefix, container=container)
        except StorageError:
            if strict:
                raise
            return
        for entry in entries:
            try:
                self._call(path, "delete_object", container, entry["name"])
            except PathNotFound:
                continue
            except StorageError:
                if strict:
                    raise

    # -- reads -------------------------------------------------------------------------

    def get_content(self, path: str) -> bytes:
        with self.reader(path) as f:
            return f.read()

    def reader(self, path: str, offset: int = 0) -> BinaryIO:
        name = self._name(path)
        if offset < 0:
            raise StorageError(f"invalid offset {offset} for {path}")
        self._ensure_container()
        headers = {"Range": f"bytes={offset}-"} if offset > 0 else None
        connection = self._take()
        try:
            with translated(translate, path):
                _, body = connection.get_object(self.container, name, resp_chunk_size=_READ,
                                                headers=headers)
        except StorageError as error:
            self._give_back(connection, _status(error) is not None)
            if _status(error) != 416:
                raise
            self._head(name, path)  # at or past the end: empty, if the file exists
            return io.BytesIO(b"")
        return ObjectReader(body, path, lambda reusable: self._give_back(connection, reusable))  # type: ignore[return-value]

    def stat(self, path: str) -> FileInfo:
        name = self._name(path)
        if check_path(path) != "/":
            try:
                found = self._head(name, path)
                return FileInfo(path, found.size, found.modified, False)
            except PathNotFound:
                pass
        if self._listing(path, name + "/", limit=1) or check_path(path) == "/":
            return FileInfo(path, 0, 0.0, True)
        raise PathNotFound(path)

    def list(self, path: str) -> list[str]:
        entries = self._listing(path, self._folder(path), delimiter="/")
        children = {self._path(entry.get("subdir") or entry["name"]) for entry in entries}
        if not children and check_path(path) != "/":
            raise PathNotFound(path)
        return sorted(children)

    def walk(self, path: str) -> Iterator[FileInfo]:
        """Every file below `path` (folders are not objects, so none are yielded). A DLO
        manifest lists as 0 bytes: empty entries get a HEAD for their real size."""
        entries = self._listing(path, self._folder(path))
        if not entries:
            raise PathNotFound(path)
        for entry in entries:
            size, modified = int(entry.get("bytes") or 0), _listing_time(entry)
            if size == 0:
                try:
                    found = self._head(entry["name"], path)
                except PathNotFound:
                    continue  # deleted since the listing
                size, modified = found.size, found.modified
            yield FileInfo(self._path(entry["name"]), size, modified, False)

    # -- writes ------------------------------------------------------------------------

    def put_content(self, path: str, data: bytes) -> None:
        """One PUT of a plain object: Swift makes it visible whole or not at all."""
        self._put(self._name(path), path, data)

    def create_exclusive(self, path: str, data: bytes) -> bool:
        """A PUT with `If-None-Match: *`, then a check that our claim is the one that stayed.

        Swift checks `If-None-Match` when a PUT starts, so PUTs racing on a new name can all
        pass it; the one with the newest timestamp is what stays. So each PUT carries a claim
        of its own, and once the racers are done (`claim_settle` seconds: their bodies are a
        few bytes) the one that finds its claim on the object has won.
        """
        name = self._name(path)
        claim = secrets.token_hex(16)
        try:
            self._put(name, path, data, headers={"If-None-Match": "*", CLAIM: claim})
        except StorageError as error:
            if _status(error) == 412:
                return False
            raise
        time.sleep(self.claim_settle)
        try:
            headers = self._call(path, "head_object", self.container, name)
        except PathNotFound:
            return False  # someone broke the lock already
        return bool(headers.get(CLAIM.lower()) == claim)

    def writer(self, path: str, append: bool = False) -> SwiftWriter:
        if append:
            raise StorageError(f"{self.name} cannot append to {path}: objects are written whole")
        return SwiftWriter(self, path, self._name(path))

    def put_file(self, path: str, local_path: str) -> None:
        """Upload a finished local file (as segments and a manifest when larger than a chunk),
        then remove it."""
        name = self._name(path)
        size = os.path.getsize(local_path)
        chunk = self.options.chunksize
        with open(local_path, "rb") as f:
            if size <= chunk:
                self._put(name, path, f, length=size)
            else:
                segments = self._new_segments(path)
                try:
                    for number, start in enumerate(range(0, size, chunk), start=1):
                        f.seek(start)
                        self._put(segment_name(segments, number), path, f,
                                  length=min(chunk, size - start))
                    self._put_manifest(name, path, segments)
                except BaseException:
                    self._delete_segments(self.container, segments, path, strict=False)
                    raise
        os.unlink(local_path)

    def move(self, source: str, destination: str) -> None:
        """Copy server-side into new objects, then delete the source and its segments: the
        destination appears whole, and no two files ever share segments. The source is left
        alone if it was rewritten meanwhile (someone took it back)."""
        destination_name = self._name(destination)
        found = self._head(self._name(source), source)
        self._copy([(source, found)], destination_name, destination)
        try:
            again = self._head(found.name, source)
        except PathNotFound:
            return
        if again.timestamp == found.timestamp:
            self._delete_file(again, source)

    def concatenate(self, sources: Sequence[str], destination: str) -> None:
        """The sources joined as one new file, copied server-side (COPY of each source, or of
        each of its segments) into new segments; the sources stay."""
        destination_name = self._name(destination)
        found = [(source, self._head(self._name(source), source)) for source in sources]
        self._copy(found, destination_name, destination)

    def _copy(self, sources: list[tuple[str, _Object]], name: str, destination: str) -> None:
        pieces: list[tuple[str, str, int, str]] = []  # (container, object, size, source path)
        for source, found in sources:
            if found.manifest is not None:
                container, entries = self._segments_of(found.manifest, source)
                pieces += [(container, entry["name"], int(entry.get("bytes") or 0), source)
                           for entry in entries]
            else:
                pieces.append((self.container, found.name, found.size, source))
        pieces = [piece for piece in pieces if piece[2] > 0]
        if not pieces:
            self._put(name, destination, b"")
            return
        if len(pieces) == 1 and pieces[0][2] <= self.options.chunksize:
            self._copy_object(pieces[0], name, destination)
            return
        segments = self._new_segments(destination)

        def copy(numbered: tuple[int, tuple[str, str, int, str]]) -> None:
            number, piece = numbered
            self._copy_object(piece, segment_name(segments, number), destination)

        try:
            with ThreadPoolExecutor(min(_COPY_WORKERS, len(pieces)),
                                    thread_name_prefix="swift-copy") as pool:
                list(pool.map(copy, enumerate(pieces, start=1)))
            self._put_manifest(name, destination, segments)
        except BaseException:
            self._delete_segments(self.container, segments, destination, strict=False)
            raise

    def _copy_object(self, piece: tuple[str, str, int, str], name: str, destination: str) -> None:
        container, obj, _, source = piece
        try:
            self._call(destination, "copy_object", container, obj,
                       destination=f"/{self.container}/{name}",
                       headers={"Content-Type": "application/octet-stream"})
        except PathNotFound:
            raise PathNotFound(source) from None  # the source, or a segment of it, went away

    def delete(self, path: str) -> None:
        """The file at `path` and everything below it, segments included."""
        name = self._name(path)
        deleted = False
        for entry in self._listing(path, self._folder(path)):
            deleted |= self._delete_name(entry["name"], int(entry.get("bytes") or 0), path)
        if check_path(path) != "/":
            deleted |= self._delete_name(name, 0, path)
        if not deleted:
            raise PathNotFound(path)

    def _delete_name(self, name: str, listed_size: int, path: str) -> bool:
        """Delete one object (and its segments when it is a manifest); False if it was gone."""
        if listed_size > 0:  # a manifest lists as 0 bytes: this is a plain object
            try:
                self._call(path, "delete_object", self.container, name)
            except PathNotFound:
                return False
            return True
        try:
            found = self._head(name, path)
        except PathNotFound:
            return False
        return self._delete_file(found, path)

    def _delete_file(self, found: _Object, path: str) -> bool:
        """The manifest first; its segments only if our DELETE of it succeeded."""
        try:
            self._call(path, "delete_object", self.container, found.name)
        except PathNotFound:
            return False
        if found.manifest is not None:
            container, _, prefix = found.manifest.partition("/")
            if prefix:
                self._delete_segments(container, prefix, path)
        return True

    # -- the rest ----------------------------------------------------------------------

    def redirect_url(self, path: str) -> str | None:
        """A temp URL for GET (HEAD too), when the cluster has the tempurl middleware or
        `tempurlmethods` allows GET; None to serve the file ourselves."""
        name = self._name(path)
        setup = self._tempurl_setup(path)
        if setup is None:
            return None
        return self._temp_url(name, setup[0], self.options.redirect_expiry)

    def _temp_url(self, name: str, key: str, seconds: int) -> str:
        storage_url, _ = self.auth.credentials()
        expires = int(time.time()) + seconds
        object_path = f"{urlsplit(storage_url).path}/{self.container}/{name}"
        signature = hmac.new(key.encode(), f"GET\n{expires}\n{object_path}".encode(),
                             hashlib.sha256).hexdigest()
        if self.options.accesskey:  # HP Cloud's form: tenant id, access key, signature
            signature = f"{self.auth.project_id}:{self.options.accesskey}:{signature}"
        base = storage_url[: len(storage_url) - len(urlsplit(storage_url).path)]
        query = f"temp_url_sig={quote(signature)}&temp_url_expires={expires}"
        return f"{base}{quote(object_path)}?{query}"

    def _await_key(self, path: str, key: str, container_key: bool) -> None:
        """Right after a key is set, the proxy may still hold the container's (or account's)
        cached metadata without it (a request that read it before our POST can store it after)
        and refuse URLs signed with it: probe with a temp URL for a name that does not exist
        until Swift says 404 instead of 401, re-reading the metadata (which refreshes the
        proxy's cache) in between."""
        probe = self._temp_url(f"{self._files}/.temp-url-probe", key, 60)
        deadline = time.monotonic() + KEY_SETTLE
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException):
                got = requests.get(probe, timeout=self.options.timeout,
                                   verify=not self.options.insecureskipverify)
                if got.status_code != 401:
                    return
            time.sleep(0.1)
            if container_key:
                self._call(path, "head_container", self.container)
            else:
                self._call(path, "head_account")

    def _tempurl_setup(self, path: str) -> tuple[str, tuple[str, ...]] | None:
        """As Distribution: methods and key scope from /info, else from the options. The key
        is the configured `secretkey`, else the one already set, else one derived from the
        credentials and container, so that every worker and instance sets the same key (a
        random one each, as Distribution does, would undo each other's URLs). Looked at again
        every `TEMPURL_RECHECK` seconds, in case someone changes it."""
        with self._tempurl_lock:
            if self._tempurl is None or time.monotonic() >= self._tempurl_checked + TEMPURL_RECHECK:
                self._tempurl = self._tempurl_read(path)
                self._tempurl_checked = time.monotonic()
            return self._tempurl if "GET" in self._tempurl[1] else None

    def _tempurl_read(self, path: str) -> tuple[str, tuple[str, ...]]:
        methods, container_key = self.options.tempurlmethods, self.options.tempurlcontainerkey
        try:
            info = self._call(path, "get_capabilities")
            methods = tuple(info.get("tempurl", {}).get("methods", ()))
            container_key = _version(str(info.get("swift", {}).get("version", ""))) >= (2, 3, 0)
        except StorageUnavailable:
            raise  # ask again next time rather than settle on the options
        except StorageError:
            pass  # no /info: trust the options
        key = ""
        if methods:
            if container_key:
                current = self._call(path, "head_container", self.container)
                header = "x-container-meta-temp-url-key"
            else:
                current = self._call(path, "head_account")
                header = "x-account-meta-temp-url-key"
            key = current.get(header, "")
            if not key or (self.options.secretkey and key != self.options.secretkey):
                key = self.options.secretkey or self._derived_key()
                if container_key:
                    self._call(path, "post_container", self.container,
                               {"X-Container-Meta-Temp-URL-Key": key})
                else:
                    self._call(path, "post_account", {"X-Account-Meta-Temp-URL-Key": key})
                self._await_key(path, key, container_key)
        return key, tuple(m.upper() for m in methods)

    def _derived_key(self) -> str:
        o = self.options
        material = "\0".join(("registry-appliance temp url key", o.authurl, o.username,
                               o.password, o.container))
        return hashlib.sha256(material.encode()).hexdigest()

    def free_bytes(self) -> int | None:
        return None

    def spool_directory(self) -> str:
        return self._spool.directory()


def _http_time(headers: dict[str, str]) -> float:
    """X-Timestamp (when the object was written, to the microsecond), else Last-Modified."""
    with contextlib.suppress(ValueError):
        return float(headers.get("x-timestamp", ""))
    value = headers.get("last-modified")
    if value:
        with contextlib.suppress(TypeError, ValueError):
            return parsedate_to_datetime(value).timestamp()
    return 0.0


def _listing_time(entry: dict[str, Any]) -> float:
    """A listing's `last_modified` ("2024-05-01T12:00:00.123456", UTC) as a timestamp."""
    with contextlib.suppress(KeyError, ValueError):
        return datetime.fromisoformat(entry["last_modified"]).replace(tzinfo=UTC).timestamp()
    return 0.0


def _version(text: str) -> tuple[int, ...]:
    numbers = []
    for part in text.split("."):
        digits = "".join(c for c in part if c.isdigit())
        if not digits:
            break
        numbers.append(int(digits))
    return tuple(numbers)
