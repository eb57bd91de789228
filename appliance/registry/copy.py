"""Server-side retag and copy: no blob data moves, only links and the same manifest bytes.

Blobs are linked into the destination as a cross-repository mount would; index children are
copied first (by digest), since an index may only name manifests its repository has. The
manifest bytes are stored unchanged, so the copy has the source's digest.
"""

from __future__ import annotations

from dataclasses import dataclass

from appliance.oci.digest import Digest
from appliance.oci.manifest import InvalidManifest, parse

from .blobs import BlobStore
from .errors import RegistryError
from .manifests import ManifestStore, StoredManifest


@dataclass(frozen=True)
class CopyResult:
    digest: str
    media_type: str
    mounted: int
    manifests: int


class Copier:
    def __init__(self, blobs: BlobStore, manifests: ManifestStore) -> None:
        self.blobs = blobs
        self.manifests = manifests

    def copy(self, source: str, reference: Digest | str, destination: str, tag: str) -> CopyResult:
        """Blocking. Make `destination:tag` name what `source@reference` names."""
        stored = self.manifests.get(source, reference)
        mounted, children = (
            self._bring(source, destination, stored) if source != destination else (0, 0)
        )
        digest, _ = self.manifests.put(destination, tag, stored.body, stored.media_type)
        return CopyResult(str(digest), stored.media_type, mounted, children + 1)

    def _bring(self, source: str, destination: str, stored: StoredManifest) -> tuple[int, int]:
        """Link every blob the manifest needs, and store each child, into `destination`.

        Returns how many blobs were newly linked and how many child manifests were stored.
        """
        try:
            manifest = parse(stored.body, stored.media_type)
        except InvalidManifest as error:
            raise RegistryError(
                "MANIFEST_INVALID", f"cannot copy {stored.digest}: {error}"
            ) from None
        mounted = children = 0
        for child in manifest.children:
            child_stored = self.manifests.get(source, child.digest)
            below = self._bring(source, destination, child_stored)
            self.manifests.put(
                destination, child.digest, child_stored.body, child_stored.media_type
            )
            mounted, children = mounted + below[0], children + below[1] + 1
        for blob in manifest.required_blobs():
            if (
                not self.blobs.is_linked(destination, blob.digest)
                and self.blobs.mount(destination, source, blob.digest) is not None
            ):
                mounted += 1
        return mounted, children
