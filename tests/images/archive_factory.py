"""Hand-made image archives for tests, including deliberately broken ones."""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.images.archive_write import ArchiveImage, write_docker_archive
from engine.images.digests import sha256_digest

from .image_factory import config_json, layer_tar


@dataclass(frozen=True)
class Link:
    target: str
    hard: bool = False


def write_tar(path: Path, members: list[tuple[str, bytes | Link | int]]) -> Path:
    """Members: bytes → file, Link → (sym|hard)link, int → special file of that tarfile type."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in members:
            info = tarfile.TarInfo(name)
            if isinstance(content, bytes):
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
            elif isinstance(content, Link):
                info.type = tarfile.LNKTYPE if content.hard else tarfile.SYMTYPE
                info.linkname = content.target
                tar.addfile(info)
            else:
                info.type = bytes([content])
                tar.addfile(info)
    return path


def docker_save_members(
    layers: list[bytes], tags: list[str], **config_extra: Any
) -> tuple[list[tuple[str, bytes | Link | int]], str]:
    """Members of a legacy (pre-v25) docker-save archive and the image id."""
    diff_ids = [sha256_digest(layer) for layer in layers]
    config = config_json(diff_ids, **config_extra)
    config_name = sha256_digest(config)[7:] + ".json"
    members: list[tuple[str, bytes | Link | int]] = [(config_name, config)]
    layer_paths = []
    for index, layer in enumerate(layers):
        path = f"layer{index}/layer.tar"
        members.append((path, layer))
        layer_paths.append(path)
    manifest = [{"Config": config_name, "RepoTags": tags, "Layers": layer_paths}]
    members.append(("manifest.json", json.dumps(manifest).encode()))
    return members, sha256_digest(config)


def write_archive_with_writer(path: Path, tmp: Path, tags: list[str], files: list[dict[str, bytes]]) -> str:
    """A real archive from H1's writer (the same code `save` uses); returns the image id."""
    layer_paths = []
    for index, layer_files in enumerate(files):
        layer_path = tmp / f"layer{index}.tar"
        layer_path.write_bytes(layer_tar(layer_files))
        layer_paths.append(layer_path)
    config = config_json([sha256_digest(p.read_bytes()) for p in layer_paths])
    with open(path, "wb") as out:
        write_docker_archive(out, [ArchiveImage(repo_tags=tags, config=config, layers=layer_paths)])
    return sha256_digest(config)
