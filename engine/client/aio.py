"""The asyncio client: what the desktop and vmbackend use (streams never block a UI)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Mapping
from typing import Any

import h11

from engine.client import protocol
from engine.client.errors import EngineUnreachable
from engine.client.hosts import EngineAddress, default_address

READ_CHUNK = 64 * 1024


class _AsyncExchange:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, address: str,
                 sock: socket.socket | None = None) -> None:
        self.address = address
        self.sock = sock  # ssh: our end of the channel's socketpair (engine/client/ssh.py keys failures by it)
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.CLIENT)

    def send(self, event: Any) -> None:
        data = self.h11.send(event)
        if data:
            self.writer.write(data)

    async def next_event(self) -> Any:
        try:
            while True:
                event = self.h11.next_event()
                if event is h11.NEED_DATA:
                    self.h11.receive_data(await self.reader.read(READ_CHUNK))
                    continue
                return event
        except h11.RemoteProtocolError as exc:
            raise EngineUnreachable(self.address, f"the engine closed the connection ({exc})") from exc
        except OSError as exc:
            raise EngineUnreachable(self.address, exc.strerror or str(exc)) from exc

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass


async def _connect(address: EngineAddress) -> _AsyncExchange:
    sock = None
    try:
        if address.scheme == "unix":
            reader, writer = await asyncio.open_unix_connection(address.path)
        elif address.scheme == "ssh":
            # paramiko blocks: the login and channel open run in a thread, the bytes through a socketpair.
            from engine.client import ssh

            sock = await asyncio.to_thread(ssh.connect, address, None)
            reader, writer = await asyncio.open_connection(sock=sock)
        else:
            ssl = address.tls.context() if address.tls else None
            reader, writer = await asyncio.open_connection(address.host, address.port, ssl=ssl,
                                                           server_hostname=address.host if ssl else None)
    except FileNotFoundError as exc:
        raise EngineUnreachable(str(address), "no socket there") from exc
    except ConnectionRefusedError as exc:
        raise EngineUnreachable(str(address), "connection refused") from exc
    except OSError as exc:
        raise EngineUnreachable(str(address), exc.strerror or str(exc)) from exc
    return _AsyncExchange(reader, writer, str(address), sock)


def _closed_reason(exchange: _AsyncExchange) -> str:
    if exchange.sock is not None:
        from engine.client import ssh

        ssh.raise_remote_failure(exchange.sock)
    return "the engine closed the connection"


class AsyncStreamingResponse:
    def __init__(self, exchange: _AsyncExchange, status: int, headers: dict[str, str]) -> None:
        self._exchange = exchange
        self.status = status
        self.headers = headers

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            while True:
                event = await self._exchange.next_event()
                if isinstance(event, h11.Data):
                    yield bytes(event.data)
                elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                    return
        finally:
            await self._exchange.close()

    async def json_lines(self) -> AsyncIterator[Any]:
        decoder = protocol.JSONLinesDecoder()
        async for chunk in self.chunks():
            for item in decoder.feed(chunk):
                yield item
        for item in decoder.close():
            yield item

    async def close(self) -> None:
        await self._exchange.close()


class AsyncHijacked:
    def __init__(self, exchange: _AsyncExchange, leftover: bytes, content_type: str) -> None:
        self.reader = exchange.reader
        self.writer = exchange.writer
        self.leftover = leftover
        self.content_type = content_type
        self._exchange = exchange

    @property
    def multiplexed(self) -> bool:
        return self.content_type == "application/vnd.docker.multiplexed-stream"

    async def read(self, size: int = READ_CHUNK) -> bytes:
        if self.leftover:
            data, self.leftover = self.leftover, b""
            return data
        return await self.reader.read(size)

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    def close_write(self) -> None:
        if self.writer.can_write_eof():
            self.writer.write_eof()

    async def close(self) -> None:
        await self._exchange.close()


class AsyncClient:
    def __init__(self, address: EngineAddress | None = None, version: str | None = None) -> None:
        self.address = address or default_address()
        self._version = version
        # ssh:// only: the last connection, kept for the next request (HTTP keep-alive): each one there is a
        # channel running dial-stdio on the remote, a process start per request for a desktop that polls.
        self._idle: _AsyncExchange | None = None

    @property
    def host_header(self) -> str:
        return self.address.host_header

    async def version(self) -> str:
        if self._version is None:
            ping = await self.ping()
            self._version = protocol.negotiate(ping.header("api-version") or None)
        return self._version

    async def ping(self) -> protocol.Response:
        return await self._request("HEAD", "/_ping", None, None, None, None, versioned=False)

    async def _start(self, method: str, path: str, query: Mapping[str, Any] | None, body: bytes | None,
                     content_type: str | None, headers: Mapping[str, str] | None, *, versioned: bool = True,
                     upgrade: bool = False) -> tuple[_AsyncExchange, int, dict[str, str]]:
        version = await self.version() if versioned else None
        exchange, reused = self._take_idle(), True
        if exchange is None:
            exchange, reused = await _connect(self.address), False
        try:
            exchange.send(h11.Request(
                method=method, target=protocol.target(version, path, query),
                headers=protocol.request_headers(self.host_header, body, content_type, headers, upgrade=upgrade),
            ))
            if body:
                exchange.send(h11.Data(data=body))
            exchange.send(h11.EndOfMessage())
            await exchange.writer.drain()
            while True:
                event = await exchange.next_event()
                if isinstance(event, h11.Response | h11.InformationalResponse) and (
                    isinstance(event, h11.Response) or event.status_code == 101
                ):
                    return exchange, event.status_code, protocol.header_dict(event)
                if isinstance(event, h11.ConnectionClosed):
                    raise EngineUnreachable(str(self.address), _closed_reason(exchange))
        except EngineUnreachable:
            await exchange.close()
            if reused and method in ("GET", "HEAD"):  # the engine dropped the kept connection: a new one
                return await self._start(method, path, query, body, content_type, headers, versioned=versioned,
                                         upgrade=upgrade)
            raise
        except BaseException:
            await exchange.close()
            raise

    def _take_idle(self) -> _AsyncExchange | None:
        exchange, self._idle = self._idle, None
        if exchange is not None and (exchange.reader.at_eof() or exchange.writer.is_closing()):
            exchange.writer.close()
            return None
        return exchange

    async def _keep_or_close(self, exchange: _AsyncExchange) -> None:
        connection = exchange.h11
        if (self.address.scheme == "ssh" and connection.our_state is h11.DONE
                and connection.their_state is h11.DONE):
            connection.start_next_cycle()
            previous, self._idle = self._idle, exchange
            if previous is not None:
                await previous.close()
            return
        await exchange.close()

    async def close(self) -> None:
        """Close the connection kept for reuse (ssh:// only)."""
        exchange, self._idle = self._idle, None
        if exchange is not None:
            await exchange.close()

    async def _request(self, method: str, path: str, query: Mapping[str, Any] | None, body: bytes | None,
                       content_type: str | None, headers: Mapping[str, str] | None, *,
                       versioned: bool = True) -> protocol.Response:
        exchange, status, head = await self._start(method, path, query, body, content_type, headers,
                                                   versioned=versioned)
        parts: list[bytes] = []
        try:
            while not isinstance(event := await exchange.next_event(), h11.EndOfMessage | h11.ConnectionClosed):
                if isinstance(event, h11.Data):
                    parts.append(bytes(event.data))
        except BaseException:
            await exchange.close()
            raise
        await self._keep_or_close(exchange)
        response = protocol.Response(status, head, b"".join(parts))
        if status >= 400:
            raise protocol.error_from(status, response.body)
        return response

    async def get(self, path: str, query: Mapping[str, Any] | None = None) -> Any:
        return (await self._request("GET", path, query, None, None, None)).json()

    async def post(self, path: str, query: Mapping[str, Any] | None = None, json: Any = None) -> Any:
        body = None if json is None else protocol.json_body(json)
        return (await self._request("POST", path, query, body, "application/json" if body else None, None)).json()

    async def delete(self, path: str, query: Mapping[str, Any] | None = None) -> Any:
        return (await self._request("DELETE", path, query, None, None, None)).json()

    async def stream(self, method: str, path: str, query: Mapping[str, Any] | None = None,
                     body: bytes | None = None, content_type: str | None = None) -> AsyncStreamingResponse:
        exchange, status, head = await self._start(method, path, query, body, content_type, None)
        response = AsyncStreamingResponse(exchange, status, head)
        if status >= 400:
            raise protocol.error_from(status, b"".join([c async for c in response.chunks()]))
        return response

    async def hijack(self, path: str, query: Mapping[str, Any] | None = None, json: Any = None) -> AsyncHijacked:
        body = None if json is None else protocol.json_body(json)
        exchange, status, head = await self._start("POST", path, query, body,
                                                   "application/json" if body else None, None, upgrade=True)
        if status >= 400:
            response = AsyncStreamingResponse(exchange, status, head)
            raise protocol.error_from(status, b"".join([c async for c in response.chunks()]))
        leftover, _ = exchange.h11.trailing_data
        return AsyncHijacked(exchange, bytes(leftover), head.get("content-type", ""))

