"""A connection of berthd's own failing (a shim host refusing, a broken pipe to a shim) while a client
waits is answered with Docker's 500 and message: the client's connection stays and serves the next call.
Only a connection error of the client's own ends its connection without an answer."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.api.http import HTTPConnection, Request, Response
from engine.api.router import Router
from engine.api.server import APIServer, ListenAddress


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=30)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(30)
        sock.connect(self._path)
        self.sock = sock


@pytest.fixture
def server_path(tmp_path: Path) -> Iterator[str]:
    """A real APIServer on a unix socket, with routes standing in for berthd's backends."""

    async def refused(_request: Request, _conn: HTTPConnection) -> Response:
        raise ConnectionRefusedError(111, "shim host h1.sock refused the connection")

    async def broken_pipe(_request: Request, _conn: HTTPConnection) -> Response:
        raise BrokenPipeError(32, "Broken pipe")

    async def ping(_request: Request, _conn: HTTPConnection) -> Response:
        return Response.json({"ok": True})

    router = Router()
    router.add("POST", "/containers/{id}/start", refused)
    router.add("POST", "/containers/{id}/wait", broken_pipe)
    router.add("GET", "/_ping", ping)
    path = str(tmp_path / "api.sock")
    loop = asyncio.new_event_loop()
    server = APIServer(router)
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.listen(ListenAddress("unix", path=path)))
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(30)
    try:
        yield path
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


@pytest.mark.parametrize(("target", "reason"), [
    ("/v1.51/containers/c1/start", "refused the connection"),
    ("/v1.51/containers/c1/wait", "Broken pipe"),
])
def test_a_backend_connection_error_is_a_500_with_its_reason(server_path: str, target: str, reason: str) -> None:
    client = _UnixHTTPConnection(server_path)
    try:
        client.request("POST", target)
        response = client.getresponse()
        body = json.loads(response.read())
        assert response.status == 500
        assert reason in body["message"]
        client.request("GET", "/_ping")  # the same connection: it was answered, not dropped
        again = client.getresponse()
        assert again.status == 200 and json.loads(again.read()) == {"ok": True}
    finally:
        client.close()
