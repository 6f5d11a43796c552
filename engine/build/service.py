"""The daemon's build backend: context upload → executor → images; the cache's prune.

The context arrives as the request body (a tar, maybe gzip/bzip2/xz/zstd
compressed: the docker CLI sends a plain tar).  It is spooled to a private
temp dir, extracted with the layer extractor (engine.snapshots.layer_apply:
openat2 RESOLVE_IN_ROOT, so ``..`` entries and symlinks cannot write
outside), and trimmed by its ``.dockerignore`` (the docker CLI already
trimmed it; other clients may not), keeping the Dockerfile and the ignore
file as docker/cli does.  Build work dirs live under ``<data-root>/tmp/build``
and are removed when the build ends, whatever happened.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from engine.build.cache import BuildCache
from engine.build.dockerignore import ContextFilter
from engine.build.errors import BuildError
from engine.build.executor import BUILD_STEP_LABEL, Builder, BuildOptions, Emit, read_dockerfile
from engine.images.errors import NotFound
from engine.images.image_store import ImageStore
from engine.snapshots.compression import open_uncompressed
from engine.snapshots.layer_apply import apply_layer
from engine.snapshots.mounts import unmount_all_under
from engine.snapshots.snapshotter import Snapshotter
from engine.store.database import MetadataDB

log = logging.getLogger(__name__)

MAX_CONTEXT_BYTES = 16 * 1024**3


class ContextError(BuildError):
    """The uploaded build context cannot be used (too big, not a tar, unsafe entries)."""


class BuildService:
    def __init__(self, images: ImageStore, snapshotter: Snapshotter, containers: Any, db: MetadataDB,
                 data_root: Path, registry_config: Callable[[], dict[str, list[str]]] | None = None) -> None:
        self.images = images
        self.snapshotter = snapshotter
        self.containers = containers
        self.cache = BuildCache(db)
        self.work_root = Path(data_root) / "tmp" / "build"
        self.registry_config = registry_config
        # BERTH_BUILD_CONTEXT_LIMIT (bytes) lowers the ceiling: for small machines, and for tests.
        self.max_context_bytes = int(os.environ.get("BERTH_BUILD_CONTEXT_LIMIT") or MAX_CONTEXT_BYTES)
        self._sweep()

    def _sweep(self) -> None:
        """Work dirs and step snapshots of builds a crash interrupted go at start-up (mounts first)."""
        if self.work_root.exists():
            unmount_all_under(self.work_root)
            shutil.rmtree(self.work_root, ignore_errors=True)
        self.work_root.mkdir(parents=True, exist_ok=True, mode=0o700)
        from engine.snapshots.snapshotter import Kind

        for info in list(self.snapshotter.walk()):
            if info.kind is not Kind.COMMITTED and info.name.startswith("build-"):
                try:
                    self.snapshotter.remove(info.name)
                    log.info("removed snapshot %s of an interrupted build", info.name)
                except Exception as exc:
                    log.warning("could not remove snapshot %s of an interrupted build: %s", info.name, exc)

    async def restore(self) -> None:
        """After a restart: the RUN containers of builds that died with the daemon are removed."""
        for record in self.containers.store.all():
            if (record.config.get("Labels") or {}).get(BUILD_STEP_LABEL):
                try:
                    await self.containers.remove(record.id, force=True, volumes=True)
                    log.info("removed container %s of an interrupted build", record.id[:12])
                except Exception as exc:
                    log.warning("could not remove container %s of an interrupted build: %s", record.id[:12], exc)

    async def build(self, body: AsyncIterator[bytes], options: BuildOptions, emit: Emit) -> str:
        work = Path(tempfile.mkdtemp(prefix="b-", dir=self.work_root))
        try:
            context = await receive_context(body, work, self.max_context_bytes)
            await asyncio.to_thread(trim_context, context, options.dockerfile)
            text = await asyncio.to_thread(read_dockerfile, context, options.dockerfile)
            await asyncio.to_thread(drop_ignored_build_files, context, options.dockerfile)
            builder = Builder(self.images, self.snapshotter, self.containers, self.cache, work, self.pull)
            return await builder.build(context, options, emit, text)
        finally:
            await asyncio.to_thread(_remove_work, work)

    async def pull(self, reference: str) -> None:
        """FROM an image that is not here (or --pull): the registry client, like `docker pull`."""
        from engine.images.pull_record import LeasedSink, record_pull
        from engine.images.reference import parse_docker_ref
        from engine.images.registry.client import RegistryClient
        from engine.images.registry.hosts import RegistryHosts

        ref = parse_docker_ref(reference)
        hosts = RegistryHosts.from_daemon_config(self.registry_config() if self.registry_config else {})
        async with RegistryClient(hosts) as client:
            with self.images.lease() as lease:
                pulled = await client.pull(ref, LeasedSink(self.images, lease))
                await asyncio.to_thread(record_pull, self.images, pulled)

    def cache_usage(self) -> list[dict[str, Any]]:
        """`GET /system/df`'s BuildCache: one record per cached step (the Engine API's BuildCache shape)."""
        items: list[dict[str, Any]] = []
        for entry in self.cache.entries():
            try:
                record = self.images.get(entry.image_id)
            except Exception:
                continue  # the step's image was removed: the entry is a miss anyway
            history = (self.images.config(record.id).get("history") or [{}])[-1]
            size = 0 if history.get("empty_layer") or not record.layers else record.layers[-1].unpacked_size
            items.append({"ID": record.id.removeprefix("sha256:")[:25], "Parents": [entry.parent] if entry.parent
                          else None, "Type": "regular", "Description": history.get("created_by", ""),
                          "InUse": False, "Shared": False, "Size": size, "CreatedAt": entry.created,
                          "LastUsedAt": None, "UsageCount": 0})
        return items

    def prune(self) -> dict[str, Any]:
        """`POST /build/prune`: forget the cache and remove the intermediate images only it kept."""
        entries = self.cache.clear()
        doomed = {entry.image_id for entry in entries}
        deleted: list[str] = []
        progress = True
        before = _content_bytes(self.images)
        while progress:
            progress = False
            for image_id in sorted(doomed - set(deleted)):
                try:
                    record = self.images.get(image_id)
                except NotFound:
                    doomed.discard(image_id)  # removed before (`docker rmi`): this prune deleted nothing
                    continue
                except Exception as exc:  # unreadable: it stays, and is not reported as deleted
                    log.warning("build prune keeps %s: it cannot be read: %s", image_id, exc)
                    doomed.discard(image_id)
                    continue
                if record.tags or self.images.users.containers_using(image_id):
                    continue
                try:
                    self.images.remove(image_id, prune=False)
                except Exception as exc:  # a child image (or a tag) still needs it: kept
                    log.debug("build prune keeps %s: %s", image_id, exc)
                    continue
                deleted.append(image_id)
                progress = True
        return {"CachesDeleted": sorted(set(deleted)) or None,
                "SpaceReclaimed": max(0, before - _content_bytes(self.images))}


async def receive_context(body: AsyncIterator[bytes], work: Path, limit: int = MAX_CONTEXT_BYTES) -> Path:
    """Spool the request body, then extract it to ``work``/context (see the module docstring)."""
    spool, context = work / "context.tar", work / "context"
    total = 0
    with open(spool, "wb") as out:
        async for chunk in body:
            total += len(chunk)
            if total <= limit:
                out.write(chunk)
    # Read to the end before refusing: a client still uploading would see a broken pipe, not the reason.
    if total > limit:
        raise ContextError(f"build context is larger than {limit} bytes")
    if total == 0:
        context.mkdir()
        return context
    if await asyncio.to_thread(_is_dockerfile, spool):
        # `docker build - < Dockerfile`: the body is the Dockerfile itself, no context (moby's detect.go).
        context.mkdir()
        os.replace(spool, context / "Dockerfile")
        return context
    await asyncio.to_thread(_terminate_tar, spool, total)
    await asyncio.to_thread(_extract, spool, context, limit)
    spool.unlink()
    return context


def _content_bytes(images: ImageStore) -> int:
    return sum(images.content.size(d) for d in images.content.walk() if images.content.has(d))


def _is_dockerfile(spool: Path) -> bool:
    """Neither compressed nor a tar: text, taken as a Dockerfile (tar's magic sits at offset 257)."""
    from engine.images.layer_blobs import detect_compression

    with open(spool, "rb") as f:
        head = f.read(512)
    if detect_compression(head) != "none":
        return False
    return len(head) < 512 or head[257:262] != b"ustar"


def _terminate_tar(spool: Path, size: int) -> None:
    """Pad a plain tar to a whole block and add the end-of-archive blocks.

    The docker CLI's tar, when `-f` names a Dockerfile outside the context
    (docker/cli ReplaceFileTarWrapper), stops right after the last member's
    data: Go's tar reader accepts that, Python's stream reader does not.
    Compressed contexts are left alone (zeros after a gzip stream are an error).
    """
    from engine.images.layer_blobs import detect_compression

    with open(spool, "rb+") as f:
        if detect_compression(f.read(8)) != "none":
            return
        f.seek(0, os.SEEK_END)
        f.write(b"\0" * ((-size) % 512 + 1024))


def _extract(spool: Path, context: Path, limit: int) -> None:
    from engine.snapshots.errors import SnapshotError

    try:
        with open(spool, "rb") as f:
            # The ceiling holds for what the archive unpacks to as well: a small compressed
            # body (a gzip bomb) must not fill the daemon's disk.
            plain, _ = open_uncompressed(f)
            apply_layer(context, io.BufferedReader(_Bounded(plain, limit), 1 << 16), durable=False)
    except ContextTooLarge as exc:
        raise ContextError(str(exc)) from exc
    except (SnapshotError, OSError, EOFError, ValueError) as exc:
        raise ContextError(f"the build context is not a usable tar archive: {exc}") from exc


class ContextTooLarge(Exception):
    pass


class _Bounded(io.RawIOBase):
    """A reader that fails once more than ``limit`` bytes have come through."""

    def __init__(self, inner: io.RawIOBase, limit: int) -> None:
        super().__init__()
        self._inner, self._left, self._limit = inner, limit, limit

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._inner.read(len(b))
        self._left -= len(data)
        if self._left < 0:
            raise ContextTooLarge(f"build context unpacks to more than {self._limit} bytes")
        b[: len(data)] = data
        return len(data)


def trim_context(context: Path, dockerfile: str) -> None:
    """Remove what the context's .dockerignore excludes (the Dockerfile and .dockerignore stay)."""
    ignore = context / ".dockerignore"
    if not ignore.is_file() or ignore.is_symlink():
        return
    keep = set(ContextFilter.from_file_text(ignore.read_text(errors="replace"), dockerfile).walk(context))
    pending = [""]
    while pending:
        current = pending.pop()
        directory = context / current if current else context
        for entry in os.scandir(directory):
            rel = f"{current}/{entry.name}" if current else entry.name
            if rel not in keep:
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
            elif entry.is_dir(follow_symlinks=False):
                pending.append(rel)


def drop_ignored_build_files(context: Path, dockerfile: str) -> None:
    """Once the Dockerfile is read: .dockerignore and the Dockerfile go when the patterns exclude them.

    docker/cli always sends both (TrimBuildFilesFromExcludes); moby then
    removes the ones the patterns match, so `COPY . /` does not carry them
    (builder/remotecontext/detect.go, removeDockerfile).
    """
    from engine.build.dockerignore import compile_pattern, read_patterns

    ignore = context / ".dockerignore"
    if not ignore.is_file() or ignore.is_symlink():
        return
    raw = ContextFilter([], None)
    raw.patterns = [compile_pattern(p) for p in read_patterns(ignore.read_text(errors="replace")) if p.strip()]
    for name in (dockerfile, ".dockerignore"):
        path = context / name
        if raw.excluded(name) and path.is_file() and not path.is_symlink() and context in path.resolve().parents:
            path.unlink()


def _remove_work(work: Path) -> None:
    unmount_all_under(work)
    shutil.rmtree(work, ignore_errors=True)
