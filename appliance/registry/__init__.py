"""The registry domain: blobs, uploads, manifests, tags, catalog, upkeep. Knows nothing of HTTP.

Every method here blocks on storage; the HTTP layer runs whole operations in a thread pool.
"""

from __future__ import annotations

from dataclasses import dataclass

from appliance.storage.driver import StorageDriver, StorageUnavailable

from .blobs import BlobStore, blob_descriptor_cache
from .catalog import Catalog
from .copy import Copier
from .details import Details
from .errors import RegistryError
from .maintenance import Maintenance
from .manifests import ManifestStore, manifest_body_cache
from .readonly import ReadOnlyFlag
from .uploadlimits import UploadLimits
from .uploads import Body, Uploads
from .usage import Usage

__all__ = ["Body", "Registry", "RegistryError", "StorageUnavailable"]


@dataclass(frozen=True)
class Registry:
    driver: StorageDriver
    blobs: BlobStore
    uploads: Uploads
    manifests: ManifestStore
    catalog: Catalog
    readonly: ReadOnlyFlag
    maintenance: Maintenance
    usage: Usage
    details: Details
    copier: Copier
    delete_enabled: bool

    @classmethod
    def open(
        cls,
        driver: StorageDriver,
        *,
        delete_enabled: bool,
        max_manifest_bytes: int,
        gc_grace: float = 3600.0,
        purge_age: float = 168 * 3600.0,
        redirect: bool = False,
        blob_cache: bool = False,
        upload_limits: UploadLimits | None = None,
    ) -> Registry:
        """`redirect`: blob GETs go to the driver's redirect URLs when it has them;
        `blob_cache`: remember blob sizes and manifest bodies by digest
        (storage.cache.blobdescriptor);
        `upload_limits`: caps on open upload sessions."""
        blobs = BlobStore(driver, blob_descriptor_cache() if blob_cache else None, redirect)
        bodies = manifest_body_cache() if blob_cache else None
        manifests = ManifestStore(driver, blobs, max_manifest_bytes, bodies)
        return cls(
            driver=driver,
            blobs=blobs,
            uploads=Uploads(driver, blobs, upload_limits),
            manifests=manifests,
            catalog=Catalog(driver),
            readonly=ReadOnlyFlag(driver),
            maintenance=Maintenance(driver, blobs, gc_grace, purge_age),
            usage=Usage(driver),
            details=Details(driver, manifests),
            copier=Copier(blobs, manifests),
            delete_enabled=delete_enabled,
        )

    def check_writable(self) -> None:
        if self.readonly.enabled:
            raise RegistryError("UNSUPPORTED", "the registry is in read-only mode; writes are refused")

    def check_deletable(self) -> None:
        self.check_writable()
        if not self.delete_enabled:
            raise RegistryError(
                "UNSUPPORTED", "deletes are disabled; set storage.delete.enabled: true to allow them"
            )
