"""Pulling an image: resolve the reference, pick a platform, download blobs into a sink.

Order follows dockerd's pull (distribution/pull_v2.go): manifest (by tag or digest,
digest-verified), platform choice in an index, then config and layers downloaded in
parallel (three at a time by default, like `max-concurrent-downloads`), each resumed
with Range from what an earlier attempt left and verified while it streams.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

import aiohttp

from engine.images import errors as image_errors
from engine.images.reference import Reference

from . import mediatypes, progress
from .concurrency import run_all
from .errors import DigestMismatch, ManifestError, NotFound, PullAccessDenied, RegistryError, RegistryUnavailable
from .manifests import (
    Descriptor,
    ImageIndex,
    ImageManifest,
    Platform,
    parse_manifest,
    select_platform,
    verify_digest,
)
from .progress import ProgressCallback, ProgressEvent
from .repository import FetchedManifest, Repository
from .sink import BlobSink, BlobWriter

log = logging.getLogger(__name__)

CHUNK_SIZE = 256 * 1024
# Emit a "Downloading" event at most every this many bytes (dockerd throttles by time;
# bytes keep tests deterministic).
PROGRESS_STEP = 512 * 1024
MAX_CONFIG_SIZE = 16 * 1024 * 1024
_OPENERS = ThreadPoolExecutor(max_workers=32, thread_name_prefix="berth-ingest-open")


@dataclass(frozen=True)
class PulledImage:
    """What a pull produced; recording it as an image is the metadata store's job."""

    reference: Reference
    digest: str  # of the image manifest (the platform-specific one)
    media_type: str
    manifest: bytes
    config: Descriptor
    layers: tuple[Descriptor, ...]
    index_digest: str | None = None
    index_media_type: str | None = None
    index: bytes | None = None
    platform: Platform | None = None
    bytes_downloaded: int = 0  # network bytes of blob bodies (resumed parts not counted)


@dataclass
class PullOptions:
    platform: Platform = field(default_factory=lambda: Platform.parse("linux/amd64"))
    max_concurrent_downloads: int = 3
    retries: int = 5
    backoff: float = 0.5
    progress: ProgressCallback = progress.ignore_progress


async def pull_image(repo: Repository, ref: Reference, sink: BlobSink, options: PullOptions) -> PulledImage:
    top = await fetch_top_manifest(repo, ref)
    parsed = parse_manifest(top.data, top.media_type)
    index: FetchedManifest | None = None
    if isinstance(parsed, ImageIndex):
        index = top
        entry = select_platform(parsed, options.platform)
        log.info("pull %s: %s in index %s is %s", ref, options.platform, top.digest, entry.digest)
        top = await repo.get_manifest(entry.digest)
        parsed = parse_manifest(top.data, top.media_type)
        if not isinstance(parsed, ImageManifest):
            raise ManifestError(f"index entry {entry.digest} is not an image manifest")
    assert isinstance(parsed, ImageManifest)
    for fetched in (index, top):
        if fetched is not None:
            await asyncio.to_thread(_store_bytes, sink, fetched.digest, fetched.data)

    downloader = _Downloader(repo, sink, options)
    for layer in parsed.layers:
        if sink.has(layer.digest):
            options.progress(ProgressEvent(layer.short_id, progress.ALREADY_EXISTS))
        else:
            options.progress(ProgressEvent(layer.short_id, progress.PULLING_FS_LAYER))
    # A digest listed twice (empty layers often are) is downloaded once.
    unique = {layer.digest: layer for layer in parsed.layers}
    tasks = [downloader.download(parsed.config, report=False)]
    tasks += [
        downloader.download(layer, report=True) for layer in unique.values() if layer.digest != parsed.config.digest
    ]
    await run_all(tasks)
    config_platform = options.platform if index is not None else None
    return PulledImage(
        reference=ref,
        digest=top.digest,
        media_type=top.media_type,
        manifest=top.data,
        config=parsed.config,
        layers=parsed.layers,
        index_digest=index.digest if index else None,
        index_media_type=index.media_type if index else None,
        index=index.data if index else None,
        platform=config_platform,
        bytes_downloaded=downloader.bytes_downloaded,
    )


@dataclass(frozen=True)
class DistributionInspect:
    """The descriptor a reference resolves to and the platforms it offers."""

    descriptor: Descriptor
    platforms: tuple[Platform, ...]


async def inspect_distribution(repo: Repository, ref: Reference) -> DistributionInspect:
    """Resolve without pulling: for a single manifest the platform comes from its config,
    as dockerd's distribution inspect does."""
    top = await fetch_top_manifest(repo, ref)
    parsed = parse_manifest(top.data, top.media_type)
    descriptor = Descriptor(top.media_type, top.digest, len(top.data))
    if isinstance(parsed, ImageIndex):
        platforms = tuple(entry.platform for entry in parsed.manifests if entry.platform is not None)
        return DistributionInspect(descriptor, platforms)
    async with repo.open_blob(parsed.config.digest) as body:
        config = await body.response.content.read(MAX_CONFIG_SIZE + 1)
    if len(config) > MAX_CONFIG_SIZE:
        raise ManifestError(f"config {parsed.config.digest} is too large")
    verify_digest(config, parsed.config.digest, f"config {parsed.config.digest}")
    try:
        document = json.loads(config)
    except ValueError as exc:
        raise ManifestError(f"config {parsed.config.digest} is not JSON: {exc}") from exc
    return DistributionInspect(descriptor, (Platform.from_json(document),) if isinstance(document, dict) else ())


async def fetch_top_manifest(repo: Repository, ref: Reference) -> FetchedManifest:
    """The manifest (or index) a reference names, errors reworded as dockerd does
    (distribution/errors.go: notFoundError, "pull access denied")."""
    target = ref.digest or ref.tag or "latest"
    try:
        return await repo.get_manifest(target)
    except NotFound as exc:
        if "NAME_UNKNOWN" in exc.codes:
            raise NotFound(f"repository {ref.familiar_name} not found: {exc.message}", exc.codes) from exc
        raise NotFound(f"manifest for {ref.familiar()} not found: {exc.message}", exc.codes) from exc
    except RegistryError as exc:
        if "DENIED" in exc.codes:
            raise PullAccessDenied(
                f"pull access denied for {ref.familiar_name}, repository does not exist or may require "
                f"'docker login': {exc.message}",
                exc.codes,
            ) from exc
        raise


def _store_bytes(sink: BlobSink, digest: str, data: bytes) -> None:
    if sink.has(digest):
        return
    with sink.writer(digest, len(data)) as writer:
        if writer.offset:
            data = data[writer.offset :]
        writer.write(data)
        writer.commit()


class _BadPartial(DigestMismatch):
    """A resumed ingest failed verification; only the partial's head can be at fault."""


class _Downloader:
    def __init__(self, repo: Repository, sink: BlobSink, options: PullOptions) -> None:
        self.repo = repo
        self.sink = sink
        self.options = options
        self.semaphore = asyncio.Semaphore(max(1, options.max_concurrent_downloads))
        self.bytes_downloaded = 0

    async def download(self, blob: Descriptor, *, report: bool) -> None:
        if self.sink.has(blob.digest):
            return
        if blob.media_type == mediatypes.DOCKER_FOREIGN_LAYER or blob.urls:
            # Foreign layers (Windows base images) live outside the registry; Linux
            # images never use them, and following arbitrary URLs is a risk.
            log.warning("blob %s has urls %s; fetching it from the registry", blob.digest, blob.urls)
        emit = self.options.progress if report else progress.ignore_progress
        if self.semaphore.locked():
            emit(ProgressEvent(blob.short_id, progress.WAITING))
        async with self.semaphore:
            await self._download_locked(blob, emit)

    async def _download_locked(self, blob: Descriptor, emit: ProgressCallback) -> None:
        try:
            await self._download_once(blob, emit)
        except _BadPartial as exc:
            # A pull cancelled after writing bytes (or a disk fault) left a partial that is
            # not the blob.  The sink has discarded it, so this second go starts from zero;
            # failing here instead would break every later pull of the image too.
            log.warning("%s; downloading it again from the start", exc)
            await self._download_once(blob, emit)

    async def _download_once(self, blob: Descriptor, emit: ProgressCallback) -> None:
        algorithm = blob.digest.split(":", 1)[0]
        ingest = await _open_writer(self.sink, blob.digest, blob.size)
        with ingest as writer:
            if self.sink.has(blob.digest):
                # A parallel pull of the same blob committed it while we waited for its lock.
                await asyncio.to_thread(writer.commit)
                emit(ProgressEvent(blob.short_id, progress.DOWNLOAD_COMPLETE))
                return
            # With a partial from an earlier ingest we cannot hash its head here; the
            # sink's commit verifies the whole blob then.
            resumed = writer.offset > 0
            state = _Ingest(writer, writer.offset, None if resumed else hashlib.new(algorithm))
            if state.position:
                log.info("blob %s: resuming at %d of %d bytes", blob.digest, state.position, blob.size)
            attempt = 0
            # An ingest holding every byte (a pull that died before its commit) asks for
            # nothing: `Range: bytes=<size>-` gets a 416 (docker-registry's even carries a
            # wrong Content-Length).  As in containerd, the commit below verifies it.
            while state.position < blob.size:
                try:
                    await self._stream(blob, state, emit)
                    break
                except (TimeoutError, aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
                    # The connection broke mid-body: resume from what we have (Range).
                    attempt += 1
                    if attempt > self.options.retries:
                        raise RegistryUnavailable(f"download of {blob.digest} failed: {exc}") from exc
                    delay = self.options.backoff * 2 ** (attempt - 1)
                    log.warning(
                        "blob %s: %s at byte %d; retry %d in %.1fs", blob.digest, exc, state.position, attempt, delay
                    )
                    emit(ProgressEvent(blob.short_id, f"{progress.RETRYING} in {max(1, round(delay))} seconds"))
                    await asyncio.sleep(delay)
            emit(ProgressEvent(blob.short_id, progress.VERIFYING_CHECKSUM))
            actual = f"{algorithm}:{state.hasher.hexdigest()}" if state.hasher is not None else blob.digest
            try:
                # The sink verifies too, and discards a bad ingest so no resume reuses it.
                await asyncio.to_thread(writer.commit)
            except image_errors.DigestMismatch as exc:
                if resumed:
                    raise _BadPartial(f"blob {blob.digest}: resumed ingest: {exc}") from exc
                raise DigestMismatch(f"blob {blob.digest}: {exc}") from exc
            if actual != blob.digest:
                raise DigestMismatch(f"blob {blob.digest}: digest mismatch: downloaded content is {actual}")
        emit(ProgressEvent(blob.short_id, progress.DOWNLOAD_COMPLETE))

    async def _stream(self, blob: Descriptor, state: _Ingest, emit: ProgressCallback) -> None:
        async with self.repo.open_blob(blob.digest, state.position) as body:
            # A registry that ignored our Range sends the blob from 0: skip what we have.
            skip = state.position - body.start
            if skip < 0:
                raise RegistryError(f"blob {blob.digest}: registry resumed at {body.start}, we asked {state.position}")
            last_report = state.position
            emit(ProgressEvent(blob.short_id, progress.DOWNLOADING, state.position, blob.size))
            async for received in body.response.content.iter_chunked(CHUNK_SIZE):
                self.bytes_downloaded += len(received)
                chunk = received
                if skip:
                    dropped = min(skip, len(chunk))
                    chunk = chunk[dropped:]
                    skip -= dropped
                    if not chunk:
                        continue
                if state.position + len(chunk) > blob.size:
                    raise DigestMismatch(f"blob {blob.digest}: registry sent more than its {blob.size} bytes")
                state.write(chunk)
                if state.position - last_report >= PROGRESS_STEP or state.position == blob.size:
                    emit(ProgressEvent(blob.short_id, progress.DOWNLOADING, state.position, blob.size))
                    last_report = state.position
        if state.position < blob.size:
            # The body ended early: a dropped connection; the caller resumes from here.
            raise aiohttp.ClientPayloadError(
                f"blob {blob.digest}: body ended at {state.position} of {blob.size} bytes"
            )


async def _open_writer(sink: BlobSink, digest: str, size: int) -> AbstractContextManager[BlobWriter]:
    """Open an ingest in a thread: it may wait on another writer of the same digest.

    Those waits get their own pool: in the default executor they could take every
    thread while the writer they wait for needs one to commit (a deadlock seen with
    parallel pulls of one image).

    If we are cancelled meanwhile, the thread still hands a writer over later; it is
    then left (aborted, its partial kept) so its lock is not held forever.
    """
    loop = asyncio.get_running_loop()
    opening = asyncio.ensure_future(loop.run_in_executor(_OPENERS, sink.writer, digest, size))
    try:
        return await asyncio.shield(opening)
    except asyncio.CancelledError:
        opening.add_done_callback(_abandon_writer)
        raise


def _abandon_writer(opening: asyncio.Future[AbstractContextManager[BlobWriter]]) -> None:
    if opening.cancelled() or opening.exception() is not None:
        return
    cancelled = asyncio.CancelledError()
    # Leaving the context with an exception aborts the ingest (never commits it).
    opening.result().__exit__(type(cancelled), cancelled, None)


@dataclass
class _Ingest:
    """Where a blob download stands; survives the retries of one download."""

    writer: BlobWriter
    position: int
    hasher: hashlib._Hash | None

    def write(self, chunk: bytes) -> None:
        self.writer.write(chunk)
        if self.hasher is not None:
            self.hasher.update(chunk)
        self.position += len(chunk)
