"""The TCP userland proxy on loopback: bytes both ways, half-close carried through, close() ends live connections."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import pytest

from engine.network.userland_proxy import TcpProxy


def _echo_after_eof(server: socket.socket) -> None:
    """Reads until the client half-closes, then answers with what it got (one connection)."""
    conn, _ = server.accept()
    with conn:
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
        conn.sendall(b"got:" + str(len(received)).encode() + b":" + received[:16])


@pytest.fixture
def proxied() -> Iterator[tuple[int, socket.socket, asyncio.AbstractEventLoop, TcpProxy]]:
    backend = socket.create_server(("127.0.0.1", 0))
    listener = socket.create_server(("127.0.0.1", 0))
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever, daemon=True)
    runner.start()
    proxy = TcpProxy(listener, backend.getsockname(), None)
    asyncio.run_coroutine_threadsafe(proxy.start(), loop).result(10)
    try:
        yield listener.getsockname()[1], backend, loop, proxy
    finally:
        asyncio.run_coroutine_threadsafe(proxy.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        runner.join(10)
        loop.close()
        backend.close()


def test_bytes_and_half_close_go_through(proxied: tuple[int, socket.socket, asyncio.AbstractEventLoop, TcpProxy]
                                         ) -> None:
    port, backend, _, _ = proxied
    server = threading.Thread(target=_echo_after_eof, args=(backend,), daemon=True)
    server.start()
    payload = b"x" * (3 * 1024 * 1024 + 7)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as client:
        client.sendall(payload)
        client.shutdown(socket.SHUT_WR)  # the backend only answers after seeing EOF
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk
    server.join(30)
    assert answer == b"got:" + str(len(payload)).encode() + b":" + payload[:16]


def test_close_ends_open_connections(proxied: tuple[int, socket.socket, asyncio.AbstractEventLoop, TcpProxy]
                                     ) -> None:
    port, backend, loop, proxy = proxied
    with socket.create_connection(("127.0.0.1", port), timeout=30) as client:
        conn, _ = backend.accept()
        with conn:
            client.sendall(b"ping")
            assert conn.recv(4) == b"ping"
            asyncio.run_coroutine_threadsafe(proxy.close(), loop).result(10)
            assert client.recv(10) == b""  # the proxy hung up on the client
            assert conn.recv(10) == b""  # and on the backend
