"""RegistryClient: the one object the daemon uses to pull, push and list tags.

It owns the aiohttp session, the endpoint configuration and the auth state (tokens
are cached for the client's lifetime), and picks which endpoint serves a
reference: mirrors first for docker.io, HTTPS then HTTP for insecure registries.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TypeVar

import aiohttp

from engine.images.reference import Reference, parse_docker_ref

from . import progress as progress_events
from .auth import Authorizer
from .credentials import Credentials, CredentialStore
from .errors import NotFound, RegistryError, RegistryUnavailable
from .hosts import RegistryHosts
from .login import LoginResult, login
from .manifests import DEFAULT_PLATFORM, Platform
from .progress import ProgressCallback
from .pull import DistributionInspect, PulledImage, PullOptions, inspect_distribution, pull_image
from .push import PushOptions, PushResult, push_image
from .repository import Repository, catalog
from .sink import BlobSink, BlobSource
from .transport import RegistryTransport

log = logging.getLogger(__name__)

T = TypeVar("T")

USER_AGENT = "berth/0.1 (docker-compatible registry client)"


class RegistryClient:
    """Async registry client; use `async with RegistryClient(...) as client:`."""

    def __init__(
        self,
        hosts: RegistryHosts | None = None,
        credentials: CredentialStore | None = None,
        *,
        max_concurrent_downloads: int = 3,
        max_concurrent_uploads: int = 5,
        retries: int = 3,
        backoff: float = 0.5,
        timeout: aiohttp.ClientTimeout | None = None,
    ) -> None:
        self.hosts = hosts or RegistryHosts()
        self.credentials = credentials
        self.max_concurrent_downloads = max_concurrent_downloads
        self.max_concurrent_uploads = max_concurrent_uploads
        self.retries = retries
        self.backoff = backoff
        # No total timeout (layers can be big); only stalls count as failures.
        self._timeout = timeout or aiohttp.ClientTimeout(total=None, connect=30, sock_read=120)
        self._session: aiohttp.ClientSession | None = None
        self._transport: RegistryTransport | None = None

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
            self._transport = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """The client's aiohttp session, opened on first use (inside the event loop)."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, headers={"User-Agent": USER_AGENT}, auto_decompress=False
            )
        return self._session

    @property
    def transport(self) -> RegistryTransport:
        if self._transport is None:
            authorizer = Authorizer(self.session, self.hosts, self.credentials)
            self._transport = RegistryTransport(
                self.session, authorizer=authorizer, hosts=self.hosts, retries=self.retries, backoff=self.backoff
            )
        return self._transport

    @property
    def authorizer(self) -> Authorizer:
        return self.transport.authorizer

    async def pull(
        self,
        reference: str | Reference,
        sink: BlobSink,
        *,
        platform: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> PulledImage:
        """Pull `reference` into `sink`: manifest(s) and every blob, digest-verified."""
        ref = _parse(reference)
        options = PullOptions(
            platform=Platform.parse(platform or DEFAULT_PLATFORM),
            max_concurrent_downloads=self.max_concurrent_downloads,
            retries=self.retries,
            backoff=self.backoff,
            progress=progress or progress_events.ignore_progress,
        )
        return await self._on_endpoints(ref, False, lambda repo: pull_image(repo, ref, sink, options))

    async def push(
        self,
        reference: str | Reference,
        manifest: bytes,
        media_type: str,
        source: BlobSource,
        *,
        mount_from: tuple[str, ...] = (),
        chunk_size: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> PushResult:
        """Push a manifest (or index) with its blobs from `source`, tagged as `reference`.

        `mount_from` names repositories of the same registry to mount blobs from.
        """
        ref = _parse(reference)
        options = PushOptions(
            mount_from=mount_from,
            chunk_size=chunk_size,
            max_concurrent_uploads=self.max_concurrent_uploads,
            progress=progress or progress_events.ignore_progress,
        )
        tag = ref.tag if ref.digest is None else None
        return await self._on_endpoints(
            ref, True, lambda repo: push_image(repo, tag, manifest, media_type, source, options)
        )

    async def list_tags(self, repository: str | Reference, *, page_size: int | None = None) -> list[str]:
        ref = _parse(repository)
        return await self._on_endpoints(ref, False, lambda repo: repo.tags(page_size))

    async def login(self, server: str, credentials: Credentials) -> LoginResult:
        """Check credentials as `docker login` does; raises Unauthorized if refused."""
        return await login(self.session, self.hosts, server, credentials)

    async def inspect(self, reference: str | Reference) -> DistributionInspect:
        """What `GET /distribution/{name}/json` answers: the top descriptor and its platforms."""
        ref = _parse(reference)
        return await self._on_endpoints(ref, False, lambda repo: inspect_distribution(repo, ref))

    async def catalog(self, domain: str, *, page_size: int | None = None) -> list[str]:
        """Repositories of a registry (GET /v2/_catalog; optional in the spec)."""
        last: RegistryUnavailable | None = None
        for endpoint in self.hosts.endpoints(domain, for_push=True):
            try:
                await self.transport.ping(endpoint)
            except RegistryUnavailable as exc:
                last = exc
                continue
            return await catalog(self.transport, endpoint, page_size)
        assert last is not None, "hosts.endpoints() returned no endpoint"
        raise last

    async def _on_endpoints(
        self, ref: Reference, for_push: bool, operation: Callable[[Repository], Awaitable[T]]
    ) -> T:
        """Run `operation` on the first endpoint that can serve it.

        Like dockerd, a mirror's failure (unreachable, or not having the image) falls
        through to the next endpoint; the registry itself answers for real.
        """
        last_error: RegistryError | None = None
        for endpoint in self.hosts.endpoints(ref.domain, for_push=for_push):
            try:
                await self.transport.ping(endpoint)
            except RegistryUnavailable as exc:
                log.info("endpoint %s unavailable: %s", endpoint.url, exc)
                last_error = exc
                continue
            repo = Repository(self.transport, endpoint, ref.path)
            try:
                return await operation(repo)
            except (NotFound, RegistryUnavailable) as exc:
                if not endpoint.mirror:
                    raise
                log.info("mirror %s failed for %s (%s); trying the next endpoint", endpoint.url, ref, exc)
                last_error = exc
        assert last_error is not None, "hosts.endpoints() returned no endpoint"
        raise last_error


def _parse(reference: str | Reference) -> Reference:
    return reference if isinstance(reference, Reference) else parse_docker_ref(reference)
