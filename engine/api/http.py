"""HTTP/1.1 for the Engine API: h11's state machine on asyncio streams.

Why not aiohttp's server: the Docker CLI hijacks connections for attach/exec
and half-closes them (it shuts down its write side once stdin ends) while it
still expects output.  aiohttp closes the transport on EOF, and it buffers
response headers until the first body write, which deadlocks `docker run`
(the CLI waits for `/wait`'s headers before it sends `start`).  asyncio
streams keep the write side open after EOF, and with h11 we decide exactly
when bytes hit the socket (MACHINE-NOTES.md, "The Docker CLI's wire protocol").
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import h11

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 64 * 1024
READ_CHUNK = 64 * 1024


class ConnectionClosed(Exception):
    """The peer went away mid-request."""


class BodyTooLarge(Exception):
    """A request body over the limit its endpoint accepts (400, and the connection is closed)."""


@dataclass
class Request:
    method: str
    target: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    api_version: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    _conn: HTTPConnection | None = field(default=None, repr=False)

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def flag(self, name: str, default: bool = False) -> bool:
        """Docker's boolean query values: 1/true/True are true, 0/false/'' false."""
        value = self.arg(name)
        if value is None:
            return default
        return value.lower() not in ("", "0", "false", "no")

    async def body_chunks(self) -> AsyncIterator[bytes]:
        assert self._conn is not None
        async for chunk in self._conn.read_body():
            yield chunk

    async def read_body(self, limit: int = 64 * 1024 * 1024) -> bytes:
        parts: list[bytes] = []
        total = 0
        async for chunk in self.body_chunks():
            total += len(chunk)
            if total > limit:
                raise BodyTooLarge(f"request body larger than {limit} bytes")
            parts.append(chunk)
        return b"".join(parts)

    async def json(self) -> Any:
        raw = await self.read_body()
        if not raw.strip():
            return None
        return json.loads(raw)

    @property
    def wants_upgrade(self) -> bool:
        return self.headers.get("upgrade", "").lower() in ("tcp", "h2c") or "upgrade" in self.headers.get(
            "connection", ""
        ).lower()


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def json(cls, value: Any, status: int = 200) -> Response:
        return cls(status, json.dumps(value, separators=(",", ":")).encode() + b"\n")

    @classmethod
    def text(cls, value: str, status: int = 200) -> Response:
        return cls(status, value.encode(), "text/plain; charset=utf-8")

    @classmethod
    def empty(cls, status: int = 204) -> Response:
        return cls(status, b"", "")


class HTTPConnection:
    """One client connection: parses requests, writes responses, can hijack."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
        self.response_started = False
        self.hijacked = False
        self.requested_upgrade = False

    async def _next_event(self) -> Any:
        while True:
            event = self.h11.next_event()
            if event is h11.NEED_DATA:
                data = await self.reader.read(READ_CHUNK)
                self.h11.receive_data(data)
                continue
            return event

    async def next_request(self) -> h11.Request | None:
        event = await self._next_event()
        if isinstance(event, h11.Request):
            return event
        if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return None
        raise ConnectionClosed(f"unexpected HTTP event {event!r}")

    async def read_body(self) -> AsyncIterator[bytes]:
        while True:
            if self.h11.their_state in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.SWITCHED_PROTOCOL):
                return
            event = await self._next_event()
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage) or event is h11.PAUSED:
                return
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionClosed("client closed the connection while sending the body")

    def settle_body(self) -> None:
        """Take the end of a request body that has already arrived (a GET the handler never read).

        h11 reports a bodyless request's EndOfMessage only when asked; without this the
        connection looks mid-request and is closed, and a client reusing it (the docker CLI
        after a pull stream) gets a reset on its next request. Never waits for the socket.
        """
        while self.h11.their_state is h11.SEND_BODY:
            event = self.h11.next_event()
            if not isinstance(event, h11.Data | h11.EndOfMessage):
                return

    async def drain_body(self) -> None:
        async for _ in self.read_body():
            pass

    def _send(self, event: Any) -> None:
        data = self.h11.send(event)
        if data:
            self.writer.write(data)

    async def send_response(self, response: Response, head_only: bool = False) -> None:
        headers = [*_base_headers(), *response.headers]
        if response.content_type:
            headers.append(("Content-Type", response.content_type))
        headers.append(("Content-Length", str(len(response.body))))
        self._send(h11.Response(status_code=response.status, headers=headers))
        self.response_started = True
        if response.body and not head_only:
            self._send(h11.Data(data=response.body))
        self._send(h11.EndOfMessage())
        await self.writer.drain()

    async def start_stream(self, status: int, content_type: str, extra: list[tuple[str, str]] | None = None) -> None:
        """Send status and headers now, body later in chunks (wait, logs, events, pulls)."""
        headers = [*_base_headers(), ("Content-Type", content_type), *(extra or [])]
        self._send(h11.Response(status_code=status, headers=headers))
        self.response_started = True
        await self.writer.drain()

    async def write_chunk(self, data: bytes) -> None:
        if data:
            self._send(h11.Data(data=data))
            await self.writer.drain()

    async def end_stream(self, last: bytes = b"") -> None:
        """Ends a streamed body, sending `last` with the terminator in one write.

        One write matters for `wait`: the CLI hangs up as soon as it has the
        JSON, and a separate terminator would then hit a closed socket.
        """
        if last:
            self._send(h11.Data(data=last))
        self._send(h11.EndOfMessage())
        await self.writer.drain()

    async def hijack(self, content_type: str = "application/vnd.docker.raw-stream") -> bytes:
        """Take the raw socket over, like dockerd's attach/exec start.

        Answers `101 UPGRADED` when the client asked to upgrade (the CLI does),
        else `200 OK` (older docker-py), written by hand so the bytes leave at
        once.  Returns bytes the client already sent past the request (early
        stdin), which h11 buffered.
        """
        await self.drain_body()
        leftover, _closed = self.h11.trailing_data
        if self.requested_upgrade:
            head = (
                "HTTP/1.1 101 UPGRADED\r\n"
                f"Content-Type: {content_type}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
                f"Api-Version: {API_VERSION}\r\nServer: {SERVER_NAME}\r\n\r\n"
            )
        else:
            head = f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nApi-Version: {API_VERSION}\r\n\r\n"
        self.writer.write(head.encode())
        await self.writer.drain()
        self.hijacked = True
        self.response_started = True
        return bytes(leftover)


# Set by the server module from its version table (kept here to avoid an import cycle).
API_VERSION = "1.51"
SERVER_NAME = "Berth"


def _base_headers() -> list[tuple[str, str]]:
    return [("Api-Version", API_VERSION), ("Server", SERVER_NAME), ("Docker-Experimental", "false")]


Handler = Callable[[Request, HTTPConnection], Awaitable[Response | None]]


def parse_target(target: str) -> tuple[str, dict[str, list[str]]]:
    parts = urlsplit(target)
    return parts.path or "/", parse_qs(parts.query, keep_blank_values=True)


async def serve_connection(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, dispatch: Handler
) -> None:
    """Serve requests on one connection until it closes or is hijacked."""
    conn = HTTPConnection(reader, writer)
    try:
        while True:
            try:
                event = await conn.next_request()
            except h11.RemoteProtocolError as exc:
                await _send_bad_request(conn, str(exc))
                return
            if event is None:
                return
            headers = {k.decode().lower(): v.decode("latin-1") for k, v in event.headers}
            target = event.target.decode("latin-1")
            path, query = parse_target(target)
            request = Request(event.method.decode(), target, path, query, headers, _conn=conn)
            conn.requested_upgrade = request.wants_upgrade
            conn.response_started = False
            response = await dispatch(request, conn)
            if conn.hijacked:
                return
            conn.settle_body()
            if response is not None:
                unread = conn.h11.their_state is h11.SEND_BODY
                if unread:
                    # The handler answered without reading the whole body (an error, a body too large):
                    # answer now and close rather than read what nobody wants.
                    response.headers.append(("Connection", "close"))
                await conn.send_response(response, head_only=request.method == "HEAD")
                if unread:
                    return
            if conn.h11.our_state is h11.MUST_CLOSE or conn.h11.their_state is h11.MUST_CLOSE:
                return
            try:
                conn.h11.start_next_cycle()
            except h11.LocalProtocolError:
                return
    except (ConnectionError, ConnectionClosed, asyncio.IncompleteReadError):
        log.debug("client connection closed early")
    except Exception:
        # A handler failed after its response had started (a stream): nothing can be
        # sent any more; the connection is closed so the client sees the stream end.
        log.exception("stream handler failed")
    finally:
        if not writer.is_closing():
            writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, OSError):
            pass


async def _send_bad_request(conn: HTTPConnection, reason: str) -> None:
    try:
        body = json.dumps({"message": f"bad request: {reason}"}).encode()
        conn.writer.write(
            b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await conn.writer.drain()
    except ConnectionError:
        pass
