"""The Engine API server: listeners (unix, tcp, fd, TLS) and request dispatch."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import socket
import ssl
import stat
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from engine.api import errors
from engine.api.http import HTTPConnection, Request, Response, serve_connection
from engine.api.router import Router

log = logging.getLogger(__name__)

DEFAULT_TCP_PORT = 2375
DEFAULT_TLS_PORT = 2376


class ListenerError(Exception):
    """A -H address that cannot or must not be served."""


@dataclass(frozen=True)
class ListenAddress:
    scheme: str  # unix | tcp | fd
    path: str = ""
    host: str = ""
    port: int = 0


@dataclass(frozen=True)
class TLSFiles:
    ca: str
    cert: str
    key: str
    verify: bool = True


def parse_listen_address(spec: str, tls: bool = False) -> ListenAddress:
    """dockerd's -H syntax: unix:///path, tcp://host:port, fd://, or a bare path."""
    if spec.startswith("/"):
        return ListenAddress("unix", path=spec)
    parts = urlsplit(spec)
    if parts.scheme == "unix":
        if not parts.path:
            raise ListenerError(f"invalid unix socket address {spec!r}: no path")
        return ListenAddress("unix", path=parts.path)
    if parts.scheme == "tcp":
        host = parts.hostname or "127.0.0.1"
        port = parts.port or (DEFAULT_TLS_PORT if tls else DEFAULT_TCP_PORT)
        return ListenAddress("tcp", host=host, port=port)
    if parts.scheme == "fd":
        return ListenAddress("fd", path=parts.netloc or parts.path.lstrip("/"))
    raise ListenerError(f"invalid listen address {spec!r}: want unix://, tcp:// or fd://")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_tcp_safety(address: ListenAddress, tls: TLSFiles | None) -> None:
    """Nothing listens beyond loopback without mutual TLS (dockerd only warns; Berth refuses)."""
    if address.scheme != "tcp" or is_loopback(address.host):
        return
    if tls is None or not tls.verify:
        raise ListenerError(
            f"refusing to listen on tcp://{address.host}:{address.port} without --tlsverify: "
            "anyone who can reach this address would control the engine (and so the host). "
            "Use a loopback address, or pass --tlsverify --tlscacert --tlscert --tlskey"
        )


def server_ssl_context(tls: TLSFiles) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=tls.ca)
    context.load_cert_chain(tls.cert, tls.key)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED if tls.verify else ssl.CERT_NONE
    return context


class APIServer:
    def __init__(self, router: Router, socket_group: str | None = None) -> None:
        self.router = router
        self.socket_group = socket_group
        self._servers: list[asyncio.AbstractServer] = []
        self._unix_paths: list[Path] = []

    async def dispatch(self, request: Request, conn: HTTPConnection) -> Response | None:
        log.debug("%s %s", request.method, request.target)
        try:
            handler = self.router.resolve(request)
            return await handler(request, conn)
        except Exception as exc:  # every error becomes Docker's {"message": ...}
            if isinstance(exc, ConnectionError) and conn.writer.is_closing():
                raise  # the client went away: nothing to answer, nobody to answer to
            # Anything else, a ConnectionError of one of our own connections (a shim, a shim host, a
            # registry) included, is answered: a dropped connection would show the CLI only an EOF.
            status = errors.status_for(exc)
            message = exc.message if isinstance(exc, errors.APIError) else str(exc)
            if isinstance(exc, json.JSONDecodeError):
                status, message = 400, f"invalid JSON: {exc}"
            if status >= 500:
                log.exception("%s %s failed", request.method, request.target)
            else:
                log.info("%s %s -> %d %s", request.method, request.target, status, message)
            if conn.response_started:
                # Headers are gone already (a stream): all we can do is end it.
                raise
            if status == 304:
                return Response.empty(304)
            return Response.json({"message": message}, status)

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await serve_connection(reader, writer, self.dispatch)

    async def listen(self, address: ListenAddress, tls: TLSFiles | None = None) -> None:
        check_tcp_safety(address, tls)
        context = server_ssl_context(tls) if tls else None
        if address.scheme == "unix":
            server = await self._listen_unix(Path(address.path))
        elif address.scheme == "tcp":
            server = await asyncio.start_server(self._on_connection, address.host, address.port, ssl=context)
        else:
            server = await self._listen_fd(address.path, tls)
        self._servers.append(server)
        log.info("API listening on %s", _describe(address, tls))

    async def _listen_unix(self, path: Path) -> asyncio.AbstractServer:
        gid = _socket_gid(self.socket_group) if self.socket_group else None  # refused before anything is made
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        if path.exists() or path.is_symlink():
            if not stat.S_ISSOCK(path.lstat().st_mode):
                raise ListenerError(f"{path} exists and is not a socket; refusing to replace it")
            if _socket_answers(path):
                raise ListenerError(f"another engine is already listening on {path}")
            path.unlink()  # a stale socket from a daemon that died
        # Created with umask 0o117 so the socket is never world-accessible, even briefly.
        old_umask = os.umask(0o117)
        try:
            server = await asyncio.start_unix_server(self._on_connection, str(path))
        finally:
            os.umask(old_umask)
        os.chmod(path, 0o660)
        if gid is not None:
            os.chown(path, -1, gid)
        self._unix_paths.append(path)
        return server

    async def _listen_fd(self, which: str, tls: TLSFiles | None) -> asyncio.AbstractServer:
        # systemd socket activation: fds start at 3 (sd_listen_fds(3)).
        count = int(os.environ.get("LISTEN_FDS", "0"))
        if os.environ.get("LISTEN_PID") not in (None, str(os.getpid())) or count < 1:
            raise ListenerError("fd:// given but no sockets were passed by the service manager (LISTEN_FDS)")
        fd = 3 + (int(which) - 3 if which else 0)
        sock = socket.socket(fileno=fd)
        if sock.family == socket.AF_UNIX:
            return await asyncio.start_unix_server(self._on_connection, sock=sock)
        # A passed TCP socket obeys the same rule as -H tcp://: beyond loopback only with mutual TLS.
        host, port = sock.getsockname()[:2]
        try:
            check_tcp_safety(ListenAddress("tcp", host=host, port=port), tls)
        except ListenerError:
            sock.close()
            raise
        return await asyncio.start_server(self._on_connection, sock=sock,
                                          ssl=server_ssl_context(tls) if tls else None)

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for server in self._servers:
            await server.wait_closed()
        for path in self._unix_paths:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
        self._servers.clear()
        self._unix_paths.clear()


def _socket_answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def _describe(address: ListenAddress, tls: TLSFiles | None) -> str:
    if address.scheme == "unix":
        return f"unix://{address.path}"
    if address.scheme == "tcp":
        return f"tcp://{address.host}:{address.port}" + (" (mutual TLS)" if tls and tls.verify else "")
    return f"fd://{address.path}"


def _socket_gid(group: str) -> int:
    """``--group``'s gid: a group name or a number (moby's lookupGID).  An unknown name stops the start, as
    dockerd does for any group but its default one: a socket left group root locks its users out unnoticed."""
    import grp

    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        if group.isdigit():
            return int(group)
        raise ListenerError(f"group {group} not found (--group)") from None
