"""Small, random test images built in a ContentStore: layers, config, manifest, index.

Random file contents make every image unique to its test, so no test sees blobs
another test pushed unless it means to (cross-repo mounts).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

from engine.images.content_store import ContentStore
from engine.images.registry import mediatypes
from engine.images.registry.manifests import compute_digest


@dataclass(frozen=True)
class Blob:
    media_type: str
    digest: str
    size: int

    def descriptor(self) -> dict[str, object]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@dataclass(frozen=True)
class TestImage:
    __test__ = False

    manifest: bytes
    media_type: str
    digest: str
    config: Blob
    layers: tuple[Blob, ...]

    @property
    def blob_digests(self) -> list[str]:
        return [self.config.digest, *(layer.digest for layer in self.layers)]


def layer_tar_gz(files: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    # mtime=0: the same files give the same digest.
    return gzip.compress(raw.getvalue(), mtime=0)


def make_image(
    store: ContentStore,
    *,
    layer_sizes: tuple[int, ...] = (4096, 8192),
    architecture: str = "amd64",
    variant: str = "",
    docker_types: bool = False,
    shared_layers: tuple[Blob, ...] = (),
) -> TestImage:
    """An image whose layers hold random bytes; `shared_layers` are prepended as-is."""
    layer_type = mediatypes.DOCKER_LAYER_GZIP if docker_types else mediatypes.OCI_LAYER_GZIP
    layers = list(shared_layers)
    for index, size in enumerate(layer_sizes):
        data = layer_tar_gz({f"file{index}.bin": os.urandom(size)})
        layers.append(Blob(layer_type, store.put(data), len(data)))
    platform: dict[str, str] = {"architecture": architecture, "os": "linux"}
    if variant:
        platform["variant"] = variant
    config_doc = {
        **platform,
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{'0' * 64}" for _ in layers]},
    }
    config_bytes = json.dumps(config_doc, sort_keys=True).encode()
    config_type = mediatypes.DOCKER_CONFIG if docker_types else mediatypes.OCI_CONFIG
    config = Blob(config_type, store.put(config_bytes), len(config_bytes))
    media_type = mediatypes.DOCKER_MANIFEST if docker_types else mediatypes.OCI_MANIFEST
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": config.descriptor(),
            "layers": [layer.descriptor() for layer in layers],
        }
    ).encode()
    digest = store.put(manifest)
    return TestImage(manifest, media_type, digest, config, tuple(layers))


def make_index(store: ContentStore, images: list[tuple[TestImage, str, str]]) -> tuple[bytes, str]:
    """An OCI index of (image, architecture, variant) entries; returns (bytes, digest)."""
    entries = []
    for image, architecture, variant in images:
        platform = {"architecture": architecture, "os": "linux"}
        if variant:
            platform["variant"] = variant
        entries.append(
            {"mediaType": image.media_type, "digest": image.digest, "size": len(image.manifest), "platform": platform}
        )
    data = json.dumps({"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX, "manifests": entries}).encode()
    return data, store.put(data)


def write_oci_layout(store: ContentStore, image: TestImage, directory: Path) -> Path:
    """An OCI image layout (image-layout.md) holding `image`, for `skopeo copy oci:<dir>`."""
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    for digest in [*image.blob_digests, image.digest]:
        (blobs / digest.split(":", 1)[1]).write_bytes(store.read(digest))
    (directory / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    index = {
        "schemaVersion": 2,
        "manifests": [{"mediaType": image.media_type, "digest": image.digest, "size": len(image.manifest)}],
    }
    (directory / "index.json").write_text(json.dumps(index))
    assert compute_digest(image.manifest) == image.digest
    return directory
