"""Manifests and tags: stored as blobs, linked as revisions, named by tags.

A manifest's bytes are checked against its digest each time they are read from storage, so a
corrupted one is answered as unknown (and logged), never served. With a body cache, checked
bodies are remembered by digest, which leaves one storage read (the link) per GET by digest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from twisted.logger import Logger

from appliance.oci import mediatypes
from appliance.oci.digest import Digest, InvalidDigest
from appliance.oci.manifest import InvalidManifest, Manifest, parse
from appliance.oci.reference import InvalidTag, check_tag
from appliance.storage import paths
from appliance.storage.driver import PathNotFound, StorageDriver

from .blobs import BlobStore
from .errors import RegistryError
from .lru import LruCache

log = Logger()
BODY_CACHE_BYTES = 8 << 20


def manifest_body_cache(limit: int = BODY_CACHE_BYTES) -> LruCache[Digest, bytes]:
    """Digest -> manifest bytes that matched it, up to `limit` bytes in all."""
    return LruCache(limit, len)


@dataclass(frozen=True)
class StoredManifest:
    digest: Digest
    media_type: str
    body: bytes


def parse_reference(reference: str) -> Digest | str:
    """A manifest reference is a digest when it has a colon, else a tag."""
    if ":" in reference:
        try:
            return Digest.parse(reference)
        except InvalidDigest as error:
            raise RegistryError("DIGEST_INVALID", str(error)) from None
    try:
        return check_tag(reference)
    except InvalidTag as error:
        raise RegistryError("TAG_INVALID", str(error)) from None


class ManifestTooLarge(RegistryError):
    def __init__(self, limit: int) -> None:
        super().__init__("SIZE_INVALID", f"manifest is larger than the limit of {limit} bytes "
                                          "(appliance.limits.maxmanifestsize)")


def _unknown(reference: Digest | str) -> RegistryError:
    return RegistryError("MANIFEST_UNKNOWN", "manifest unknown", {"reference": str(reference)})


class ManifestStore:
    def __init__(self, driver: StorageDriver, blobs: BlobStore, max_bytes: int,
                 bodies: LruCache[Digest, bytes] | None = None) -> None:
        self.driver = driver
        self.blobs = blobs
        self.max_bytes = max_bytes
        self.bodies = bodies

    def resolve(self, name: str, reference: Digest | str) -> Digest:
        """The digest a reference names in `name`, checking the revision is linked."""
        if isinstance(reference, str):
            try:
                digest = Digest.parse(self.driver.get_content(paths.tag_current_link(name, reference)).decode())
            except (PathNotFound, InvalidDigest, UnicodeDecodeError):
                raise _unknown(reference) from None
        else:
            digest = reference
        if not self._is_revision(name, digest):
            raise _unknown(reference)
        return digest

    def get(self, name: str, reference: Digest | str) -> StoredManifest:
        digest = self.resolve(name, reference)
        body = self.bodies.get(digest) if self.bodies is not None else None
        if body is None:
            body = self._read_checked(digest, reference)
            if self.bodies is not None:
                self.bodies.put(digest, body)
        return StoredManifest(digest, _stored_media_type(body), body)

    def _read_checked(self, digest: Digest, reference: Digest | str) -> bytes:
        try:
            body = self.driver.get_content(paths.blob_data(digest))
        except PathNotFound:
            if not self.blobs.restore(digest):
                raise _unknown(reference) from None
            body = self.driver.get_content(paths.blob_data(digest))
        if Digest.of(body, digest.algorithm) != digest:
            log.error("manifest {digest}: the stored bytes do not match the digest; not served "
                      "(run `registry-appliance fsck`)", digest=str(digest))
            raise _unknown(reference)
        return body

    def put(self, name: str, reference: Digest | str, body: bytes, content_type: str | None) -> tuple[Digest, Manifest]:
        """Validate and store; every referenced blob and child manifest must already be here."""
        if len(body) > self.max_bytes:
            raise ManifestTooLarge(self.max_bytes)
        algorithm = reference.algorithm if isinstance(reference, Digest) else "sha256"
        digest = Digest.of(body, algorithm)
        if isinstance(reference, Digest) and reference != digest:
            raise RegistryError(
                "DIGEST_INVALID", "manifest digest does not match the reference",
                {"provided": str(reference), "computed": str(digest)},
            )
        try:
            manifest = parse(body, content_type)
        except InvalidManifest as error:
            raise RegistryError("MANIFEST_INVALID", str(error)) from None
        self._check_references(name, manifest)
        self.blobs.put_content(digest, body)
        revision = paths.revision_link(name, digest)
        was_revision = self._is_revision(name, digest)
        self.driver.put_content(revision, str(digest).encode())
        # A garbage collector may have trashed something we checked above before our link was
        # visible to its final rescan. Look again now that it is: what is trashed comes back,
        # and what is really gone undoes this push instead of leaving a broken image.
        try:
            self.blobs.put_content(digest, body)
            self._check_references(name, manifest)
        except RegistryError:
            if not was_revision:
                self.driver.delete(revision.rsplit("/", 1)[0])
            raise
        if manifest.subject is not None:
            link = paths.referrer_link(name, manifest.subject.digest, digest)
            self.driver.put_content(link, str(digest).encode())
        if isinstance(reference, str):
            # `current` first: a crash before the index entry (history only) leaves a whole tag.
            self.driver.put_content(paths.tag_current_link(name, reference), str(digest).encode())
            self.driver.put_content(paths.tag_index_link(name, reference, digest), str(digest).encode())
        return digest, manifest

    def _check_references(self, name: str, manifest: Manifest) -> None:
        missing = [
            {"digest": str(d.digest)}
            for d in manifest.required_blobs()
            if not (self.blobs.is_linked(name, d.digest) and self.blobs.exists_global(d.digest))
        ]
        missing += [
            {"digest": str(d.digest)} for d in manifest.children if not self._is_revision(name, d.digest)
        ]
        if missing:
            raise RegistryError("MANIFEST_BLOB_UNKNOWN", "manifest references unknown blobs or manifests", missing)

    def delete_tag(self, name: str, tag: str) -> Digest:
        """Remove one tag; the manifest and any other tags on it stay."""
        digest = self.resolve(name, tag)
        self.driver.delete(paths.tag_dir(name, tag))
        return digest

    def delete(self, name: str, digest: Digest) -> list[str]:
        """Remove a manifest revision and every tag on it (the spec's rule); returns those tags."""
        self.resolve(name, digest)
        removed = [tag for tag in self.tags(name) if self._tag_target(name, tag) == digest]
        for tag in removed:
            self.driver.delete(paths.tag_dir(name, tag))
        self.driver.delete(paths.revision_link(name, digest).rsplit("/", 1)[0])
        return removed

    def tags(self, name: str) -> list[str]:
        """Tags in lexical (byte) order, the order pagination with `last` relies on.

        Only tags with a `current/link`: a push or delete cut off by a crash can leave a tag's
        folder without one, and such a tag must not be listed when GET answers 404 for it.
        """
        root = paths.tags(name)
        try:
            files = [info.path for info in self.driver.walk(root) if not info.is_dir]
        except PathNotFound:
            if not self._has_manifests(name):
                raise RegistryError("NAME_UNKNOWN", "repository name not known to registry", {"name": name}) from None
            return []
        current = "/current/link"
        return sorted(path[len(root) + 1 : -len(current)] for path in files
                      if path.endswith(current) and "/" not in path[len(root) + 1 : -len(current)])

    def referrers(self, name: str, subject: Digest, artifact_type: str | None) -> list[dict]:
        try:
            links = self.driver.list(paths.referrers(name, subject))
        except PathNotFound:
            return []
        descriptors = []
        for algorithm_dir in links:
            for entry in self.driver.list(algorithm_dir):
                digest = paths.link_target(entry)
                if not self._is_revision(name, digest):
                    continue
                try:
                    body = self.driver.get_content(paths.blob_data(digest))
                    manifest = parse(body, None)
                except (PathNotFound, InvalidManifest):
                    continue
                kind = manifest.effective_artifact_type()
                if artifact_type and kind != artifact_type:
                    continue
                descriptor = {"mediaType": manifest.media_type, "digest": str(digest), "size": len(body)}
                if kind:
                    descriptor["artifactType"] = kind
                if manifest.annotations:
                    descriptor["annotations"] = manifest.annotations
                descriptors.append(descriptor)
        return descriptors

    def _tag_target(self, name: str, tag: str) -> Digest | None:
        try:
            return Digest.parse(self.driver.get_content(paths.tag_current_link(name, tag)).decode())
        except (PathNotFound, InvalidDigest, UnicodeDecodeError):
            return None

    def _is_revision(self, name: str, digest: Digest) -> bool:
        try:
            self.driver.stat(paths.revision_link(name, digest))
        except PathNotFound:
            return False
        return True

    def _has_manifests(self, name: str) -> bool:
        """A repository with blobs or uploads only is not listed by the catalog, and its tags
        are 404 as in Distribution; one whose tags were all deleted lists none."""
        try:
            self.driver.stat(f"{paths.repository(name)}/_manifests")
        except PathNotFound:
            return False
        return True


def _stored_media_type(body: bytes) -> str:
    """The media type a stored manifest declares; OCI manifests may leave it implicit."""
    try:
        document = json.loads(body)
    except ValueError:
        return mediatypes.OCI_MANIFEST
    declared = document.get("mediaType") if isinstance(document, dict) else None
    if isinstance(declared, str) and declared:
        return declared
    if isinstance(document, dict) and "manifests" in document:
        return mediatypes.OCI_INDEX
    if isinstance(document, dict) and document.get("schemaVersion") == 1:
        return mediatypes.DOCKER_SCHEMA1_SIGNED
    return mediatypes.OCI_MANIFEST
