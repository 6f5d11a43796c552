"""The sans-I/O half of the client: requests to bytes, bytes to responses and streams.

Both transports (sync.py for the CLI, aio.py for the desktop and vmbackend)
drive h11 with these helpers, so the wire behaviour lives in one place.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from engine.client.errors import APIError, error_for

CLIENT_API_VERSION = "1.51"
MIN_API_VERSION = "1.24"



def version_tuple(version: str) -> tuple[int, int]:
    major, _, minor = version.partition(".")
    return int(major), int(minor or 0)


def negotiate(server_version: str | None) -> str:
    """The version to speak: the lower of ours and the server's (docker CLI's rule)."""
    if not server_version:
        return CLIENT_API_VERSION
    if version_tuple(server_version) < version_tuple(CLIENT_API_VERSION):
        return server_version
    return CLIENT_API_VERSION


def encode_query(query: Mapping[str, Any] | None) -> str:
    if not query:
        return ""
    pairs: list[tuple[str, str]] = []
    for key, value in query.items():
        if value is None:
            continue
        if isinstance(value, bool):
            pairs.append((key, "1" if value else "0"))
        elif isinstance(value, dict):
            pairs.append((key, json.dumps(value, separators=(",", ":"))))
        elif isinstance(value, list | tuple):
            pairs.extend((key, str(v)) for v in value)
        else:
            pairs.append((key, str(value)))
    return urlencode(pairs)


def target(version: str | None, path: str, query: Mapping[str, Any] | None = None) -> str:
    prefix = f"/v{version}" if version and path != "/_ping" else ""
    encoded = encode_query(query)
    return quote(prefix + path, safe="/:@") + (f"?{encoded}" if encoded else "")


def request_headers(
    host: str, body: bytes | None, content_type: str | None, extra: Mapping[str, str] | None = None,
    *, upgrade: bool = False, chunked: bool = False,
) -> list[tuple[str, str]]:
    headers = [("Host", host), ("User-Agent", "Berth-Client/0.1")]
    if content_type:
        headers.append(("Content-Type", content_type))
    if chunked:
        headers.append(("Transfer-Encoding", "chunked"))
    elif body is not None:
        headers.append(("Content-Length", str(len(body))))
    if upgrade:
        headers += [("Connection", "Upgrade"), ("Upgrade", "tcp")]
    headers += list((extra or {}).items())
    return headers


def header_dict(head: Any) -> dict[str, str]:
    """h11 response headers as a dict with lower-case names."""
    return {k.decode().lower(): v.decode("latin-1") for k, v in head.headers}


def json_body(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class Response:
    """A whole response.  A plain class: dataclasses would cost the CLI its import at every start."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def __repr__(self) -> str:
        return f"Response(status={self.status!r}, headers={self.headers!r}, body={self.body!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Response):
            return NotImplemented
        return (self.status, self.headers, self.body) == (other.status, other.headers, other.body)

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclass it replaces

    def json(self) -> Any:
        return json.loads(self.body) if self.body.strip() else None

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)


def error_from(status: int, body: bytes) -> APIError:
    message = body.decode(errors="replace").strip()
    try:
        parsed = json.loads(body)
        if isinstance(parsed, dict) and "message" in parsed:
            message = str(parsed["message"])
    except ValueError:
        pass
    return error_for(status, message or f"HTTP {status}")


class JSONLinesDecoder:
    """Splits a JSON-lines stream (pull progress, events, build output) into objects."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[Any]:
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        return [json.loads(line) for line in lines if line.strip()]

    def close(self) -> list[Any]:
        rest, self._buffer = self._buffer, b""
        return [json.loads(rest)] if rest.strip() else []
