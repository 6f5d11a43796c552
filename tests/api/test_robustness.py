"""Bad input and load: Docker's status codes, clear messages, and a daemon that keeps serving with no leaks."""

from __future__ import annotations

import http.client
import json
import os
import socket
import threading
from collections.abc import Iterator

import pytest

from tests.api.conftest import RunningDaemon, running_berthd
from tests.api.test_system import raw_get


@pytest.fixture(scope="module")
def daemon(run_tag: str) -> Iterator[RunningDaemon]:
    with running_berthd(run_tag) as running:
        yield running


def _post(sock_path: str, path: str, body: bytes, content_type: str = "application/json") -> tuple[int, bytes]:
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(sock_path)
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: d\r\nContent-Type: {content_type}\r\n"
                  f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), rest


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/v1.51/containers/create", b"{not json", 400, "invalid JSON"),
        ("/v1.51/containers/create", b"[]", 400, "must be a container config object"),
        ("/v1.51/containers/create", json.dumps({"Image": ""}).encode(), 400, "config.Image must not be empty"),
        ("/v1.51/containers/create", json.dumps({"Image": "nosuch:image"}).encode(), 404, "No such image"),
        ("/v1.51/containers/nosuch/start", b"", 404, "No such container: nosuch"),
        ("/v1.51/containers/nosuch/kill?signal=NOPE", b"", 404, "No such container"),
        ("/v1.51/volumes/create", json.dumps({"Name": "bad name"}).encode(), 400, "includes invalid characters"),
        ("/v1.51/images/create", b"", 400, "fromImage or fromSrc is required"),
    ],
)
def test_bad_requests(daemon: RunningDaemon, path: str, body: bytes, status: int, message: str) -> None:
    got, reply = _post(str(daemon.socket), path, body)
    assert got == status
    assert message in json.loads(reply)["message"]
    assert raw_get(daemon.socket, "/_ping")[0] == 200


def test_a_huge_body_is_refused_without_reading_it_all(daemon: RunningDaemon) -> None:
    before = _fds(daemon.proc.pid)
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(daemon.socket))
        size = 100 * 1024 * 1024
        s.sendall(f"POST /v1.51/containers/create HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {size}\r\n\r\n".encode())
        sent = 0
        try:
            chunk = b" " * (1 << 20)
            while sent < size:
                s.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the daemon answered and hung up: it did not read the 100 MB
        reply = s.recv(65536)
    assert reply.startswith(b"HTTP/1.1 400")
    assert b"request body larger than" in reply
    assert raw_get(daemon.socket, "/_ping")[0] == 200
    assert _fds(daemon.proc.pid) <= before + 2


def test_clients_that_vanish_mid_stream_leak_nothing(daemon: RunningDaemon) -> None:
    before = _fds(daemon.proc.pid)
    for _ in range(20):
        with socket.socket(socket.AF_UNIX) as s:  # an events stream, abandoned
            s.connect(str(daemon.socket))
            s.sendall(b"GET /v1.51/events HTTP/1.1\r\nHost: d\r\n\r\n")
            assert s.recv(12).startswith(b"HTTP/1.1 200")
    for _ in range(200):
        if json.loads(raw_get(daemon.socket, "/info")[2])["NEventsListener"] == 0:
            break
    assert json.loads(raw_get(daemon.socket, "/info")[2])["NEventsListener"] == 0
    assert _fds(daemon.proc.pid) <= before + 2


def test_200_concurrent_requests(daemon: RunningDaemon) -> None:
    results: list[int] = []
    lock = threading.Lock()

    def ask() -> None:
        status = raw_get(daemon.socket, "/v1.51/containers/json?all=1")[0]
        with lock:
            results.append(status)

    threads = [threading.Thread(target=ask) for _ in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == [200] * 200
    assert daemon.proc.poll() is None


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost")
        self.path = path
        self.connects = 0

    def connect(self) -> None:
        self.connects += 1
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(self.path)


def test_one_connection_serves_plain_and_streamed_answers_in_turn(daemon: RunningDaemon) -> None:
    # The docker CLI reuses its connection after a pull stream for containers/create; a
    # server that closed it silently made that POST fail with "connection reset by peer".
    conn = _UnixHTTPConnection(str(daemon.socket))
    paths = ["/_ping", "/v1.51/version", "/v1.51/events?since=0&until=1", "/v1.51/containers/json", "/_ping"]
    for path in paths:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        assert response.status == 200, (path, body)
        assert response.getheader("Connection") != "close", path
    assert conn.connects == 1
    conn.close()
