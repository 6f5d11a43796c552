"""The blocking client: what the `berth` CLI uses (no event loop to start per command)."""

from __future__ import annotations

import select
import socket
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from engine.client import protocol
from engine.client.errors import EngineUnreachable
from engine.client.hosts import EngineAddress, default_address
from engine.client.http1 import LAST_CHUNK, ProtocolError, ResponseReader, encode_chunk, encode_head

READ_CHUNK = 64 * 1024


class _Exchange:
    """One request/response on its own connection (Docker's CLI also opens one per hijack)."""

    def __init__(self, address: EngineAddress, timeout: float | None, sock: socket.socket | None = None) -> None:
        self.address = address
        self.reused = sock is not None
        self.sock = sock or connect(address, timeout)
        self.reader = ResponseReader(self.sock.recv)
        self.method = ""
        self.status = 0
        self.headers: dict[str, str] = {}

    def send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError as exc:
            raise EngineUnreachable(str(self.address), exc.strerror or str(exc)) from exc

    def read_head(self) -> tuple[int, dict[str, str]]:
        try:
            self.status, self.headers = self.reader.read_head()
        except ConnectionAbortedError as exc:
            raise EngineUnreachable(str(self.address), self._closed_reason()) from exc
        except ProtocolError as exc:
            # Typically a TLS server that rejected our certificate after the handshake.
            raise EngineUnreachable(str(self.address), f"the engine closed the connection ({exc})") from exc
        except OSError as exc:
            raise EngineUnreachable(str(self.address), exc.strerror or str(exc)) from exc
        return self.status, self.headers

    def _closed_reason(self) -> str:
        if self.address.scheme == "ssh":  # the remote dial-stdio's own words (it could not reach its engine...)
            from engine.client import ssh

            ssh.raise_remote_failure(self.sock)
        return "the engine closed the connection"

    def body(self) -> Iterator[bytes]:
        try:
            yield from self.reader.body(self.method, self.status, self.headers)
        except ProtocolError as exc:
            raise EngineUnreachable(str(self.address), f"the engine closed the connection ({exc})") from exc
        except OSError as exc:
            raise EngineUnreachable(str(self.address), exc.strerror or str(exc)) from exc

    def close(self) -> None:
        self.sock.close()

    def reusable(self) -> bool:
        """Whether the next request may go on this connection (its response read to the end of its framing)."""
        headers = self.headers
        return (not self.reader.buffer and self.status >= 200 and "close" not in headers.get("connection", "").lower()
                and (self.method == "HEAD" or self.status in (204, 304) or "content-length" in headers
                     or "chunked" in headers.get("transfer-encoding", "").lower()))


def connect(address: EngineAddress, timeout: float | None = None) -> socket.socket:
    """A connected socket to the engine (unix, TCP, TLS or an SSH channel); `berth system dial-stdio` uses it too."""
    if address.scheme == "ssh":  # an exec channel running dial-stdio on the remote (engine/client/ssh.py)
        from engine.client import ssh

        return ssh.connect(address, timeout)
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
            yield from self._exchange.body()
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
        # ssh:// only: the last connection, kept for the next request (HTTP keep-alive).  Each connection
        # there is an exec channel running dial-stdio on the remote: a process start saved per request.
        self._idle: socket.socket | None = None

    @property
    def host_header(self) -> str:
        return self.address.host_header

    @property
    def version(self) -> str:
        if self._version is None:
            self._version = protocol.negotiate(self.ping().header("api-version") or None)
        return self._version

    def ping(self) -> protocol.Response:
        return self._request("HEAD", "/_ping", None, None, None, None, versioned=False)

    def _start(self, method: str, path: str, query: Mapping[str, Any] | None, body: bytes | Iterable[bytes] | None,
               content_type: str | None, headers: Mapping[str, str] | None, *, versioned: bool = True,
               upgrade: bool = False) -> _Exchange:
        version = self.version if versioned else None
        exchange = _Exchange(self.address, self.timeout, self._take_idle())
        exchange.method = method
        try:
            streamed = body is not None and not isinstance(body, bytes)
            fixed = body if isinstance(body, bytes) else None
            head = encode_head(method, protocol.target(version, path, query),
                               protocol.request_headers(self.host_header, fixed, content_type, headers,
                                                        upgrade=upgrade, chunked=streamed))
            if isinstance(body, bytes):
                exchange.send(head + body)
            elif body is not None:
                exchange.send(head)
                try:
                    for chunk in body:
                        if chunk:
                            exchange.send(encode_chunk(chunk))
                    exchange.send(LAST_CHUNK)
                except EngineUnreachable:
                    # The engine answered before it took the whole body (it refused it, e.g. a
                    # `cp` into a missing path): the response below says why.
                    close = getattr(body, "close", None)
                    if close is not None:
                        close()
            else:
                exchange.send(head)
            exchange.read_head()
            return exchange
        except EngineUnreachable:
            exchange.close()
            if exchange.reused and method in ("GET", "HEAD"):
                # The engine dropped the idle connection as we reused it: once more on a new one.
                return self._start(method, path, query, body, content_type, headers, versioned=versioned,
                                   upgrade=upgrade)
            raise
        except BaseException:
            exchange.close()
            raise

    def _take_idle(self) -> socket.socket | None:
        sock, self._idle = self._idle, None
        if sock is not None and select.select([sock], [], [], 0)[0]:  # EOF (or stray bytes): not reusable
            sock.close()
            return None
        return sock

    def _keep_or_close(self, exchange: _Exchange) -> None:
        if self.address.scheme == "ssh" and exchange.reusable():
            sock, self._idle = self._idle, exchange.sock
            if sock is not None:
                sock.close()
        else:
            exchange.close()

    def close(self) -> None:
        """Close the connection kept for reuse (ssh:// only; the process's exit does it as well)."""
        sock, self._idle = self._idle, None
        if sock is not None:
            sock.close()

    def _request(self, method: str, path: str, query: Mapping[str, Any] | None, body: bytes | None,
                 content_type: str | None, headers: Mapping[str, str] | None, *,
                 versioned: bool = True) -> protocol.Response:
        exchange = self._start(method, path, query, body, content_type, headers, versioned=versioned)
        try:
            data = b"".join(exchange.body())
        except BaseException:
            exchange.close()
            raise
        self._keep_or_close(exchange)
        response = protocol.Response(exchange.status, exchange.headers, data)
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
        exchange = self._start(method, path, query, body, content_type, headers)
        response = StreamingResponse(exchange, exchange.status, exchange.headers)
        if exchange.status >= 400:
            raise protocol.error_from(exchange.status, b"".join(response.chunks()))
        return response

    def hijack(self, path: str, query: Mapping[str, Any] | None = None, json: Any = None) -> HijackedSocket:
        body = None if json is None else protocol.json_body(json)
        exchange = self._start("POST", path, query, body, "application/json" if body else None, None, upgrade=True)
        if exchange.status >= 400:
            rest = StreamingResponse(exchange, exchange.status, exchange.headers)
            raise protocol.error_from(exchange.status, b"".join(rest.chunks()))
        # Output the engine sent right behind the 101 head is already in the reader's buffer.
        return HijackedSocket(exchange.sock, exchange.reader.buffer, exchange.headers.get("content-type", ""))
