"""Media types a registry serves (OCI image-spec v1.1 and Docker's image manifest v2)."""

from __future__ import annotations

# The common types live once, in engine/images/media_types.py; what only the registry needs is here.
from engine.images.media_types import (
    DOCKER_CONFIG,
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD,
    OCI_MANIFEST,
)

__all__ = [
    "DOCKER_CONFIG", "DOCKER_FOREIGN_LAYER", "DOCKER_LAYER_GZIP", "DOCKER_MANIFEST", "DOCKER_MANIFEST_LIST",
    "DOCKER_SCHEMA1", "DOCKER_SCHEMA1_SIGNED", "INDEX_TYPES", "MANIFEST_ACCEPT", "MANIFEST_TYPES", "OCI_CONFIG",
    "OCI_INDEX", "OCI_LAYER", "OCI_LAYER_GZIP", "OCI_LAYER_ZSTD", "OCI_MANIFEST", "SCHEMA1_TYPES",
]

DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"

INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
SCHEMA1_TYPES = frozenset({DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED})

# The Accept header of a manifest GET: a registry picks the best it has among these
# (distribution-spec "Pulling manifests"); schema 1 is left out on purpose, as in
# Docker 20.10+, so old registries answer 404 rather than a format we refuse.
MANIFEST_ACCEPT = ", ".join([OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST])
