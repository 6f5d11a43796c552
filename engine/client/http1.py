"""Just enough HTTP/1.1 for the blocking client: write a request, read a response head and its body.

The CLI pays for every import on every command: h11 (with the dataclasses and
typing machinery it pulls in) costs ~20 ms of start-up, more than `docker ps`
takes in total.  The Engine API needs little of HTTP: one request per
connection, bodies framed by Content-Length, chunked encoding or the close of
the connection (RFC 9112 §6.3), and `101 UPGRADED` for attach.  The async
client keeps h11; both build requests with engine.client.protocol.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: the CLI's fast path (engine/cli/fast.py) imports this module
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

READ_CHUNK = 64 * 1024
LAST_CHUNK = b"0\r\n\r\n"
MAX_HEAD = 256 * 1024


class ProtocolError(Exception):
    """The engine's bytes are not an HTTP/1.1 response (or stop in the middle of one)."""


def encode_head(method: str, target: str, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", *(f"{name}: {value}" for name, value in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def encode_chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


class ResponseReader:
    """Parses one response from a blocking `recv`; what follows the head of a 101 stays in `buffer`."""

    def __init__(self, recv: Callable[[int], bytes]) -> None:
        self._recv = recv
        self.buffer = b""

    def _fill(self) -> bool:
        data = self._recv(READ_CHUNK)
        self.buffer += data
        return bool(data)

    def _line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            if len(self.buffer) > MAX_HEAD:
                raise ProtocolError("response head too large")
            if not self._fill():
                raise ProtocolError("connection closed in the middle of a response")
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line

    def read_head(self) -> tuple[int, dict[str, str]]:
        """Status and headers (lower-case names); interim 1xx answers other than 101 are skipped."""
        while True:
            if not self.buffer and not self._fill():
                raise ConnectionAbortedError("the engine closed the connection")
            version, _, rest = self._line().decode("latin-1").partition(" ")
            code = rest.partition(" ")[0]
            if not version.startswith("HTTP/1.") or not code.isdigit():
                raise ProtocolError(f"not an HTTP/1.1 status line: {version} {rest}"[:80])
            headers: dict[str, str] = {}
            while line := self._line():
                name, colon, value = line.decode("latin-1").partition(":")
                if not colon:
                    raise ProtocolError(f"malformed header line {line[:40]!r}")
                key = name.strip().lower()
                headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
            status = int(code)
            if status == 101 or not 100 <= status < 200:
                return status, headers

    def body(self, method: str, status: int, headers: dict[str, str]) -> Iterator[bytes]:
        """The body's bytes as they arrive, framed per RFC 9112 §6.3."""
        if method == "HEAD" or status in (204, 304) or status < 200:
            return
        if "chunked" in headers.get("transfer-encoding", "").lower():
            yield from self._chunked()
        elif "content-length" in headers:
            yield from self._sized(int(headers["content-length"]))
        else:
            yield from self._until_close()

    def _sized(self, left: int) -> Iterator[bytes]:
        while left > 0:
            if not self.buffer and not self._fill():
                raise ProtocolError("connection closed before the end of the body")
            data, self.buffer = self.buffer[:left], self.buffer[left:]
            left -= len(data)
            yield data

    def _chunked(self) -> Iterator[bytes]:
        while True:
            size_text = self._line().partition(b";")[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise ProtocolError(f"bad chunk size {size_text[:20]!r}") from None
            if size == 0:
                while self._line():  # trailers, then the blank line that ends the message
                    pass
                return
            yield from self._sized(size)
            if self._line():
                raise ProtocolError("chunk not followed by CRLF")

    def _until_close(self) -> Iterator[bytes]:
        while True:
            if self.buffer:
                data, self.buffer = self.buffer, b""
                yield data
            if not self._fill():
                return
