"""Small real images for tests: layer tars made with tarfile, configs as Docker writes them."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Sequence
from typing import Any

from engine.images.digests import sha256_digest
from engine.images.image_records import LayerRecord, NewImage
from engine.images.image_store import ImageStore
from engine.images.layer_blobs import MEDIA_TYPE_LAYER
from engine.images.reference import parse_docker_ref


def layer_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def config_json(diff_ids: list[str], **extra: Any) -> bytes:
    config: dict[str, Any] = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-02T03:04:05.123456789Z",
        "config": {"Env": ["PATH=/usr/bin:/bin"], "Cmd": ["sh"], "Labels": {"origin": "test"}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [
            {"created": "2024-01-02T03:04:05Z", "created_by": f"ADD layer{i}"} for i in range(len(diff_ids))
        ]
        + [{"created": "2024-01-02T03:04:06Z", "created_by": 'CMD ["sh"]', "empty_layer": True}],
    }
    config.update(extra)
    return json.dumps(config, sort_keys=True).encode()


def make_image(
    store: ImageStore, layers: list[dict[str, bytes]], tags: Sequence[str] = (), parent: str = "", **extra: Any
) -> NewImage:
    """Put the blobs of an image into `store`'s content store and describe it (not yet recorded)."""
    records = []
    for files in layers:
        data = layer_tar(files)
        digest = store.content.put(data)
        size = sum(len(v) for v in files.values())
        records.append(LayerRecord(digest, digest, MEDIA_TYPE_LAYER, len(data), size))
    config = config_json([r.diff_id for r in records], **extra)
    config_digest = store.content.put(config)
    assert config_digest == sha256_digest(config)
    return NewImage(config_digest, records, tags=[parse_docker_ref(t) for t in tags], parent=parent)
