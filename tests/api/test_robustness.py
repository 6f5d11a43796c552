"""Bad input and load: Docker's status codes, clear messages, and a daemon that keeps serving with no leaks."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import threading
from collections.abc import Iterator

import pytest

from engine.runtime.procinfo import parent_pid
from tests.api.conftest import RunningDaemon, berthd_with_images, running_berthd
from tests.api.test_containers import _wait_for
from tests.api.test_system import raw_get


@pytest.fixture(scope="module")
def daemon(run_tag: str) -> Iterator[RunningDaemon]:
    with running_berthd(run_tag) as running:
        yield running


@pytest.fixture(scope="module")
def engine(run_tag: str) -> Iterator[RunningDaemon]:
    with berthd_with_images(run_tag, "busybox") as running:
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


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/v1.51/containers/create", json.dumps({"Image": "busybox", "Cmd": 5}).encode(), 400, "Cmd"),
        ("/v1.51/containers/create", json.dumps({"Image": "busybox", "HostConfig": {"Memory": "lots"}}).encode(),
         400, "Memory"),
        ("/v1.51/containers/create", json.dumps({"Image": "busybox", "HostConfig": {
            "PortBindings": {"80/tcp": [{"HostPort": "99999"}]}}}).encode(), 400, "99999"),
        ("/v1.51/containers/create", json.dumps({"Image": "busybox", "ExposedPorts": {"http/tcp": {}}}).encode(),
         400, "http"),
        ("/v1.51/containers/create?name=bad%20name", json.dumps({"Image": "busybox"}).encode(), 400,
         "Invalid container name (bad name)"),
        ("/v1.51/images/busybox/tag?repo=Not%20A%20Repo&tag=x", b"", 400, "invalid reference format"),
        ("/v1.51/images/busybox/tag?repo=ok&tag=bad%20tag", b"", 400, "invalid"),
        ("/v1.51/containers/create", json.dumps({"Image": "busybox", "Labels": {"n": 1}}).encode(), 400,
         "Config.Labels of type map[string]string"),
        ("/v1.51/containers/create", json.dumps({"Image": "busybox", "HostConfig": {"Privileged": "yes"}}).encode(),
         400, "HostConfig.Privileged of type bool"),
        ("/v1.51/containers/nosuch/update", json.dumps({"Memory": "lots"}).encode(), 400,
         "cannot unmarshal string into Go struct field UpdateConfig.Memory of type int64"),
    ],
)
def test_wrong_types_and_unparsable_strings(engine: RunningDaemon, path: str, body: bytes, status: int,
                                            message: str) -> None:
    """With the image there, what is wrong is the request: wrong types, a tag, a port, a memory size, a name."""
    got, reply = _post(str(engine.socket), path, body)
    assert (got, message in json.loads(reply)["message"]) == (status, True), reply
    assert raw_get(engine.socket, "/_ping")[0] == 200


def test_a_huge_body_is_refused_without_reading_it_all(daemon: RunningDaemon) -> None:
    before = _footprint(daemon)
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
    _wait_for(lambda: _no_more_than(daemon, before), "the daemon's fds, processes and mounts to be back")


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


def _footprint(daemon: RunningDaemon) -> tuple[int, int, int]:
    """(open sockets, pipes and anon inodes; descendant processes; mounts under its root) of the daemon.

    Files are left out: each worker thread opens its own database connection the first time it runs.
    """
    pid = daemon.proc.pid
    fds = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(FileNotFoundError):
            fds += os.readlink(f"/proc/{pid}/fd/{fd}").startswith(("socket:", "pipe:", "anon_inode:"))
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            ppid = parent_pid(int(entry))
            if ppid is not None:
                parents[int(entry)] = ppid
    descendants, frontier = 0, {pid}
    while frontier:
        frontier = {child for child, ppid in parents.items() if ppid in frontier}
        descendants += len(frontier)
    with open(f"/proc/{pid}/mountinfo") as f:
        mounts = sum(1 for line in f if line.split()[4].startswith(str(daemon.root)))
    return fds, descendants, mounts


def _no_more_than(daemon: RunningDaemon, before: tuple[int, int, int]) -> bool:
    """Nothing leaked: no count above what it was (a pipe of some short-lived helper may have gone since)."""
    return all(now <= then for now, then in zip(_footprint(daemon), before, strict=True))


def _ask_200_at_once(daemon: RunningDaemon) -> list[tuple[str, int, str]]:
    """200 concurrent requests of four kinds: (kind, status, message or "")."""
    results: list[tuple[str, int, str]] = []
    lock = threading.Lock()
    kinds = {
        "list": lambda: raw_get(daemon.socket, "/v1.51/containers/json?all=1")[::2],
        "ping": lambda: raw_get(daemon.socket, "/_ping")[::2],
        "missing": lambda: raw_get(daemon.socket, "/v1.51/containers/nosuch/json")[::2],
        "bad-json": lambda: _post(str(daemon.socket), "/v1.51/containers/create", b"{not json"),
    }

    def ask(kind: str) -> None:
        status, body = kinds[kind]()
        message = json.loads(body)["message"] if status >= 400 else ""
        with lock:
            results.append((kind, status, message))

    threads = [threading.Thread(target=ask, args=(kind,)) for _ in range(50) for kind in kinds]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


@pytest.mark.needs_root
def test_clients_that_vanish_from_container_streams_leak_nothing(engine: RunningDaemon) -> None:
    """Follow logs, stats, attach, a cp download and events of a running container, and hang up mid-stream:
    the daemon lets go of all of it (fds, processes, mounts, the container's lock) and the container stays
    manageable."""
    from tests.api.test_containers import docker_cli

    ticker = ["sh", "-c", "while :; do echo tick; sleep 0.1; done"]
    out = docker_cli(engine, "run", "-d", "--name", "vanish", "busybox", *ticker)
    assert out.returncode == 0, out.stderr
    try:
        cid = out.stdout.strip()
        raw_get(engine.socket, f"/v1.51/containers/{cid}/stats?stream=0")  # warms the stats path up
        before = _footprint(engine)
        streams = [
            ("GET", f"/v1.51/containers/{cid}/logs?follow=1&stdout=1&stderr=1", b"HTTP/1.1 200"),
            ("GET", f"/v1.51/containers/{cid}/stats?stream=1", b"HTTP/1.1 200"),
            ("POST", f"/v1.51/containers/{cid}/attach?stream=1&stdout=1&stderr=1", b"HTTP/1.1 101"),
            ("GET", f"/v1.51/containers/{cid}/archive?path=/bin", b"HTTP/1.1 200"),
            ("GET", "/v1.51/events", b"HTTP/1.1 200"),
        ]
        for method, path, status in streams * 4:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(str(engine.socket))
                upgrade = "Connection: Upgrade\r\nUpgrade: tcp\r\n" if method == "POST" else ""
                s.sendall(f"{method} {path} HTTP/1.1\r\nHost: d\r\n{upgrade}\r\n".encode())
                assert s.recv(len(status)) == status, path
                s.recv(4096)  # some of the stream, then gone
        _wait_for(lambda: _no_more_than(engine, before), "the daemon's fds, processes and mounts to be back")
        info = json.loads(raw_get(engine.socket, "/info")[2])
        assert info["NEventsListener"] == 0
        # The container runs on and answers: logs, a copy (its lock was released), stop.
        assert docker_cli(engine, "logs", "--tail", "1", "vanish").stdout == "tick\n"
        copied = docker_cli(engine, "cp", "vanish:/etc/hostname", "-", timeout=60)
        assert copied.returncode == 0 and "hostname" in copied.stdout, copied.stderr
        assert docker_cli(engine, "stop", "-t", "0", "vanish").returncode == 0
    finally:
        docker_cli(engine, "rm", "-f", "vanish")


def test_200_concurrent_requests(daemon: RunningDaemon) -> None:
    _ask_200_at_once(daemon)  # the first burst grows the daemon's worker threads and their connections
    before = _footprint(daemon)
    results = _ask_200_at_once(daemon)
    assert len(results) == 200
    expected = {"list": (200, ""), "ping": (200, ""), "missing": (404, "No such container: nosuch")}
    for kind, status, message in results:
        if kind == "bad-json":
            assert status == 400 and "invalid JSON" in message, (kind, status, message)
        else:
            assert (status, message) == expected[kind], (kind, status, message)
    assert daemon.proc.poll() is None
    _wait_for(lambda: _no_more_than(daemon, before), "the daemon's fds, processes and mounts to be back")


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
