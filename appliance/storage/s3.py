"""Amazon S3 and S3-compatible stores (SeaweedFS, MinIO, Alibaba OSS) through boto3.

Keys are Distribution's: `rootdirectory` + the driver path, without the leading slash (its
s3-aws driver trims both ends the same way), so one bucket can be served by Distribution and by
us in turn. Folders do not exist in S3: a path is a folder when keys start with `path/`.

What object stores cannot do, and what we do instead:
- no appends (`appends = False`): uploads keep each chunk as its own object and `concatenate`
  them at the end, server-side (UploadPartCopy) when every part but the last is >= 5 MiB;
- no rename: `move` copies server-side (CopyObject, or UploadPartCopy in parallel above
  `multipartcopythresholdsize`) then deletes the source; the destination appears whole or not;
- `create_exclusive` is a conditional put (`If-None-Match: *`); a server that answers
  NotImplemented gets a check-then-put, which is only a best effort.

SeaweedFS keeps a folder entry after its last key is deleted; it shows as a common prefix and as
a key ending in `/`. Such an empty folder is treated as a filesystem's empty folder would be
(`stat` and `list` see it), and `delete` removes the folder entries below what it deletes.

Connection errors, timeouts, throttling and 5xx answers raise `StorageUnavailable` (after
botocore's own retries), which clients see as 503 UNAVAILABLE.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from .driver import (
    FileInfo,
    PathNotFound,
    StorageError,
    StorageUnavailable,
    check_path,
    translated,
)
from .spool import LocalSpool

MIN_PART = 5 << 20  # S3's smallest part, the last one excepted
MAX_PART = 5 << 30  # S3's largest part, and the largest single CopyObject
MAX_PARTS = 10_000
_READ = 1 << 20
_DELETE_BATCH = 1000
_NOT_FOUND = frozenset({"NoSuchKey", "404", "NotFound"})
_UNAVAILABLE = frozenset({
    "SlowDown", "Throttling", "ThrottlingException", "RequestThrottled", "TooManyRequests",
    "RequestLimitExceeded", "RequestTimeout", "ServiceUnavailable", "InternalError",
})
_NOT_IMPLEMENTED = frozenset({"NotImplemented", "501"})
_PRECONDITION = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})


@dataclass(frozen=True)
class S3Options:
    """The driver's settings, named after Distribution's `storage.s3` keys."""

    bucket: str
    region: str = "us-east-1"
    regionendpoint: str = ""  # empty: AWS's endpoint for `region`
    accesskey: str = ""  # empty: boto3's credential chain (env, profile, instance role)
    secretkey: str = ""
    sessiontoken: str = ""
    forcepathstyle: bool | None = None  # None: path style when regionendpoint is set (as 2.8)
    secure: bool = True
    skipverify: bool = False
    v4auth: bool = True
    chunksize: int = 10 << 20
    multipartcopychunksize: int = 32 << 20
    multipartcopymaxconcurrency: int = 100
    multipartcopythresholdsize: int = 32 << 20
    rootdirectory: str = ""
    encrypt: bool = False
    keyid: str = ""
    storageclass: str = "STANDARD"  # "NONE": send no storage class
    objectacl: str = "private"
    useragent: str = ""
    usedualstack: bool = False
    accelerate: bool = False
    spooldirectory: str = ""  # empty: a folder of our own under the system temp dir
    redirect_expiry: int = 20 * 60  # seconds a presigned URL stays valid (Distribution's 20m)
    max_connections: int = 64
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    max_attempts: int = 3


def endpoint_url(options: S3Options) -> str | None:
    """`regionendpoint` as a URL: a bare host gets https, or http when `secure` is false."""
    endpoint = options.regionendpoint.strip()
    if not endpoint:
        return None
    if "://" not in endpoint:
        endpoint = f"{'https' if options.secure else 'http'}://{endpoint}"
    return endpoint.rstrip("/")


def addressing_style(options: S3Options) -> str:
    if options.forcepathstyle is None:
        return "path" if options.regionendpoint else "auto"
    return "path" if options.forcepathstyle else "virtual"


def make_client(options: S3Options) -> Any:
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(
        aws_access_key_id=options.accesskey or None,
        aws_secret_access_key=options.secretkey or None,
        aws_session_token=options.sessiontoken or None,
        region_name=options.region or None,
    )
    config = Config(
        signature_version="s3v4" if options.v4auth else "s3",
        s3={"addressing_style": addressing_style(options),
            "use_dualstack_endpoint": options.usedualstack,
            "use_accelerate_endpoint": options.accelerate},
        retries={"max_attempts": options.max_attempts, "mode": "standard"},
        connect_timeout=options.connect_timeout,
        read_timeout=options.read_timeout,
        max_pool_connections=options.max_connections,
        tcp_keepalive=True,
        user_agent_extra=options.useragent or None,
        # S3-compatible servers (OSS, older MinIO/Ceph) refuse the CRC trailers botocore sends
        # by default since 1.36; Distribution sends none either.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return session.client(
        "s3",
        endpoint_url=endpoint_url(options),
        use_ssl=options.secure or bool(options.regionendpoint),
        verify=False if options.skipverify else None,  # None: AWS_CA_BUNDLE, else certifi
        config=config,
    )


def _is_unreachable(error: BaseException) -> bool:
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import HTTPClientError
    from urllib3.exceptions import HTTPError as Urllib3Error

    return isinstance(error, BotoConnectionError | HTTPClientError | Urllib3Error | ConnectionError)


def translate(error: Exception, path: str) -> StorageError:
    """A boto3 failure as one of ours: PathNotFound, StorageUnavailable, or StorageError."""
    from botocore.exceptions import ClientError

    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        code = str(details.get("Code", ""))
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if code in _NOT_FOUND:
            return PathNotFound(path)
        if code in _UNAVAILABLE or status >= 500 or status == 429:
            return StorageUnavailable(f"s3 backend unavailable ({code or status}) at {path}")
        return StorageError(f"s3 {error.operation_name} {path}: {code} {details.get('Message', '')}".rstrip())
    if _is_unreachable(error):
        return StorageUnavailable(f"s3 backend unreachable at {path}: {error}")
    return StorageError(f"s3 {path}: {error}")


class ObjectReader(io.RawIOBase):
    """A GET's body: `read` as a file's, with backend failures turned into ours."""

    def __init__(self, body: Any, path: str) -> None:
        super().__init__()
        self._body = body
        self._path = path

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        with translated(translate, self._path):
            return self._body.read(None if size is None or size < 0 else size)

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            with contextlib.suppress(Exception):
                self._body.close()
        super().close()


class S3Writer:
    """Buffers one part (`chunksize`) at a time: a small file is one PUT at `commit`, a large
    one a multipart upload whose parts go up as they fill. Nothing is visible before `commit`;
    `cancel` and `close` without `commit` abort."""

    def __init__(self, driver: S3Driver, path: str, key: str) -> None:
        self._driver = driver
        self._path = path
        self._key = key
        self._buffer = bytearray()
        self._parts: list[dict[str, Any]] = []
        self._upload_id: str | None = None
        self._size = 0
        self._finished = False

    def write(self, data: bytes) -> int:
        if self._finished:
            raise StorageError(f"write to a finished writer for {self._path}")
        self._buffer += data
        self._size += len(data)
        chunk = self._driver.options.chunksize
        while len(self._buffer) >= chunk:
            self._upload_part(bytes(self._buffer[:chunk]))
            del self._buffer[:chunk]
        return len(data)

    def size(self) -> int:
        return self._size

    def _upload_part(self, data: bytes) -> None:
        try:
            if self._upload_id is None:
                self._upload_id = self._driver._create_multipart(self._key, self._path)
            self._parts.append(self._driver._upload_part(
                self._key, self._path, self._upload_id, len(self._parts) + 1, data))
        except BaseException:
            self.cancel()
            raise

    def commit(self) -> None:
        try:
            if self._upload_id is None:
                self._driver._put(self._key, self._path, bytes(self._buffer))
            else:
                if self._buffer:
                    self._upload_part(bytes(self._buffer))
                self._driver._complete(self._key, self._path, self._upload_id, self._parts)
        except BaseException:
            self.cancel()
            raise
        self._buffer.clear()
        self._finished = True

    def cancel(self) -> None:
        self._finished = True
        self._buffer.clear()
        upload_id, self._upload_id = self._upload_id, None
        if upload_id is not None:
            self._driver._abort(self._key, upload_id)

    def close(self) -> None:
        if not self._finished:
            self.cancel()


class S3Driver:
    """Distribution's storage driver interface over one bucket (see the module docstring)."""

    appends = False

    def __init__(self, options: S3Options, client: Any = None, name: str = "s3") -> None:
        if options.chunksize < MIN_PART:
            raise StorageError(f"chunksize must be at least {MIN_PART}")
        self.options = options
        self.name = name
        self.client = client if client is not None else make_client(options)
        self.bucket = options.bucket
        root = options.rootdirectory.strip("/")
        self._root = f"{root}/" if root else ""
        self._spool = LocalSpool(options.spooldirectory)
        extra: dict[str, Any] = {"ContentType": "application/octet-stream"}
        if options.encrypt:
            extra["ServerSideEncryption"] = "aws:kms" if options.keyid else "AES256"
            if options.keyid:
                extra["SSEKMSKeyId"] = options.keyid
        if options.storageclass and options.storageclass.upper() != "NONE":
            extra["StorageClass"] = options.storageclass
        if options.objectacl and options.objectacl != "private":
            extra["ACL"] = options.objectacl
        self._write_args = extra

    # -- keys ----------------------------------------------------------------------------

    def _key(self, path: str) -> str:
        """Distribution's `s3Path`: trim slashes around rootdirectory + path."""
        checked = check_path(path)
        return (self._root + checked.lstrip("/")).rstrip("/") if checked != "/" else self._root.rstrip("/")

    def _prefix(self, path: str) -> str:
        """The prefix every key inside the folder `path` starts with."""
        key = self._key(path)
        return f"{key}/" if key else ""

    def _path(self, key: str) -> str:
        return "/" + key[len(self._root):].rstrip("/")


    # -- reads ---------------------------------------------------------------------------

    def get_content(self, path: str) -> bytes:
        key = self._key(path)
        with translated(translate, path):
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
            try:
                return body.read()
            finally:
                body.close()

    def reader(self, path: str, offset: int = 0) -> BinaryIO:
        key = self._key(path)
        arguments: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if offset > 0:
            arguments["Range"] = f"bytes={offset}-"
        try:
            with translated(translate, path):
                response = self.client.get_object(**arguments)
        except StorageError as error:
            if _code(error) != "InvalidRange":
                raise
            self._head(key, path)  # at or past the end: empty, if the file exists
            return io.BytesIO(b"")
        return ObjectReader(response["Body"], path)  # type: ignore[return-value]

    def _head(self, key: str, path: str) -> dict[str, Any]:
        with translated(translate, path):
            return self.client.head_object(Bucket=self.bucket, Key=key)

    def stat(self, path: str) -> FileInfo:
        key = self._key(path)
        if key and not key.endswith("/"):
            try:
                head = self._head(key, path)
                return FileInfo(path, int(head["ContentLength"]), head["LastModified"].timestamp(), False)
            except PathNotFound:
                pass
        with translated(translate, path):
            listing = self.client.list_objects_v2(Bucket=self.bucket, Prefix=self._prefix(path),
                                                  Delimiter="/", MaxKeys=1)
        found = listing.get("Contents") or []
        if found or listing.get("CommonPrefixes"):
            modified = found[0]["LastModified"].timestamp() if found else 0.0
            return FileInfo(path, 0, modified, True)
        raise PathNotFound(path)

    def list(self, path: str) -> list[str]:
        prefix = self._prefix(path)
        children: set[str] = set()
        folder_entry = False
        for page in self._pages(path, Prefix=prefix, Delimiter="/"):
            for entry in page.get("Contents") or []:
                if entry["Key"] == prefix:
                    folder_entry = True  # SeaweedFS's entry for an empty folder
                elif not entry["Key"].endswith("/"):
                    children.add(self._path(entry["Key"]))
            for common in page.get("CommonPrefixes") or []:
                children.add(self._path(common["Prefix"]))
        if not children and not folder_entry and check_path(path) != "/":
            raise PathNotFound(path)
        return sorted(children)

    def walk(self, path: str) -> Iterator[FileInfo]:
        """Every file below `path` (folders are not objects, so none are yielded)."""
        anything = False
        for page in self._pages(path, Prefix=self._prefix(path)):
            for entry in page.get("Contents") or []:
                anything = True
                if entry["Key"].endswith("/"):
                    continue
                yield FileInfo(self._path(entry["Key"]), int(entry["Size"]),
                               entry["LastModified"].timestamp(), False)
        if not anything:
            raise PathNotFound(path)

    def _pages(self, path: str, **arguments: Any) -> Iterator[dict[str, Any]]:
        paginator = self.client.get_paginator("list_objects_v2")
        with translated(translate, path):
            yield from paginator.paginate(Bucket=self.bucket, **arguments)

    # -- writes --------------------------------------------------------------------------

    def put_content(self, path: str, data: bytes) -> None:
        """One PUT: S3 makes an object visible whole or not at all."""
        self._put(self._key(path), path, data)

    def _put(self, key: str, path: str, body: Any, **extra: Any) -> None:
        with translated(translate, path):
            self.client.put_object(Bucket=self.bucket, Key=key, Body=body, **self._write_args, **extra)

    def create_exclusive(self, path: str, data: bytes) -> bool:
        key = self._key(path)
        try:
            self._put(key, path, data, IfNoneMatch="*")
        except StorageError as error:
            code = _code(error)
            if code in _PRECONDITION:
                return False
            if code not in _NOT_IMPLEMENTED:
                raise
            # No conditional writes on this server: check, then put. Two racing callers can
            # both win here; see docs/storage.md.
            try:
                self._head(key, path)
                return False
            except PathNotFound:
                self._put(key, path, data)
        return True

    def writer(self, path: str, append: bool = False) -> S3Writer:
        if append:
            raise StorageError(f"{self.name} cannot append to {path}: objects are written whole")
        return S3Writer(self, path, self._key(path))

    def put_file(self, path: str, local_path: str) -> None:
        """Upload a finished local file (multipart, part by part, when large), then remove it."""
        key = self._key(path)
        size = os.path.getsize(local_path)
        chunk = self._part_size(size, self.options.chunksize)
        with open(local_path, "rb") as f:
            if size <= chunk:
                self._put(key, path, f)
            else:
                upload_id = self._create_multipart(key, path)
                try:
                    parts = []
                    while data := f.read(chunk):
                        parts.append(self._upload_part(key, path, upload_id, len(parts) + 1, data))
                    self._complete(key, path, upload_id, parts)
                except BaseException:
                    self._abort(key, upload_id)
                    raise
        os.unlink(local_path)

    def move(self, source: str, destination: str) -> None:
        """Server-side copy, then delete the source: the destination appears whole."""
        source_key, destination_key = self._key(source), self._key(destination)
        size = int(self._head(source_key, source)["ContentLength"])
        self._copy([(source_key, size)], destination_key, source, destination)
        with translated(translate, source):
            self.client.delete_object(Bucket=self.bucket, Key=source_key)

    def concatenate(self, sources: Sequence[str], destination: str) -> None:
        """Server-side when every source but the last is at least 5 MiB (UploadPartCopy);
        otherwise streamed through this process one part at a time."""
        keyed = []
        for source in sources:
            key = self._key(source)
            keyed.append((key, int(self._head(key, source)["ContentLength"])))
        keyed = [(key, size) for key, size in keyed if size > 0]
        destination_key = self._key(destination)
        if not keyed:
            self._put(destination_key, destination, b"")
        elif all(size >= MIN_PART for _, size in keyed[:-1]):
            self._copy(keyed, destination_key, ", ".join(sources), destination)
        else:
            writer = self.writer(destination)
            try:
                for source in sources:
                    with self.reader(source) as f:
                        while data := f.read(_READ):
                            writer.write(data)
                writer.commit()
            finally:
                writer.close()

    def _copy(self, sources: list[tuple[str, int]], key: str, source: str, destination: str) -> None:
        """Copy objects (their concatenation) to `key` without the bytes passing through us."""
        threshold = min(self.options.multipartcopythresholdsize, MAX_PART)
        if len(sources) == 1 and sources[0][1] <= threshold:
            with translated(translate, source):
                self.client.copy_object(Bucket=self.bucket, Key=key, MetadataDirective="REPLACE",
                                        CopySource={"Bucket": self.bucket, "Key": sources[0][0]},
                                        **self._write_args)
            return
        ranges: list[tuple[str, int, int]] = []
        wanted = min(self.options.multipartcopychunksize, MAX_PART // 2)
        for source_key, size in sources:
            # Equal parts of at least `wanted` bytes: none below S3's 5 MiB but a last one.
            count = max(1, size // self._part_size(size, wanted))
            step = -(-size // count)
            ranges += [(source_key, start, min(start + step, size) - 1) for start in range(0, size, step)]
        if len(ranges) > MAX_PARTS:
            raise StorageError(f"cannot copy {source} in {len(ranges)} parts (S3 allows {MAX_PARTS})")
        upload_id = self._create_multipart(key, destination)

        def copy_part(number: int) -> dict[str, Any]:
            source_key, first, last = ranges[number - 1]
            with translated(translate, source):
                result = self.client.upload_part_copy(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number,
                    CopySource={"Bucket": self.bucket, "Key": source_key},
                    CopySourceRange=f"bytes={first}-{last}")
            return {"PartNumber": number, "ETag": result["CopyPartResult"]["ETag"]}

        try:
            workers = max(1, min(self.options.multipartcopymaxconcurrency, len(ranges), 32))
            with ThreadPoolExecutor(workers, thread_name_prefix="s3-copy") as pool:
                parts = list(pool.map(copy_part, range(1, len(ranges) + 1)))
            self._complete(key, destination, upload_id, parts)
        except BaseException:
            self._abort(key, upload_id)
            raise

    @staticmethod
    def _part_size(size: int, wanted: int) -> int:
        """`wanted`, grown when `size` would otherwise need more than S3's 10,000 parts."""
        return max(wanted, -(-size // MAX_PARTS), MIN_PART)

    def _create_multipart(self, key: str, path: str) -> str:
        with translated(translate, path):
            return str(self.client.create_multipart_upload(
                Bucket=self.bucket, Key=key, **self._write_args)["UploadId"])

    def _upload_part(self, key: str, path: str, upload_id: str, number: int, data: bytes) -> dict[str, Any]:
        with translated(translate, path):
            result = self.client.upload_part(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                             PartNumber=number, Body=data)
        return {"PartNumber": number, "ETag": result["ETag"]}

    def _complete(self, key: str, path: str, upload_id: str, parts: list[dict[str, Any]]) -> None:
        with translated(translate, path):
            self.client.complete_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                                  MultipartUpload={"Parts": parts})

    def _abort(self, key: str, upload_id: str) -> None:
        """Best effort: with the backend down this fails too, and the bucket's lifecycle rule
        (AbortIncompleteMultipartUpload) has to clean up; see docs/storage.md."""
        with contextlib.suppress(Exception):
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    def delete(self, path: str) -> None:
        """The file at `path`, or everything below it, with the folder entries some servers keep.

        One listing finds what is below; only when nothing is, a HEAD asks whether `path` is a
        file. Files and then folder entries (deepest first) go in one DeleteObjects request.
        """
        key, prefix = self._key(path), self._prefix(path)
        files: list[str] = []
        folders: set[str] = set()
        for page in self._pages(path, Prefix=prefix):
            for entry in page.get("Contents") or []:
                below = entry["Key"]
                if below.endswith("/"):
                    folders.add(below)
                    continue
                files.append(below)
                parent = below.rpartition("/")[0]
                while len(parent) >= len(prefix) and parent:
                    folders.add(f"{parent}/")
                    parent = parent.rpartition("/")[0]
        if not files and not folders and key:
            try:
                self._head(key, path)
                files.append(key)
            except PathNotFound:
                folders = self._empty_folders(prefix, path)
        if not files and not folders:
            raise PathNotFound(path)
        if prefix and files != [key]:
            folders.add(prefix)
        self._delete_keys([*files, *sorted(folders, key=lambda f: f.count("/"), reverse=True)], path)

    def _empty_folders(self, prefix: str, path: str) -> set[str]:
        """Folder entries left below `prefix` once all its files are gone (SeaweedFS keeps
        them; they show only in listings with a delimiter)."""
        found: set[str] = set()
        pending = [prefix] if prefix else []
        while pending:
            current = pending.pop()
            for page in self._pages(path, Prefix=current, Delimiter="/"):
                for entry in page.get("Contents") or []:
                    if entry["Key"] == current:
                        found.add(current)
                for common in page.get("CommonPrefixes") or []:
                    found.add(common["Prefix"])
                    pending.append(common["Prefix"])
        return found

    def _delete_keys(self, keys: list[str], path: str) -> None:
        """Delete in order, 1000 at a time; a folder entry that cannot go (not empty: a write
        raced us) stays, as an empty folder stays on a filesystem."""
        for start in range(0, len(keys), _DELETE_BATCH):
            batch = [{"Key": key} for key in keys[start:start + _DELETE_BATCH]]
            with translated(translate, path):
                result = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
            errors = [e for e in result.get("Errors") or []
                      if e.get("Code") != "NoSuchKey" and not str(e.get("Key", "")).endswith("/")]
            if errors:
                raise StorageError(f"s3 could not delete {len(errors)} objects under {path}: "
                                   f"{errors[0].get('Code')} {errors[0].get('Message', '')}")

    # -- the rest ------------------------------------------------------------------------

    def redirect_url(self, path: str) -> str | None:
        """A presigned GET URL, valid for `redirect_expiry` seconds."""
        with translated(translate, path):
            return str(self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": self._key(path)},
                ExpiresIn=self.options.redirect_expiry))

    def free_bytes(self) -> int | None:
        return None

    def spool_directory(self) -> str:
        return self._spool.directory()


def _code(error: StorageError) -> str:
    """The S3 error code behind one of our errors, when it came from a ClientError."""
    from botocore.exceptions import ClientError

    cause = error.__cause__
    if isinstance(cause, ClientError):
        code = str(cause.response.get("Error", {}).get("Code", ""))
        status = cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return code or str(status or "")
    return ""


# -- Alibaba Cloud OSS through its S3-compatible API ---------------------------------------


@dataclass(frozen=True)
class OSSOptions:
    """Distribution 2.8's `storage.oss` keys."""

    accesskeyid: str
    accesskeysecret: str
    region: str  # e.g. "oss-cn-hangzhou" (Distribution's form) or "cn-hangzhou"
    bucket: str
    endpoint: str = ""
    internal: bool = False
    encrypt: bool = False
    secure: bool = True
    chunksize: int = 10 << 20
    rootdirectory: str = ""


def oss_region_id(region: str) -> str:
    """OSS's region id ("cn-hangzhou") from Distribution's form ("oss-cn-hangzhou")."""
    return region[4:] if region.startswith("oss-") else region


def oss_as_s3(oss: OSSOptions, spooldirectory: str = "") -> S3Options:
    """OSS's S3-compatible endpoint `s3.oss-<region>[-internal].aliyuncs.com`, virtual-hosted
    style (OSS refuses path style), V4 signatures for the region id with plain bodies (OSS
    refuses the aws-chunked bodies botocore's default checksums need; `make_client` turns those
    off for every server), no storage class header (OSS names its classes differently)."""
    region = oss_region_id(oss.region)
    endpoint = oss.endpoint or f"s3.oss-{region}{'-internal' if oss.internal else ''}.aliyuncs.com"
    host = urlsplit(endpoint if "://" in endpoint else f"//{endpoint}").hostname or ""
    return S3Options(
        bucket=oss.bucket,
        region=region,
        regionendpoint=endpoint,
        accesskey=oss.accesskeyid,
        secretkey=oss.accesskeysecret,
        forcepathstyle=_is_ip_or_localhost(host),
        secure=oss.secure,
        v4auth=True,
        chunksize=oss.chunksize,
        rootdirectory=oss.rootdirectory,
        encrypt=oss.encrypt,
        storageclass="NONE",
        spooldirectory=spooldirectory,
    )


def _is_ip_or_localhost(host: str) -> bool:
    """Virtual-hosted style needs a DNS name; an IP or localhost endpoint is a test stand-in."""
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
