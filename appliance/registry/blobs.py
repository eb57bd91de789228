"""Blobs: content-addressed data, visible to a repository through a link."""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from appliance.oci.digest import Digest
from appliance.storage import paths
from appliance.storage.driver import PathNotFound, StorageDriver

from .errors import RegistryError


@dataclass(frozen=True)
class BlobInfo:
    digest: Digest
    size: int


class BlobStore:
    def __init__(self, driver: StorageDriver) -> None:
        self.driver = driver

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

    def open(self, name: str, digest: Digest, offset: int = 0) -> tuple[BinaryIO, BlobInfo]:
        info = self.stat(name, digest)
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
        """Store small content (manifests) under its digest unless already present."""
        if not self.exists_global(digest):
            self.driver.put_content(paths.blob_data(digest), data)
