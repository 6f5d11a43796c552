"""Manifests, indexes and descriptors as the registry serves them, plus platform choice.

Follows OCI image-spec v1.1 (manifest.md, image-index.md, descriptor.md) and Docker's
image manifest v2 schema 2 / manifest list, which share the same JSON shape.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import mediatypes
from .errors import DigestMismatch, ManifestError, PlatformNotFound

DEFAULT_PLATFORM = "linux/amd64"

# GOARCH spellings used by image indexes, for what uname and users may type.
_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm", "armel": "arm"}


@dataclass(frozen=True)
class Platform:
    """An os/architecture[/variant] triple (image-index.md "platform")."""

    os: str
    architecture: str
    variant: str = ""

    @classmethod
    def parse(cls, text: str) -> Platform:
        """Parse "os/arch[/variant]" (Docker's --platform); a bare "arch" means linux."""
        parts = [part.strip().lower() for part in text.split("/")]
        if len(parts) == 1:
            parts = ["linux", *parts]
        if len(parts) > 3 or not all(parts):
            raise ManifestError(f"invalid platform {text!r}: expected os/arch[/variant]")
        return cls(*parts).normalized()

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Platform:
        return cls(
            str(document.get("os", "")), str(document.get("architecture", "")), str(document.get("variant", ""))
        ).normalized()

    def normalized(self) -> Platform:
        """containerd's platforms.Normalize: arm64 has v8 implied, arm has v7 implied."""
        arch = _ARCH_ALIASES.get(self.architecture, self.architecture)
        variant = self.variant
        if arch == "arm64" and variant in ("8", "v8"):
            variant = ""
        if arch == "arm" and variant in ("", "7"):
            variant = "v7"
        return Platform(self.os, arch, variant)

    def __str__(self) -> str:
        return "/".join(part for part in (self.os, self.architecture, self.variant) if part)


@dataclass(frozen=True)
class Descriptor:
    """A content descriptor (descriptor.md): what a manifest says about one blob."""

    media_type: str
    digest: str
    size: int
    urls: tuple[str, ...] = ()
    platform: Platform | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, document: Any) -> Descriptor:
        if not isinstance(document, dict):
            raise ManifestError("descriptor is not a JSON object")
        try:
            digest = document["digest"]
            size = document["size"]
        except KeyError as exc:
            raise ManifestError(f"descriptor without {exc.args[0]}") from exc
        if not isinstance(digest, str) or ":" not in digest or not isinstance(size, int) or size < 0:
            raise ManifestError(f"invalid descriptor {document!r}")
        platform = document.get("platform")
        return cls(
            media_type=str(document.get("mediaType", "")),
            digest=digest,
            size=size,
            urls=tuple(document.get("urls") or ()),
            platform=Platform.from_json(platform) if isinstance(platform, dict) else None,
            annotations=dict(document.get("annotations") or {}),
        )

    @property
    def short_id(self) -> str:
        """The 12 hex digits Docker's progress lines use as the layer id."""
        return self.digest.split(":", 1)[-1][:12]


@dataclass(frozen=True)
class ImageManifest:
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]


@dataclass(frozen=True)
class ImageIndex:
    media_type: str
    manifests: tuple[Descriptor, ...]


def compute_digest(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def verify_digest(data: bytes, digest: str, what: str) -> None:
    """Raise DigestMismatch unless `data` hashes to `digest` (sha256/sha384/sha512)."""
    algorithm = digest.split(":", 1)[0]
    if algorithm not in ("sha256", "sha384", "sha512"):
        raise DigestMismatch(f"{what}: unsupported digest algorithm {algorithm!r}")
    actual = compute_digest(data, algorithm)
    if actual != digest:
        raise DigestMismatch(f"{what}: digest mismatch: expected {digest}, got {actual}")


def detect_media_type(data: bytes, content_type: str | None) -> str:
    """The manifest's media type: its `mediaType` field, else the Content-Type, else its shape.

    OCI manifests may omit `mediaType` (image-spec v1.0), and some registries answer
    with a generic Content-Type, so the body's own claim wins when present.
    """
    document = _load(data)
    declared = document.get("mediaType")
    if isinstance(declared, str) and declared:
        return declared
    if content_type:
        base = content_type.split(";", 1)[0].strip()
        if base in mediatypes.INDEX_TYPES | mediatypes.MANIFEST_TYPES | mediatypes.SCHEMA1_TYPES:
            return base
    if document.get("schemaVersion") == 1:
        return mediatypes.DOCKER_SCHEMA1
    if "manifests" in document:
        return mediatypes.OCI_INDEX
    if "config" in document:
        return mediatypes.OCI_MANIFEST
    raise ManifestError("cannot tell the manifest's media type")


def parse_manifest(data: bytes, media_type: str) -> ImageManifest | ImageIndex:
    if media_type in mediatypes.SCHEMA1_TYPES:
        # Docker removed schema 1 pulls in 28.x; we never supported it.
        raise ManifestError(
            "Docker Image Format v1 and Docker Image manifest version 2, schema 1 support has been removed"
        )
    document = _load(data)
    if media_type in mediatypes.INDEX_TYPES:
        entries = document.get("manifests")
        if not isinstance(entries, list):
            raise ManifestError("index without a manifests list")
        return ImageIndex(media_type, tuple(Descriptor.from_json(entry) for entry in entries))
    if media_type in mediatypes.MANIFEST_TYPES:
        layers = document.get("layers")
        if not isinstance(layers, list):
            raise ManifestError("manifest without a layers list")
        return ImageManifest(
            media_type, Descriptor.from_json(document.get("config")), tuple(Descriptor.from_json(x) for x in layers)
        )
    raise ManifestError(f"unsupported manifest media type {media_type!r}")


def _load(data: bytes) -> dict[str, Any]:
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ManifestError(f"manifest is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise ManifestError("manifest is not a JSON object")
    return document


def select_platform(index: ImageIndex, wanted: Platform) -> Descriptor:
    """Pick the index entry for `wanted`, as containerd's platform matcher does.

    os and architecture must match; a requested variant must match exactly; with no
    variant requested an entry without one is preferred, then the first match.
    Entries without a platform (attestations, artifacts) never match.
    """
    candidates: Sequence[Descriptor] = [
        entry
        for entry in index.manifests
        if entry.platform is not None
        and entry.media_type in mediatypes.MANIFEST_TYPES | {""}
        and entry.platform.os == wanted.os
        and entry.platform.architecture == wanted.architecture
    ]
    exact = [entry for entry in candidates if entry.platform and entry.platform.variant == wanted.variant]
    if exact:
        return exact[0]
    if not wanted.variant and candidates:
        return candidates[0]
    raise PlatformNotFound(f"no matching manifest for {wanted} in the manifest list entries")
