"""HTTP to a registry endpoint: authorization, redirects, retries, error mapping.

Everything above this module speaks in endpoints, paths and scopes; everything
about 401 challenges, Location headers and flaky connections stays here.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp

from .auth import Authorizer
from .errors import NotFound, RegistryError, RegistryUnavailable, Unauthorized, describe_error, error_codes
from .hosts import Endpoint, RegistryHosts

log = logging.getLogger(__name__)

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5
_IDEMPOTENT = frozenset({"GET", "HEAD"})

Body = bytes | Callable[[], Any] | None


class RegistryTransport:
    """Sends requests to registry endpoints on one aiohttp session."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        hosts: RegistryHosts,
        authorizer: Authorizer,
        *,
        retries: int = 3,
        backoff: float = 0.5,
    ) -> None:
        self.session = session
        self.hosts = hosts
        self.authorizer = authorizer
        self.retries = retries
        self.backoff = backoff
        self._pinged: dict[Endpoint, bool] = {}

    async def ping(self, endpoint: Endpoint) -> None:
        """`GET /v2/` (distribution-spec "Determining support"): 200 or 401 means a registry.

        A 401 tells us the auth scheme before the first real request, as dockerd does.
        """
        if self._pinged.get(endpoint):
            return
        url = f"{endpoint.url}/v2/"
        try:
            async with self.session.get(
                url, ssl=self.hosts.ssl_context(endpoint), allow_redirects=True, proxy=self.hosts.proxies.for_url(url)
            ) as response:
                await response.read()
                if response.status == 401:
                    self.authorizer.record_challenge(endpoint.host, response.headers.getall("WWW-Authenticate", []))
                elif response.status != 200:
                    raise RegistryUnavailable(
                        f'Get "{url}": unexpected status {response.status} (not a registry v2 endpoint?)'
                    )
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise RegistryUnavailable(f'Get "{url}": {_describe(exc)}') from exc
        log.debug("registry endpoint %s answers", endpoint.url)
        self._pinged[endpoint] = True

    @asynccontextmanager
    async def request(
        self,
        endpoint: Endpoint,
        method: str,
        url: str,
        *,
        scopes: Sequence[str] = (),
        headers: Mapping[str, str] | None = None,
        data: Body = None,
        ok: Sequence[int] = (200,),
        what: str = "",
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """Send a request and yield a response whose status is in `ok`.

        `url` is a path on the endpoint or an absolute URL (upload Locations).  Other
        statuses raise a RegistryError via `raise_for_status`; GET/HEAD are retried with
        backoff on connection errors and 5xx.
        """
        full = urljoin(endpoint.url + "/", url)
        attempt = 0
        refreshed_auth = False
        while True:
            response = await self._send(endpoint, method, full, scopes, headers, data)
            if response.status == 401 and not refreshed_auth:
                # A first 401, or a token lacking scope (error="insufficient_scope"):
                # learn the challenge, drop the cached token, and try once more.
                challenge_values = response.headers.getall("WWW-Authenticate", [])
                response.release()
                refreshed_auth = True
                self.authorizer.invalidate(endpoint.host, scopes)
                if self.authorizer.record_challenge(endpoint.host, challenge_values) is not None:
                    continue
                response = await self._send(endpoint, method, full, scopes, headers, data)
            if response.status >= 500 and method in _IDEMPOTENT and attempt < self.retries:
                response.release()
                attempt += 1
                delay = self.backoff * 2 ** (attempt - 1)
                log.warning("%s %s: status %d, retry %d in %.1fs", method, full, response.status, attempt, delay)
                await asyncio.sleep(delay)
                continue
            break
        try:
            if response.status not in ok:
                await raise_for_status(response, what or f"{method} {full}")
            yield response
        finally:
            response.release()

    async def _send(
        self,
        endpoint: Endpoint,
        method: str,
        url: str,
        scopes: Sequence[str],
        headers: Mapping[str, str] | None,
        data: Body,
    ) -> aiohttp.ClientResponse:
        attempt = 0
        while True:
            try:
                return await self._send_following_redirects(endpoint, method, url, scopes, headers, data)
            except (TimeoutError, aiohttp.ClientConnectionError, OSError) as exc:
                if method not in _IDEMPOTENT or attempt >= self.retries:
                    raise RegistryUnavailable(f'{method.title()} "{url}": {_describe(exc)}') from exc
                attempt += 1
                delay = self.backoff * 2 ** (attempt - 1)
                log.warning("%s %s: %s, retry %d in %.1fs", method, url, _describe(exc), attempt, delay)
                await asyncio.sleep(delay)

    async def _send_following_redirects(
        self,
        endpoint: Endpoint,
        method: str,
        url: str,
        scopes: Sequence[str],
        headers: Mapping[str, str] | None,
        data: Body,
    ) -> aiohttp.ClientResponse:
        origin = urlsplit(endpoint.url)
        for _ in range(_MAX_REDIRECTS + 1):
            target = urlsplit(url)
            send_headers = dict(headers or {})
            same_origin = (target.scheme, target.netloc) == (origin.scheme, origin.netloc)
            if same_origin:
                ssl = self.hosts.ssl_context(endpoint)
                authorization = await self.authorizer.authorization(endpoint.host, scopes)
                if authorization:
                    send_headers["Authorization"] = authorization
            else:
                # Blob GETs may redirect to storage (S3, a CDN): never send the
                # registry's credentials there (distribution-spec "Pulling blobs").
                other = Endpoint(target.scheme, target.netloc, verify_tls=not self.hosts.is_insecure(target.netloc))
                ssl = self.hosts.ssl_context(other)
            body = data() if callable(data) else data
            response = await self.session.request(
                method,
                url,
                headers=send_headers,
                data=body,
                ssl=ssl,
                allow_redirects=False,
                proxy=self.hosts.proxies.for_url(url),
            )
            if response.status in _REDIRECTS and "Location" in response.headers and method in _IDEMPOTENT:
                location = urljoin(url, response.headers["Location"])
                response.release()
                log.debug("%s %s redirected to %s", method, url, location)
                url = location
                continue
            return response
        raise RegistryUnavailable(f'{method.title()} "{url}": stopped after {_MAX_REDIRECTS} redirects')


async def raise_for_status(response: aiohttp.ClientResponse, what: str) -> None:
    """Turn an error response into the matching RegistryError (Docker's wording)."""
    body = await response.read() if response.method != "HEAD" else b""
    text = describe_error(response.status, body)
    codes = error_codes(body)
    if response.status in (401, 403):
        raise Unauthorized(text, codes)
    if response.status == 404:
        raise NotFound(text, codes or frozenset({"NOT_FOUND"}))
    if response.status >= 500:
        raise RegistryUnavailable(f"{what}: {text}", codes)
    raise RegistryError(f"{what}: {text}", codes)


def _describe(exc: BaseException) -> str:
    """A connection error as one stable line (aiohttp's text embeds object addresses)."""
    if isinstance(exc, asyncio.TimeoutError):
        return "timeout"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return f"tls: failed to verify certificate: {exc.certificate_error}"
    if isinstance(exc, aiohttp.ClientSSLError):
        return f"tls: {exc.os_error}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        errno = exc.os_error.errno if exc.os_error else None
        reason = os.strerror(errno) if errno else "connection failed"
        return f"dial tcp {exc.host}:{exc.port}: connect: {reason.lower()}"
    return str(exc) or type(exc).__name__
