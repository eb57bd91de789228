"""Fill a registry through the domain objects directly (no HTTP): fast fixtures for GC tests."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass

from appliance.oci.digest import Digest
from appliance.registry import Registry
from appliance.storage.filesystem import FilesystemDriver

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


class MemoryBody:
    """A registry `Body` held in memory."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.size = len(data)
        self.sha256 = hashlib.sha256(data)
        self.local_path = None

    def chunks(self) -> Iterator[bytes]:
        yield self.data


def open_registry(root: str) -> Registry:
    return Registry.open(FilesystemDriver(root), delete_enabled=True, max_manifest_bytes=4 << 20)


def push_blob(registry: Registry, name: str, data: bytes) -> Digest:
    upload = registry.uploads.start(name)
    digest = Digest.of(data)
    registry.uploads.finish(name, upload, digest, MemoryBody(data))
    return digest


@dataclass(frozen=True)
class Image:
    name: str
    tag: str | None
    digest: Digest
    blobs: tuple[Digest, ...]


def push_image(registry: Registry, name: str, tag: str | None, layers: list[bytes],
               subject: Image | None = None, artifact_type: str | None = None) -> Image:
    config = json.dumps({"architecture": "amd64", "os": "linux", "n": os.urandom(4).hex()}).encode()
    blobs = tuple(push_blob(registry, name, b) for b in (config, *layers))
    document: dict = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST if subject else DOCKER_MANIFEST,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "digest": str(blobs[0]), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": str(d),
                    "size": len(b)} for d, b in zip(blobs[1:], layers, strict=True)],
    }
    if subject:
        document["subject"] = {"mediaType": DOCKER_MANIFEST, "digest": str(subject.digest), "size": 1}
        document["artifactType"] = artifact_type
    body = json.dumps(document).encode()
    reference = tag if tag is not None else Digest.of(body)
    digest, _ = registry.manifests.put(name, reference, body, document["mediaType"])
    return Image(name, tag, digest, blobs)


def push_index(registry: Registry, name: str, tag: str, children: list[Image]) -> Image:
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": DOCKER_MANIFEST, "digest": str(c.digest), "size": 1,
                       "platform": {"os": "linux", "architecture": f"arch{i}"}} for i, c in enumerate(children)],
    }
    body = json.dumps(document).encode()
    digest, _ = registry.manifests.put(name, tag, body, OCI_INDEX)
    return Image(name, tag, digest, ())


def pulls_completely(registry: Registry, image: Image) -> bool:
    """The manifest and every blob it names are present and match their digests."""
    manifest = registry.manifests.get(image.name, image.digest)
    if Digest.of(manifest.body) != image.digest:
        return False
    for blob in image.blobs:
        reader, info = registry.blobs.open(image.name, blob)
        with reader:
            if Digest.of(reader.read()) != blob:
                return False
    return True


def pull_blob_bytes(registry: Registry, name: str, digest: Digest) -> bytes:
    reader, _ = registry.blobs.open(name, digest)
    with reader:
        return reader.read()
