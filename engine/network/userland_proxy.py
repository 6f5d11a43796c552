"""The userland proxy: relays a published port's traffic the kernel path cannot carry.

Chosen role (see portmap.py): with `userland_proxy=True` (dockerd's default) the
kernel's DNAT serves every destination but loopback, and this proxy serves
127.0.0.0/8, so route_localnet never has to be turned on.  One asyncio task per
listening socket instead of dockerd's one `docker-proxy` process per port.

The listening socket is made (and bound) by the caller in the host netns; the
proxy makes its backend sockets there too, so it works whatever netns the event
loop's thread is in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket

from engine.network.netns import socket_in

log = logging.getLogger(__name__)

Address = tuple[str, int]
# dockerd's docker-proxy forgets a UDP flow after 90 s without traffic.
UDP_IDLE_S = 90.0
_CHUNK = 65536


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()  # half-close travels on, like a real TCP path
    except (ConnectionError, OSError) as exc:
        log.debug("proxy: stream ended: %s", exc)
        writer.close()


class TcpProxy:
    def __init__(self, listener: socket.socket, target: Address, host_netns: str | os.PathLike[str] | None) -> None:
        self.listener = listener
        self.target = target
        self.host_netns = host_netns
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, sock=self.listener)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        loop = asyncio.get_running_loop()
        backend = socket_in(self.host_netns, socket.AF_INET, socket.SOCK_STREAM)
        backend.setblocking(False)
        try:
            try:
                await loop.sock_connect(backend, self.target)
            except OSError as exc:
                log.warning("proxy: cannot reach %s:%d: %s", *self.target, exc)
                backend.close()
                client_w.close()
                return
            backend_r, backend_w = await asyncio.open_connection(sock=backend)
            await asyncio.gather(_pipe(client_r, backend_w), _pipe(backend_r, client_w))
        finally:
            client_w.close()
            backend.close()
            if task is not None:
                self._tasks.discard(task)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()
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
