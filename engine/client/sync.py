"""The blocking client: what the `berth` CLI uses (no event loop to start per command)."""

from __future__ import annotations

import socket
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import h11

from engine.client import protocol
from engine.client.errors import EngineUnreachable
from engine.client.hosts import EngineAddress, default_address

READ_CHUNK = 64 * 1024


class _Exchange:
    """One request/response on its own connection (Docker's CLI also opens one per hijack)."""

    def __init__(self, address: EngineAddress, timeout: float | None) -> None:
        self.address = address
        self.sock = _connect(address, timeout)
        self.h11 = h11.Connection(h11.CLIENT)

    def send(self, event: Any) -> None:
        data = self.h11.send(event)
        if data:
            self.sock.sendall(data)

    def next_event(self) -> Any:
        try:
            while True:
                event = self.h11.next_event()
                if event is h11.NEED_DATA:
                    self.h11.receive_data(self.sock.recv(READ_CHUNK))
                    continue
                return event
        except h11.RemoteProtocolError as exc:
            # Typically a TLS server that rejected our certificate after the handshake.
            raise EngineUnreachable(str(self.address), f"the engine closed the connection ({exc})") from exc
        except OSError as exc:
            raise EngineUnreachable(str(self.address), exc.strerror or str(exc)) from exc

    def close(self) -> None:
        self.sock.close()


def _connect(address: EngineAddress, timeout: float | None) -> socket.socket:
    try:
        if address.scheme == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(address.path)
            return sock
        sock = socket.create_connection((address.host, address.port), timeout=timeout)
        if address.tls is not None:
            return address.tls.context().wrap_socket(sock, server_hostname=address.host)
        return sock
    except FileNotFoundError as exc:
        raise EngineUnreachable(str(address), "no socket there") from exc
    except ConnectionRefusedError as exc:
        raise EngineUnreachable(str(address), "connection refused") from exc
    except PermissionError as exc:
        raise EngineUnreachable(str(address), "permission denied on the socket") from exc
    except OSError as exc:
        raise EngineUnreachable(str(address), exc.strerror or str(exc)) from exc


class StreamingResponse:
    """A response whose body is read as it arrives (logs -f, events, pull progress)."""

    def __init__(self, exchange: _Exchange, status: int, headers: dict[str, str]) -> None:
        self._exchange = exchange
        self.status = status
        self.headers = headers

    def chunks(self) -> Iterator[bytes]:
        try:
            while True:
                event = self._exchange.next_event()
                if isinstance(event, h11.Data):
                    yield bytes(event.data)
                elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                    return
        finally:
            self._exchange.close()

    def json_lines(self) -> Iterator[Any]:
        decoder = protocol.JSONLinesDecoder()
        for chunk in self.chunks():
            yield from decoder.feed(chunk)
        yield from decoder.close()

    def close(self) -> None:
        self._exchange.close()


class HijackedSocket:
    """The raw connection after `101 UPGRADED`: attach and exec I/O."""

    def __init__(self, sock: socket.socket, leftover: bytes, content_type: str) -> None:
        self.sock = sock
        self.leftover = leftover
        self.content_type = content_type

    @property
    def multiplexed(self) -> bool:
        # API >= 1.42 says which; a TTY stream is always raw.
        return self.content_type == "application/vnd.docker.multiplexed-stream"

    def recv(self, size: int = READ_CHUNK) -> bytes:
        if self.leftover:
            data, self.leftover = self.leftover, b""
            return data
        return self.sock.recv(size)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close_write(self) -> None:
        """Half-close: tells the engine stdin ended while output keeps coming."""
        self.sock.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.sock.close()


class Client:
    def __init__(self, address: EngineAddress | None = None, version: str | None = None,
                 timeout: float | None = None) -> None:
        self.address = address or default_address()
        self._version = version
        self.timeout = timeout

    @property
    def host_header(self) -> str:
        return "docker" if self.address.scheme == "unix" else f"{self.address.host}:{self.address.port}"

    @property
    def version(self) -> str:
        if self._version is None:
            self._version = protocol.negotiate(self.ping().header("api-version") or None)
        return self._version

    def ping(self) -> protocol.Response:
        return self._request("HEAD", "/_ping", None, None, None, None, versioned=False)

    def _start(self, method: str, path: str, query: Mapping[str, Any] | None, body: bytes | Iterable[bytes] | None,
               content_type: str | None, headers: Mapping[str, str] | None, *, versioned: bool = True,
               upgrade: bool = False) -> tuple[_Exchange, h11.Response | h11.InformationalResponse]:
        version = self.version if versioned else None
        exchange = _Exchange(self.address, self.timeout)
        try:
            streamed = body is not None and not isinstance(body, bytes)
            fixed = body if isinstance(body, bytes) else None
            exchange.send(h11.Request(
                method=method, target=protocol.target(version, path, query),
                headers=protocol.request_headers(self.host_header, fixed, content_type, headers,
                                                 upgrade=upgrade, chunked=streamed),
            ))
            if isinstance(body, bytes):
                if body:
                    exchange.send(h11.Data(data=body))
            elif body is not None:
                for chunk in body:
                    if chunk:
                        exchange.send(h11.Data(data=chunk))
            exchange.send(h11.EndOfMessage())
            while True:
                event = exchange.next_event()
                if isinstance(event, h11.InformationalResponse) and event.status_code == 101:
                    return exchange, event  # h11 refuses to build a Response with a 1xx status
                if isinstance(event, h11.Response):
                    return exchange, event
                if isinstance(event, h11.ConnectionClosed):
                    raise EngineUnreachable(str(self.address), "the engine closed the connection")
        except BaseException:
            exchange.close()
            raise

    def _request(self, method: str, path: str, query: Mapping[str, Any] | None, body: bytes | None,
                 content_type: str | None, headers: Mapping[str, str] | None, *,
                 versioned: bool = True) -> protocol.Response:
        exchange, head = self._start(method, path, query, body, content_type, headers, versioned=versioned)
        try:
            parts = []
            while True:
                event = exchange.next_event()
                if isinstance(event, h11.Data):
                    parts.append(bytes(event.data))
                elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                    break
        finally:
            exchange.close()
        response = protocol.Response(head.status_code, protocol.header_dict(head), b"".join(parts))
        if response.status >= 400:
            raise protocol.error_from(response.status, response.body)
        return response

    # The verbs the CLI and tests use.
    def get(self, path: str, query: Mapping[str, Any] | None = None) -> Any:
        return self._request("GET", path, query, None, None, None).json()

    def post(self, path: str, query: Mapping[str, Any] | None = None, json: Any = None,
             headers: Mapping[str, str] | None = None) -> Any:
        body = None if json is None else protocol.json_body(json)
        return self._request("POST", path, query, body, "application/json" if body else None, headers).json()

    def delete(self, path: str, query: Mapping[str, Any] | None = None) -> Any:
        return self._request("DELETE", path, query, None, None, None).json()

    def request(self, method: str, path: str, query: Mapping[str, Any] | None = None, body: bytes | None = None,
                content_type: str | None = None, headers: Mapping[str, str] | None = None) -> protocol.Response:
        return self._request(method, path, query, body, content_type, headers)

    def stream(self, method: str, path: str, query: Mapping[str, Any] | None = None,
               body: bytes | Iterable[bytes] | None = None, content_type: str | None = None,
               headers: Mapping[str, str] | None = None) -> StreamingResponse:
        exchange, head = self._start(method, path, query, body, content_type, headers)
        if head.status_code >= 400:
            rest = StreamingResponse(exchange, head.status_code, protocol.header_dict(head))
            raise protocol.error_from(head.status_code, b"".join(rest.chunks()))
        return StreamingResponse(exchange, head.status_code, protocol.header_dict(head))

    def hijack(self, path: str, query: Mapping[str, Any] | None = None, json: Any = None) -> HijackedSocket:
        body = None if json is None else protocol.json_body(json)
        exchange, head = self._start("POST", path, query, body, "application/json" if body else None, None,
                                     upgrade=True)
        headers = protocol.header_dict(head)
        if head.status_code >= 400:
            rest = StreamingResponse(exchange, head.status_code, headers)
            raise protocol.error_from(head.status_code, b"".join(rest.chunks()))
        leftover, _ = exchange.h11.trailing_data
        return HijackedSocket(exchange.sock, bytes(leftover), headers.get("content-type", ""))

