"""What a tag or manifest is, in an operator's terms: kind, size, age, platforms, config.

Sizes are stored bytes of distinct blobs (the manifest, its config and layers, and for an
index the same for every child), each counted once: what the tag keeps on disk.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from appliance.oci import mediatypes
from appliance.oci.digest import Digest
from appliance.oci.manifest import Manifest
from appliance.storage import paths
from appliance.storage.driver import PathNotFound, StorageDriver

from .inventory import ManifestReader, tag_targets
from .manifests import ManifestStore

MAX_CONFIG_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class TagSummary:
    tag: str
    digest: str
    media_type: str
    kind: str
    size: int
    created: str | None
    platforms: list[dict[str, str]]


@dataclass(frozen=True)
class ConfigSummary:
    digest: str
    media_type: str
    size: int
    created: str | None = None
    os: str | None = None
    architecture: str | None = None
    variant: str | None = None
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ManifestDetails:
    name: str
    digest: str
    media_type: str
    kind: str
    size: int
    tags: list[str]
    manifest: Any
    config: ConfigSummary | None
    layers: list[dict[str, Any]]
    children: list[dict[str, Any]]
    subject: str | None
    artifact_type: str | None
    annotations: dict[str, str]
    referrers: list[dict[str, Any]]


class Details:
    """Blocking reads: run them in a thread."""

    def __init__(self, driver: StorageDriver, manifests: ManifestStore) -> None:
        self.driver = driver
        self.manifests = manifests

    def tags(self, name: str) -> list[TagSummary]:
        self.manifests.tags(name)  # NAME_UNKNOWN for a repository that does not exist
        look = _Inspector(self.driver)
        found = []
        for tag, digest in sorted(tag_targets(self.driver, name).items()):
            media_type, manifest = look.manifest(digest)
            config = look.config(manifest)
            found.append(
                TagSummary(
                    tag,
                    str(digest),
                    media_type,
                    look.kind(digest),
                    look.size(digest),
                    config.created if config else None,
                    look.platforms(manifest, config),
                )
            )
        return found

    def manifest(self, name: str, reference: Digest | str) -> ManifestDetails:
        stored = self.manifests.get(name, reference)
        look = _Inspector(self.driver)
        _, manifest = look.manifest(stored.digest)
        try:
            document = json.loads(stored.body)
        except ValueError:
            document = None
        layers = [
            {"digest": str(d.digest), "size": d.size, "media_type": d.media_type}
            for d in (manifest.layers if manifest else ())
        ]
        children = [
            {
                "digest": str(d.digest),
                "size": d.size,
                "media_type": d.media_type,
                "platform": d.platform,
            }
            for d in (manifest.children if manifest else ())
        ]
        referrers = [
            {
                "digest": r["digest"],
                "artifact_type": r.get("artifactType"),
                "media_type": r["mediaType"],
                "size": r["size"],
            }
            for r in self.manifests.referrers(name, stored.digest, None)
        ]
        return ManifestDetails(
            name=name,
            digest=str(stored.digest),
            media_type=stored.media_type,
            kind=look.kind(stored.digest),
            size=look.size(stored.digest),
            tags=sorted(t for t, d in tag_targets(self.driver, name).items() if d == stored.digest),
            manifest=document,
            config=look.config(manifest),
            layers=layers,
            children=children,
            subject=str(manifest.subject.digest) if manifest and manifest.subject else None,
            artifact_type=manifest.effective_artifact_type()
            if manifest and manifest.kind != "image"
            else None,
            annotations=manifest.annotations if manifest else {},
            referrers=referrers,
        )


class _Inspector:
    """One question's reads, each manifest and config parsed once."""

    def __init__(self, driver: StorageDriver) -> None:
        self.driver = driver
        self.reader = ManifestReader(driver)

    def manifest(self, digest: Digest) -> tuple[str, Manifest | None]:
        """The stored media type and the parsed manifest (None for schema 1 or unreadable)."""
        refs = self.reader.references(digest)
        manifest = refs.manifest if refs else None
        if manifest is not None:
            return manifest.media_type, manifest
        return (mediatypes.DOCKER_SCHEMA1_SIGNED if refs and refs.readable else "unknown"), None

    def kind(self, digest: Digest) -> str:
        refs = self.reader.references(digest)
        if refs is None or not refs.readable:
            return "unknown"
        return refs.manifest.kind if refs.manifest else "image"

    def size(self, digest: Digest) -> int:
        blobs: set[Digest] = set()
        pending = [digest]
        while pending:
            current = pending.pop()
            if current in blobs:
                continue
            blobs.add(current)
            refs = self.reader.references(current)
            if refs is not None:
                blobs.update(refs.blobs)
                pending += refs.children
        return sum(self._stored_size(blob) for blob in blobs)

    def config(self, manifest: Manifest | None) -> ConfigSummary | None:
        """The image config's useful fields; only runnable image configs are read."""
        if manifest is None or manifest.config is None:
            return None
        descriptor = manifest.config
        summary = ConfigSummary(str(descriptor.digest), descriptor.media_type, descriptor.size)
        if (
            descriptor.media_type not in mediatypes.IMAGE_CONFIGS
            or descriptor.size > MAX_CONFIG_BYTES
        ):
            return summary
        try:
            document = json.loads(self.driver.get_content(paths.blob_data(descriptor.digest)))
        except (PathNotFound, ValueError, RecursionError):
            return summary
        if not isinstance(document, dict):
            return summary
        runtime = document.get("config") if isinstance(document.get("config"), dict) else {}
        labels = runtime.get("Labels")
        return ConfigSummary(
            summary.digest,
            summary.media_type,
            summary.size,
            created=_text(document.get("created")),
            os=_text(document.get("os")),
            architecture=_text(document.get("architecture")),
            variant=_text(document.get("variant")),
            entrypoint=_words(runtime.get("Entrypoint")),
            cmd=_words(runtime.get("Cmd")),
            labels={k: v for k, v in labels.items() if isinstance(v, str)}
            if isinstance(labels, dict)
            else {},
        )

    def platforms(
        self, manifest: Manifest | None, config: ConfigSummary | None
    ) -> list[dict[str, str]]:
        """An index's children's platforms; an image's own, from its config."""
        if manifest is not None and manifest.is_index:
            found = (child.platform or {} for child in manifest.children)
        elif config is not None and config.os:
            found = iter(
                [{"os": config.os, "architecture": config.architecture, "variant": config.variant}]
            )
        else:
            return []
        return [
            {key: str(p[key]) for key in ("os", "architecture", "variant") if p.get(key)}
            for p in found
        ]

    def _stored_size(self, digest: Digest) -> int:
        try:
            return self.driver.stat(paths.blob_data(digest)).size
        except PathNotFound:
            return 0


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _words(value: Any) -> list[str] | None:
    return [str(v) for v in value] if isinstance(value, list) else None
