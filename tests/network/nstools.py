"""Test-side helpers: sockets living in a namespace, and a one-shot TCP echo server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from engine.network.netns import socket_in

T = TypeVar("T")


def retry(action: Callable[[], T], within: float = 8.0, pause: float = 0.02) -> T:
    """Bounded retries for kernel events that settle asynchronously (a link coming up, a proxy starting)."""
    deadline = time.monotonic() + within
    while True:
        try:
            return action()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(pause)


class EchoServer:
    """TCP (or UDP) echo in the netns at `ns`, bound to `address`:`port` (0: any port), on a thread."""

    def __init__(self, ns: str, address: str = "0.0.0.0", port: int = 0, udp: bool = False) -> None:
        kind = socket.SOCK_DGRAM if udp else socket.SOCK_STREAM
        self.sock = socket_in(ns, socket.AF_INET, kind)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((address, port))
        self.port = int(self.sock.getsockname()[1])
        self.udp = udp
        self.peers: list[str] = []
        if not udp:
            self.sock.listen(16)
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                if self.udp:
                    data, peer = self.sock.recvfrom(65535)
                    self.peers.append(peer[0])
                    self.sock.sendto(b"echo:" + data, peer)
                    continue
                conn, peer = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.peers.append(peer[0])
            with conn:
                conn.settimeout(5)
                try:
                    data = conn.recv(65535)
                    conn.sendall(b"echo:" + data)
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


def tcp_exchange(ns: str, address: str, port: int, payload: bytes = b"hello", timeout: float = 3.0) -> bytes:
    """Connect from inside `ns`, send `payload`, return the reply."""
    with socket_in(ns, socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect((address, port))
        sock.sendall(payload)
        return sock.recv(65535)


def udp_exchange(ns: str, address: str, port: int, payload: bytes = b"hello", timeout: float = 3.0) -> bytes:
    with socket_in(ns, socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(payload, (address, port))
        return sock.recvfrom(65535)[0]
