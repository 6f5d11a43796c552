"""A misbehaving front for a real docker-registry: it forwards every request, and on
demand answers blob GETs with 503s, cuts blob bodies halfway, or redirects them to
another origin (as registries backed by S3 or a CDN do).  The registry behind it is
real; only the network between us and it is made unreliable, as in the field.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from tests.images.registry.threaded_app import ThreadedApp

_BLOB_GET = re.compile(r"^/v2/.+/blobs/sha256:[0-9a-f]{64}$")
_HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection"}


@dataclass
class SeenRequest:
    method: str
    path: str
    range: str | None
    authorization: bool


@dataclass
class FlakyProxy:
    upstream: str  # "http://127.0.0.1:port" of the real registry
    fail_blob_gets: int = 0
    cut_each_blob_once: bool = False  # drop the connection halfway through each blob's first GET
    redirect_blobs_to: str | None = None  # another origin serving the same registry
    deny_manifests: bool = False  # answer manifest GETs 403 DENIED, as Docker Hub does
    corrupt_blobs: bool = False  # flip one byte of every blob body
    pad_manifests: bool = False  # append a space to manifest bodies, keeping Docker-Content-Digest
    # Blob bodies are streamed; once `trip_after_bytes` blob bytes went out in all, `on_trip(digest)`
    # runs (in a thread) and the connection drops: a kill at an exact byte of a pull (see arm()).
    trip_after_bytes: int | None = None
    on_trip: Callable[[str], None] | None = None
    blob_bytes_sent: int = 0
    seen: list[SeenRequest] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        self._server = ThreadedApp("berthtest-flaky-proxy")
        self._client: aiohttp.ClientSession | None = None
        self._cut: set[str] = set()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(
            SeenRequest(request.method, request.path, request.headers.get("Range"), "Authorization" in request.headers)
        )
        if request.method == "CONNECT":
            # As a forward proxy it speaks plain HTTP only (no TLS tunnels).
            return web.Response(status=405, text="berthtest: no CONNECT")
        is_blob_get = request.method == "GET" and _BLOB_GET.match(request.path) is not None
        if is_blob_get and self.fail_blob_gets > 0:
            self.fail_blob_gets -= 1
            return web.Response(status=503, text="berthtest: injected failure")
        if self.deny_manifests and request.method == "GET" and "/manifests/" in request.path:
            denied = {"errors": [{"code": "DENIED", "message": "requested access to the resource is denied"}]}
            return web.json_response(denied, status=403)
        if is_blob_get and self.redirect_blobs_to:
            raise web.HTTPTemporaryRedirect(f"{self.redirect_blobs_to}{request.path_qs}")
        assert self._client is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        if is_blob_get and self.trip_after_bytes is not None:
            return await self._stream_until_trip(request, headers)
        body = await request.read()
        async with self._client.request(
            request.method, f"{self.upstream}{request.path_qs}", headers=headers, data=body or None,
            allow_redirects=False,
        ) as upstream:  # fmt: skip
            out_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_HEADERS}
            data = await upstream.read()
            if self.pad_manifests and "/manifests/" in request.path and request.method == "GET":
                data += b" "
            if is_blob_get and self.corrupt_blobs and data:
                data = bytes([data[0] ^ 0xFF]) + data[1:]
            digest = request.path.rsplit("/", 1)[-1]
            if is_blob_get and self.cut_each_blob_once and digest not in self._cut and len(data) > 1:
                self._cut.add(digest)
                response = web.StreamResponse(status=upstream.status, headers=out_headers)
                response.content_length = len(data)
                await response.prepare(request)
                await response.write(data[: len(data) // 2])
                assert request.transport is not None
                request.transport.abort()  # the connection drops mid-body
                return response
            return web.Response(status=upstream.status, headers=out_headers, body=data)

    def arm(self, after_bytes: int, on_trip: Callable[[str], None]) -> None:
        """Trip once `after_bytes` more blob bytes have been served."""
        self.blob_bytes_sent = 0
        self.trip_after_bytes = after_bytes
        self.on_trip = on_trip

    def disarm(self) -> None:
        self.trip_after_bytes = None
        self.on_trip = None

    async def _stream_until_trip(self, request: web.Request, headers: dict[str, str]) -> web.StreamResponse:
        assert self._client is not None and self.trip_after_bytes is not None
        digest = request.path.rsplit("/", 1)[-1]
        async with self._client.get(f"{self.upstream}{request.path_qs}", headers=headers,
                                    allow_redirects=False) as upstream:
            out_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_HEADERS}
            response = web.StreamResponse(status=upstream.status, headers=out_headers)
            if upstream.content_length is not None:
                response.content_length = upstream.content_length
            await response.prepare(request)
            async for chunk in upstream.content.iter_chunked(64 * 1024):
                left = self.trip_after_bytes - self.blob_bytes_sent
                if self.on_trip is not None and left <= len(chunk):
                    await response.write(chunk[:left])
                    self.blob_bytes_sent += left
                    trip, self.on_trip = self.on_trip, None
                    await asyncio.to_thread(trip, digest)
                    assert request.transport is not None
                    request.transport.abort()
                    return response
                await response.write(chunk)
                self.blob_bytes_sent += len(chunk)
            await response.write_eof()
            return response

    def start(self) -> None:
        async def make_app() -> web.Application:
            # A fresh upstream connection per request: a stream cut at a trip point (or cancelled
            # when the pulling berthd dies) must not hand a half-read connection to the next request.
            self._client = aiohttp.ClientSession(auto_decompress=False,
                                                 connector=aiohttp.TCPConnector(force_close=True))
            app = web.Application(client_max_size=1 << 30)
            app.router.add_route("*", "/{tail:.*}", self._handle)
            return app

        self.port = self._server.start(make_app)

    def stop(self) -> None:
        async def close_client() -> None:
            if self._client is not None:
                await self._client.close()

        self._server.stop(close_client)
