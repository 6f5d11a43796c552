"""The userland proxy: relays a published port's traffic the kernel path cannot carry.

Chosen role (see portmap.py): with `userland_proxy=True` (dockerd's default) the
kernel's DNAT serves every destination but loopback, and this proxy serves
127.0.0.0/8, so route_localnet never has to be turned on.  One asyncio task per
listening socket instead of dockerd's one `docker-proxy` process per port.

TCP bytes do not go through the event loop: each accepted connection gets two
threads that move data with splice(2) through a pipe (socket -> pipe -> socket,
no copy to user space, the GIL released), so a busy published port neither
slows the API nor is slowed by it.

The listening socket is made (and bound) by the caller in the host netns; the
proxy makes its backend sockets there too, so it works whatever netns the event
loop's thread is in.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import socket
import threading

from engine.network.netns import socket_in

log = logging.getLogger(__name__)

Address = tuple[str, int]
# dockerd's docker-proxy forgets a UDP flow after 90 s without traffic.
UDP_IDLE_S = 90.0


_SPLICE_CHUNK = 1 << 20


def _splice(src: socket.socket, dst: socket.socket) -> None:
    """Relay src -> dst until EOF (then half-close dst, like a real TCP path) or an error (then end both)."""
    read_end, write_end = os.pipe()
    with contextlib.suppress(OSError):  # a 1 MiB pipe: fewer, larger splices (fs.pipe-max-size allows it)
        fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, _SPLICE_CHUNK)
    try:
        while True:
            count = os.splice(src.fileno(), write_end, _SPLICE_CHUNK)
            if count == 0:
                break
            while count:
                count -= os.splice(read_end, dst.fileno(), count)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)
    except OSError as exc:
        log.debug("proxy: stream ended: %s", exc)
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
    finally:
        os.close(read_end)
        os.close(write_end)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _relay(client: socket.socket, backend: socket.socket) -> None:
    """Both directions on their own threads; returns when both have ended."""
    loop = asyncio.get_running_loop()
    done = [loop.create_future(), loop.create_future()]
    client.setblocking(True)
    backend.setblocking(True)

    def run(src: socket.socket, dst: socket.socket, finished: asyncio.Future[None]) -> None:
        try:
            _splice(src, dst)
        finally:
            loop.call_soon_threadsafe(_resolve, finished)

    for (src, dst), finished in zip(((client, backend), (backend, client)), done, strict=True):
        threading.Thread(target=run, args=(src, dst, finished), name="berth-proxy", daemon=True).start()
    try:
        await asyncio.shield(asyncio.gather(*done))
    except asyncio.CancelledError:
        for sock in (client, backend):  # wakes both threads out of splice()
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        # The caller closes the sockets next: not while a thread may still use their fds.
        await asyncio.gather(*done)
        raise


class TcpProxy:
    def __init__(self, listener: socket.socket, target: Address, host_netns: str | os.PathLike[str] | None) -> None:
        self.listener = listener
        self.target = target
        self.host_netns = host_netns
        self._accepting: asyncio.Future[None] | None = None
        self._tasks: set[asyncio.Future[None]] = set()

    async def start(self) -> None:
        self.listener.setblocking(False)
        self._accepting = asyncio.ensure_future(self._accept())

    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                client, _ = await loop.sock_accept(self.listener)
            except OSError as exc:  # e.g. EMFILE: keep serving the next ones
                log.warning("proxy: accept failed: %s", exc)
                await asyncio.sleep(0.1)
                continue
            task = asyncio.ensure_future(self._serve(client))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _serve(self, client: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        backend = socket_in(self.host_netns, socket.AF_INET, socket.SOCK_STREAM)
        backend.setblocking(False)
        try:
            try:
                await loop.sock_connect(backend, self.target)
            except OSError as exc:
                log.warning("proxy: cannot reach %s:%d: %s", *self.target, exc)
                return
            await _relay(client, backend)
        finally:
            client.close()
            backend.close()

    async def close(self) -> None:
        if self._accepting is not None:
            self._accepting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._accepting
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.listener.close()


class _Backend(asyncio.DatagramProtocol):
    def __init__(self, front: asyncio.DatagramTransport, client: Address) -> None:
        self.front = front
        self.client = client

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.front.sendto(data, self.client)


class _Front(asyncio.DatagramProtocol):
    def __init__(self, proxy: UdpProxy) -> None:
        self.proxy = proxy

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.proxy.relay(data, addr)


class UdpProxy:
    """One connected backend socket per client address, so replies find their way back."""

    def __init__(self, sock: socket.socket, target: Address, host_netns: str | os.PathLike[str] | None,
                 idle_s: float = UDP_IDLE_S) -> None:
        self.sock = sock
        self.target = target
        self.host_netns = host_netns
        self.idle_s = idle_s
        self._front: asyncio.DatagramTransport | None = None
        self._flows: dict[Address, tuple[asyncio.DatagramTransport, asyncio.TimerHandle]] = {}
        # Datagrams that arrived while their flow's backend was being opened, in order.
        self._pending: dict[Address, list[bytes]] = {}

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._front, _ = await loop.create_datagram_endpoint(lambda: _Front(self), sock=self.sock)

    def relay(self, data: bytes, client: Address) -> None:
        flow = self._flows.get(client)
        if flow is not None:
            self._touch(client, flow[0])
            flow[0].sendto(data)
        elif client in self._pending:
            self._pending[client].append(data)
        else:
            self._pending[client] = [data]
            asyncio.get_running_loop().create_task(self._open(client))

    async def _open(self, client: Address) -> None:
        front = self._front
        assert front is not None
        try:
            backend = socket_in(self.host_netns, socket.AF_INET, socket.SOCK_DGRAM)
            backend.setblocking(False)
            backend.connect(self.target)
            transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                lambda: _Backend(front, client), sock=backend
            )
        except OSError as exc:
            log.warning("proxy: cannot open a UDP flow to %s:%d: %s", *self.target, exc)
            self._pending.pop(client, None)
            return
        self._touch(client, transport)
        for data in self._pending.pop(client, []):
            transport.sendto(data)

    def _touch(self, client: Address, transport: asyncio.DatagramTransport) -> None:
        old = self._flows.get(client)
        if old is not None:
            old[1].cancel()
        timer = asyncio.get_running_loop().call_later(self.idle_s, self._expire, client)
        self._flows[client] = (transport, timer)

    def _expire(self, client: Address) -> None:
        flow = self._flows.pop(client, None)
        if flow is not None:
            flow[0].close()

    def flow_count(self) -> int:
        return len(self._flows)

    async def close(self) -> None:
        for transport, timer in self._flows.values():
            timer.cancel()
            transport.close()
        self._flows.clear()
        if self._front is not None:
            self._front.close()
        self.sock.close()
