"""Turns recipes into `docker save` archives under an output directory, skipping unchanged ones."""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.images import archive_write
from installers.images import image_config
from installers.images.cache import BuildCache, files_digest
from installers.images.errors import SeedImageError
from installers.images.image_config import host_platform, oci_config
from installers.images.mounts import remove_tree
from installers.images.recipe import Recipe

log = logging.getLogger(__name__)

# Files every image's bytes depend on, besides the recipe's own.
_SHARED_CODE = [Path(__file__), Path(archive_write.__file__), Path(image_config.__file__)]


@dataclass(frozen=True)
class BuildResult:
    name: str
    archive: Path
    rebuilt: bool
    seconds: float
    size: int
    digest: str
    note: str = ""


def cache_key(recipe: Recipe, platform: tuple[str, str]) -> str:
    """Everything the archive's bytes depend on: the recipe's inputs, the code, the platform."""
    material = {
        "name": recipe.name,
        "repo_tag": recipe.repo_tag,
        "inputs": recipe.input_key(),
        "code": files_digest([*_SHARED_CODE, *recipe.code_files()]),
        "platform": list(platform),
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def build_images(out_dir: Path, recipes: Sequence[Recipe], *, force: bool = False) -> list[BuildResult]:
    """Builds each recipe's archive into out_dir unless its cache key is unchanged (or force)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    platform = host_platform()
    cache = BuildCache(out_dir)
    results = []
    # Two `make images` at once would race on the same archive names.
    with (out_dir / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for recipe in recipes:
            results.append(_build_one(out_dir, recipe, platform, cache, force))
    return results


def _build_one(
    out_dir: Path, recipe: Recipe, platform: tuple[str, str], cache: BuildCache, force: bool
) -> BuildResult:
    started = time.monotonic()
    archive = out_dir / f"{recipe.name}.tar"
    try:
        key = cache_key(recipe, platform)
    except SeedImageError as e:
        # Offline (mirror unreachable) or a tool gone: a good archive from an earlier
        # build is still the best answer; without one, the build cannot proceed.
        kept = None if force else cache.current_digest(recipe.name, None, archive)
        if kept is None:
            raise
        log.warning("%s: cannot check its inputs (%s); keeping %s", recipe.name, e, archive)
        note = f"kept, inputs not checked: {e}"
        return BuildResult(recipe.name, archive, False, time.monotonic() - started, archive.stat().st_size, kept, note)
    cached = None if force else cache.current_digest(recipe.name, key, archive)
    if cached is not None:
        return BuildResult(recipe.name, archive, False, time.monotonic() - started, archive.stat().st_size, cached)

    cache.forget(recipe.name)
    workdir = Path(tempfile.mkdtemp(prefix=f".work-{recipe.name}-", dir=out_dir))
    try:
        seed = recipe.build_rootfs(workdir)
        layer = workdir / "layer.tar"
        with layer.open("wb") as f:
            diff_id = archive_write.write_layer_tar(seed.rootfs, f, mtime=seed.epoch, owner=seed.owner)
        config = oci_config(seed.config, diff_id.digest, seed.epoch, platform)
        image = archive_write.ArchiveImage(repo_tags=[recipe.repo_tag], config=config, layers=[layer])
        partial = workdir / "archive.tar"
        with partial.open("wb") as f:
            digest = archive_write.write_docker_archive(f, [image], mtime=seed.epoch)
        partial.replace(archive)
    finally:
        remove_tree(workdir)
    cache.record(recipe.name, key, digest.digest)
    log.info("%s: built %s (%s)", recipe.name, archive, digest.digest)
    return BuildResult(recipe.name, archive, True, time.monotonic() - started, digest.size, digest.digest)
