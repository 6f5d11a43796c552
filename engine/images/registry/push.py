"""Pushing an image: blobs first (skip, mount or upload), then manifests, then the tag.

distribution-spec "Push": a manifest may only be PUT once every blob it references
exists in the repository, and an index once its manifests exist.  Each blob is
checked with HEAD, then mounted from another repository of the same registry when
we know one that has it, else uploaded monolithically (POST + PUT) or in chunks
(POST + PATCH... + PUT).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from . import progress
from .concurrency import run_all
from .errors import ManifestError, UploadError
from .manifests import Descriptor, ImageIndex, ImageManifest, compute_digest, parse_manifest
from .progress import ProgressCallback, ProgressEvent
from .repository import Repository
from .sink import BlobSource

log = logging.getLogger(__name__)

READ_SIZE = 256 * 1024


@dataclass
class PushOptions:
    mount_from: Sequence[str] = ()  # repositories (same registry) that may hold the blobs
    chunk_size: int | None = None  # None: monolithic uploads; else PATCH chunks of this size
    max_concurrent_uploads: int = 5  # dockerd's max-concurrent-uploads default
    progress: ProgressCallback = progress.ignore_progress


@dataclass
class PushResult:
    digest: str
    uploaded: list[str] = field(default_factory=list)
    mounted: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)


async def push_image(
    repo: Repository,
    tag: str | None,
    manifest: bytes,
    media_type: str,
    source: BlobSource,
    options: PushOptions,
) -> PushResult:
    """Push `manifest` (an image manifest or an index) and everything it references."""
    result = PushResult(digest=compute_digest(manifest))
    semaphore = asyncio.Semaphore(max(1, options.max_concurrent_uploads))
    await _push_tree(repo, manifest, media_type, source, options, semaphore, result)
    await repo.put_manifest(tag or result.digest, manifest, media_type)
    log.info("pushed %s:%s as %s", repo.path, tag or "", result.digest)
    return result


async def _push_tree(
    repo: Repository,
    manifest: bytes,
    media_type: str,
    source: BlobSource,
    options: PushOptions,
    semaphore: asyncio.Semaphore,
    result: PushResult,
) -> None:
    parsed = parse_manifest(manifest, media_type)
    if isinstance(parsed, ImageIndex):
        for child in parsed.manifests:
            with source.open(child.digest) as handle:
                data = await asyncio.to_thread(handle.read)
            if not child.media_type:
                raise ManifestError(f"index entry {child.digest} has no mediaType")
            await _push_tree(repo, data, child.media_type, source, options, semaphore, result)
            if await repo.head_manifest(child.digest) is None:
                await repo.put_manifest(child.digest, data, child.media_type)
        return
    assert isinstance(parsed, ImageManifest)
    for layer in parsed.layers:
        options.progress(ProgressEvent(layer.short_id, progress.PREPARING))
    # A digest listed twice (empty layers often are) is pushed once.
    unique = {layer.digest: layer for layer in parsed.layers if layer.digest != parsed.config.digest}
    blobs = [(parsed.config, False)] + [(layer, True) for layer in unique.values()]
    await run_all(_push_blob(repo, blob, report, source, options, semaphore, result) for blob, report in blobs)


async def _push_blob(
    repo: Repository,
    blob: Descriptor,
    report: bool,
    source: BlobSource,
    options: PushOptions,
    semaphore: asyncio.Semaphore,
    result: PushResult,
) -> None:
    emit = options.progress if report else progress.ignore_progress
    if semaphore.locked():
        emit(ProgressEvent(blob.short_id, progress.WAITING))  # dockerd's word for a queued upload
    async with semaphore:
        if await repo.blob_size(blob.digest) is not None:
            result.existing.append(blob.digest)
            emit(ProgressEvent(blob.short_id, progress.LAYER_ALREADY_EXISTS))
            return
        location: str | None = None
        for candidate in options.mount_from:
            if candidate == repo.path:
                continue
            location = await repo.start_upload(mount=blob.digest, mount_from=candidate)
            if location is None:
                result.mounted.append(blob.digest)
                emit(ProgressEvent(blob.short_id, f"{progress.MOUNTED_FROM} {candidate}"))
                return
            # 202: the registry could not mount and opened a normal session instead.
            break
        if location is None:
            location = await repo.start_upload()
        if location is None:
            raise UploadError(f"registry answered a plain upload of {blob.digest} as a mount")
        if options.chunk_size and blob.size > 0:
            await _upload_chunked(repo, location, blob, source, options.chunk_size, emit)
        else:
            await _upload_monolithic(repo, location, blob, source, emit)
        result.uploaded.append(blob.digest)
        emit(ProgressEvent(blob.short_id, progress.PUSHED))


async def _upload_monolithic(
    repo: Repository, location: str, blob: Descriptor, source: BlobSource, emit: ProgressCallback
) -> None:
    def body() -> AsyncIterator[bytes]:
        return _read_blob(source, blob, emit)

    await repo.finish_upload(location, blob.digest, body, blob.size)


async def _upload_chunked(
    repo: Repository, location: str, blob: Descriptor, source: BlobSource, chunk_size: int, emit: ProgressCallback
) -> None:
    sent = 0
    with source.open(blob.digest) as handle:
        while sent < blob.size:
            chunk = await asyncio.to_thread(_read_exactly, handle, min(chunk_size, blob.size - sent))
            if not chunk:
                raise ManifestError(f"blob {blob.digest} is shorter than its {blob.size} bytes")
            location = await repo.upload_chunk(location, chunk, sent)
            sent += len(chunk)
            emit(ProgressEvent(blob.short_id, progress.PUSHING, sent, blob.size))
    await repo.finish_upload(location, blob.digest)


async def _read_blob(source: BlobSource, blob: Descriptor, emit: ProgressCallback) -> AsyncIterator[bytes]:
    sent = 0
    with source.open(blob.digest) as handle:
        while True:
            chunk = await asyncio.to_thread(handle.read, READ_SIZE)
            if not chunk:
                break
            sent += len(chunk)
            emit(ProgressEvent(blob.short_id, progress.PUSHING, sent, blob.size))
            yield chunk


def _read_exactly(handle: BinaryIO, size: int) -> bytes:
    parts: list[bytes] = []
    remaining = size
    while remaining:
        part = handle.read(remaining)
        if not part:
            break
        parts.append(part)
        remaining -= len(part)
    return b"".join(parts)
