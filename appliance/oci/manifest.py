"""Parse and validate image manifests and indexes, and find what they reference."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from . import mediatypes
from .digest import Digest, InvalidDigest

FOREIGN_LAYERS = frozenset(
    {
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    }
)


class InvalidManifest(ValueError):
    """The manifest cannot be stored: the message says why."""


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: Digest
    size: int
    artifact_type: str | None = None
    platform: dict[str, Any] | None = None
    annotations: dict[str, str] | None = None
    urls: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": str(self.digest),
            "size": self.size,
        }
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        if self.platform:
            out["platform"] = self.platform
        if self.annotations:
            out["annotations"] = self.annotations
        return out


@dataclass(frozen=True)
class Manifest:
    media_type: str
    config: Descriptor | None
    layers: tuple[Descriptor, ...]
    children: tuple[Descriptor, ...]
    subject: Descriptor | None
    artifact_type: str | None
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def is_index(self) -> bool:
        return self.media_type in mediatypes.INDEXES

    @property
    def kind(self) -> str:
        """`index`, `image` (a runnable image config), or `artifact` (anything else: SBOMs,
        signatures, Helm charts), as an operator would sort them."""
        if self.is_index:
            return "index"
        if self.artifact_type or (self.config and self.config.media_type not in mediatypes.IMAGE_CONFIGS):
            return "artifact"
        return "image"

    def required_blobs(self) -> tuple[Descriptor, ...]:
        """Blobs that must exist in the repository; foreign layers live elsewhere."""
        blobs = (self.config,) if self.config else ()
        return blobs + tuple(d for d in self.layers if d.media_type not in FOREIGN_LAYERS)

    def effective_artifact_type(self) -> str | None:
        """The referrers API's artifactType: the field, else the config's media type."""
        if self.artifact_type:
            return self.artifact_type
        if self.config and not self.is_index:
            return self.config.media_type
        return None


def parse(body: bytes, content_type: str | None) -> Manifest:
    """Validate `body` as pushed with `content_type`; raise InvalidManifest with the reason.

    Deeply nested JSON (`[[[[...`) makes the decoder raise RecursionError: that is a bad
    manifest, not a server error.
    """
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidManifest(f"manifest is not valid JSON: {error}") from None
    except RecursionError:
        raise InvalidManifest("manifest is not valid JSON: nested too deeply") from None
    if not isinstance(document, dict):
        raise InvalidManifest("manifest must be a JSON object")
    if document.get("schemaVersion") != 2:
        raise InvalidManifest("only schemaVersion 2 manifests are supported (schema 1 is obsolete)")
    media_type = _media_type(document, content_type)
    subject = _descriptor(document["subject"], "subject") if "subject" in document else None
    artifact_type = document.get("artifactType")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise InvalidManifest("artifactType must be a string")
    annotations = _annotations(document.get("annotations"), "annotations") or {}
    if media_type in mediatypes.INDEXES:
        children = _descriptors(document.get("manifests"), "manifests")
        return Manifest(media_type, None, (), children, subject, artifact_type, annotations)
    if "config" not in document:
        raise InvalidManifest("config: required")
    config = _descriptor(document["config"], "config")
    layers = _descriptors(document.get("layers", []), "layers")
    return Manifest(media_type, config, layers, (), subject, artifact_type, annotations)


def _media_type(document: dict[str, Any], content_type: str | None) -> str:
    declared = document.get("mediaType")
    header = (content_type or "").split(";")[0].strip() or None
    if declared is not None and not isinstance(declared, str):
        raise InvalidManifest("mediaType must be a string")
    if declared and header and declared != header and header in mediatypes.SUPPORTED:
        raise InvalidManifest(f"mediaType {declared} does not match Content-Type {header}")
    media_type = declared or (header if header in mediatypes.SUPPORTED else None)
    if media_type is None:
        media_type = mediatypes.OCI_INDEX if "manifests" in document else mediatypes.OCI_MANIFEST
    if media_type not in mediatypes.SUPPORTED:
        raise InvalidManifest(f"unsupported manifest media type {media_type}")
    return media_type


def _descriptors(value: Any, where: str) -> tuple[Descriptor, ...]:
    if not isinstance(value, list):
        raise InvalidManifest(f"{where}: must be a list")
    return tuple(_descriptor(item, f"{where}[{i}]") for i, item in enumerate(value))


def _descriptor(value: Any, where: str) -> Descriptor:
    if not isinstance(value, dict):
        raise InvalidManifest(f"{where}: must be an object")
    media_type, size = value.get("mediaType"), value.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise InvalidManifest(f"{where}.mediaType: required")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidManifest(f"{where}.size: must be a non-negative integer")
    try:
        digest = Digest.parse(value.get("digest", ""))
    except (InvalidDigest, TypeError) as error:
        raise InvalidManifest(f"{where}.digest: {error}") from None
    platform = value.get("platform")
    if platform is not None and not isinstance(platform, dict):
        raise InvalidManifest(f"{where}.platform: must be an object")
    urls = value.get("urls") or []
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise InvalidManifest(f"{where}.urls: must be a list of strings")
    artifact_type = value.get("artifactType")
    return Descriptor(
        media_type,
        digest,
        size,
        artifact_type if isinstance(artifact_type, str) else None,
        platform,
        _annotations(value.get("annotations"), f"{where}.annotations"),
        tuple(urls),
    )


def _annotations(value: Any, where: str) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidManifest(f"{where}: must be a map of strings")
    return value


def schema1_blobs(body: bytes) -> tuple[Digest, ...] | None:
    """The layers of an old schema 1 manifest (registry:2 data may hold them), else None."""
    try:
        document = json.loads(body)
        if document.get("schemaVersion") != 1:
            return None
        return tuple(Digest.parse(layer["blobSum"]) for layer in document["fsLayers"])
    except (ValueError, RecursionError, AttributeError, KeyError, TypeError, InvalidDigest):
        return None
