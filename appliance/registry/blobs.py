"""Blobs: content-addressed data, visible to a repository through a link.

With `storage.cache.blobdescriptor: inmemory`, blob downloads remember each blob's size, so a
GET costs the link read and the read itself. The cache is only trusted where a wrong "present"
shows at once: a GET whose read then fails forgets the entry and answers 404 (or takes the blob
back from a GC's trash). HEADs, pushes, mounts and manifest checks always ask storage, so a blob
that a garbage collector in another process removed is never taken as present there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from appliance.oci.digest import Digest
from appliance.storage import paths
from appliance.storage.driver import PathNotFound, StorageDriver

from .errors import RegistryError
from .lru import LruCache


@dataclass(frozen=True)
class BlobInfo:
    digest: Digest
    size: int


def blob_descriptor_cache(limit: int = 65536) -> LruCache[Digest, int]:
    """Digest -> size of blobs seen present."""
    return LruCache(limit)


class BlobStore:
    """`cache`: see the module docstring. `redirect`: GETs may be sent to the driver's
    `redirect_url` (S3 presigned URLs) instead of passing through us."""

    def __init__(self, driver: StorageDriver, cache: LruCache[Digest, int] | None = None,
                 redirect: bool = False) -> None:
        self.driver = driver
        self.cache = cache
        self.redirect = redirect

    def describe(self, name: str, digest: Digest) -> BlobInfo:
        """`stat` for a download that follows at once: the size may come from the cache."""
        if not self.is_linked(name, digest):
            raise RegistryError("BLOB_UNKNOWN", "blob unknown to registry", {"digest": str(digest)})
        size = self.cache.get(digest) if self.cache is not None else None
        if size is not None:
            return BlobInfo(digest, size)
        info = self.stat_global(digest, name)
        if self.cache is not None:
            self.cache.put(digest, info.size)
        return info

    def redirect_url(self, name: str, digest: Digest) -> tuple[str, BlobInfo] | None:
        """Where a client can fetch the blob itself, or None to serve it through us. The blob
        is checked in storage first (never from the cache): the URL must lead to it."""
        make_url = getattr(self.driver, "redirect_url", None) if self.redirect else None
        if make_url is None:
            return None
        info = self.stat(name, digest)
        url = make_url(paths.blob_data(digest))
        return (url, info) if url else None

    def trash(self, digest: Digest) -> None:
        """Move a blob to the garbage collector's trash (forgetting it here first)."""
        if self.cache is not None:
            self.cache.forget(digest)
        self.driver.move(paths.blob_data(digest), paths.trash(digest))

    def stat(self, name: str, digest: Digest) -> BlobInfo:
        """The blob as `name` sees it: it must be linked in that repository and present."""
        if not self.is_linked(name, digest):
            raise RegistryError("BLOB_UNKNOWN", "blob unknown to registry", {"digest": str(digest)})
        return self.stat_global(digest, name)

    def stat_global(self, digest: Digest, name: str = "") -> BlobInfo:
        try:
            info = self.driver.stat(paths.blob_data(digest))
        except PathNotFound:
            if not self.restore(digest):
                raise RegistryError(
                    "BLOB_UNKNOWN", "blob unknown to registry", {"digest": str(digest)}
                ) from None
            info = self.driver.stat(paths.blob_data(digest))
        return BlobInfo(digest, info.size)

    def exists_global(self, digest: Digest) -> bool:
        try:
            self.stat_global(digest)
        except RegistryError:
            return False
        return True

    def restore(self, digest: Digest) -> bool:
        """Take a blob back from a garbage collector's trash; False if it is really gone.

        A GC moves doomed blobs to its trash before it looks for manifests pushed meanwhile,
        and deletes them only after. Whoever needs one first wins: the rename is atomic.
        """
        try:
            self.driver.move(paths.trash(digest), paths.blob_data(digest))
        except PathNotFound:
            return False
        return True

    def is_linked(self, name: str, digest: Digest) -> bool:
        try:
            return self.driver.get_content(paths.layer_link(name, digest)).decode() == str(digest)
        except (PathNotFound, UnicodeDecodeError):
            return False

    def open(self, name: str, digest: Digest, offset: int = 0,
             info: BlobInfo | None = None) -> tuple[BinaryIO, BlobInfo]:
        """A reader from `offset`; `info` from a `describe` just before saves a second stat.
        A blob gone meanwhile (a GC elsewhere) is forgotten, taken back from the trash if it
        is there, else BLOB_UNKNOWN."""
        if info is None:
            info = self.stat(name, digest)
        try:
            return self.driver.reader(paths.blob_data(digest), offset), info
        except PathNotFound:
            if self.cache is not None:
                self.cache.forget(digest)
            if not self.restore(digest):
                raise RegistryError(
                    "BLOB_UNKNOWN", "blob unknown to registry", {"digest": str(digest)}) from None
        return self.driver.reader(paths.blob_data(digest), offset), info

    def link(self, name: str, digest: Digest) -> None:
        self.driver.put_content(paths.layer_link(name, digest), str(digest).encode())

    def unlink(self, name: str, digest: Digest) -> None:
        """Delete the repository's link; the data stays until garbage collection."""
        if not self.is_linked(name, digest):
            raise RegistryError("BLOB_UNKNOWN", "blob unknown to registry", {"digest": str(digest)})
        self.driver.delete(paths.layer_link(name, digest).rsplit("/", 1)[0])

    def mount(self, name: str, source: str, digest: Digest) -> BlobInfo | None:
        """Link a blob from `source` into `name` without copying; None when it is not there."""
        if not self.is_linked(source, digest) or not self.exists_global(digest):
            return None
        self.link(name, digest)
        return self.stat_global(digest)

    def put_content(self, digest: Digest, data: bytes) -> None:
        """Store small content (manifests) under its digest. Written even when present (one
        atomic write instead of a stat), so pushing a manifest again repairs stored bytes that
        were corrupted."""
        self.driver.put_content(paths.blob_data(digest), data)
