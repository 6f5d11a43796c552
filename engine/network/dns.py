"""The embedded DNS resolver of user-defined networks.

Containers on a user-defined network resolve each other by name and alias
(dockerd's embedded DNS, libnetwork resolver.go); every other name goes to the
upstream resolvers of the host's resolv.conf.

How a container reaches it (the choice): dockerd answers on 127.0.0.11 inside
each container's netns, with iptables rules in that netns redirecting port 53
to a socket it opened there.  Berth instead runs one resolver per network in
the host netns, listening on the network's gateway address (port 53, UDP and
TCP); the container's /etc/resolv.conf names the gateway
(engine/network/hosts_files.py).  No rules inside containers and one socket
pair per network, not per container; --internal networks still reach it
because only forwarding is dropped, not traffic to the host.  The cost: the
gateway address appears in the container's resolv.conf instead of 127.0.0.11.

Upstream queries are sent from the host netns, so a loopback resolver of the
host (systemd-resolved's 127.0.0.53) works, as with dockerd's host-loopback
forwarding.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import struct
import threading
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any, cast

from engine.network import dns_wire
from engine.network.errors import NetworkError
from engine.network.netns import socket_in

log = logging.getLogger(__name__)

DNS_PORT = 53
UPSTREAM_TIMEOUT_S = 2.0
_MAX_UDP = 4096


@dataclass(frozen=True)
class Upstream:
    address: IPv4Address
    port: int = DNS_PORT


def read_upstreams(resolv_conf: Path = Path("/etc/resolv.conf")) -> list[Upstream]:
    """IPv4 `nameserver` entries of a resolv.conf, in order."""
    upstreams = []
    try:
        text = resolv_conf.read_text()
    except FileNotFoundError:
        return []
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver":
            with contextlib.suppress(ValueError):
                upstreams.append(Upstream(IPv4Address(words[1])))
    return upstreams


class NameTable:
    """Names per network, kept by the daemon: container name, aliases, short id -> addresses."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._names: dict[str, dict[str, set[IPv4Address]]] = {}

    def add(self, network_id: str, names: Iterable[str], address: IPv4Address) -> None:
        with self._lock:
            table = self._names.setdefault(network_id, {})
            for name in names:
                table.setdefault(_norm(name), set()).add(address)

    def remove_address(self, network_id: str, address: IPv4Address) -> None:
        """Forget every name of an endpoint (it left the network)."""
        with self._lock:
            table = self._names.get(network_id, {})
            for name in [n for n, addrs in table.items() if address in addrs]:
                table[name].discard(address)
                if not table[name]:
                    del table[name]

    def drop_network(self, network_id: str) -> None:
        with self._lock:
            self._names.pop(network_id, None)

    def lookup(self, network_id: str, name: str) -> list[IPv4Address] | None:
        """Addresses for `name` on the network, or None when the network does not know it."""
        with self._lock:
            found = self._names.get(network_id, {}).get(_norm(name))
            return sorted(found) if found else None


def _norm(name: str) -> str:
    return name.lower().rstrip(".")


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.server.spawn(self._answer(data, addr))

    async def _answer(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = await self.server.resolve(data, tcp=False, client=addr[0])
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(reply, addr)


class DnsServer:
    """One network's resolver, listening on `listen` (its gateway) in the host netns."""

    def __init__(
        self,
        network_id: str,
        names: NameTable,
        listen: IPv4Address,
        upstreams: list[Upstream],
        host_netns: str | os.PathLike[str] | None = None,
        port: int = DNS_PORT,
        device: str | None = None,
    ) -> None:
        self.network_id = network_id
        # The network's bridge: the sockets take only what arrives on it (SO_BINDTODEVICE), so the
        # resolver, which forwards anything, is never open to whoever can route to the gateway address.
        self.device = device
        self.names = names
        self.listen = listen
        self.port = port
        self.upstreams = upstreams
        # A container's own --dns servers, by its address: its forwarded queries go there (dockerd's ExtDNS).
        self.client_upstreams: dict[IPv4Address, list[Upstream]] = {}
        self.host_netns = host_netns
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        address = (str(self.listen), self.port)
        udp = socket_in(self.host_netns, socket.AF_INET, socket.SOCK_DGRAM)
        tcp = socket_in(self.host_netns, socket.AF_INET, socket.SOCK_STREAM)
        try:
            if self.device is not None:
                for sock in (udp, tcp):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.device.encode())
            udp.bind(address)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            tcp.bind(address)
            tcp.listen(64)
            udp.setblocking(False)
            tcp.setblocking(False)
        except OSError as exc:
            udp.close()
            tcp.close()
            raise NetworkError(f"embedded DNS cannot listen on {address[0]}:{address[1]}: {exc}") from exc
        self._udp, _ = await loop.create_datagram_endpoint(lambda: _Udp(self), sock=udp)
        self._tcp = await asyncio.start_server(self._serve_tcp, sock=tcp)
        log.info("dns: network %s resolver on %s:%d, upstreams %s", self.network_id, *address,
                 ", ".join(f"{u.address}:{u.port}" for u in self.upstreams) or "none")

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # RFC 1035 4.2.2: each message is prefixed by its two-byte length; a client may send several.
        peer = writer.get_extra_info("peername")
        try:
            while True:
                try:
                    length = struct.unpack("!H", await reader.readexactly(2))[0]
                    data = await reader.readexactly(length)
                except asyncio.IncompleteReadError:
                    return
                reply = await self.resolve(data, tcp=True, client=peer[0] if peer else None)
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (ConnectionError, OSError) as exc:
            log.debug("dns: tcp client went away: %s", exc)
        finally:
            writer.close()

    async def resolve(self, data: bytes, tcp: bool, client: str | None = None) -> bytes:
        try:
            question = dns_wire.parse_question(data)
        except dns_wire.MalformedMessage as exc:
            log.debug("dns: malformed query: %s", exc)
            return dns_wire.error_response(data, dns_wire.RCODE_FORMERR)
        if question.qclass == dns_wire.CLASS_IN:
            local = self.names.lookup(self.network_id, question.name)
            if local is not None:
                # A known name: A records, and an empty NOERROR for other types (no IPv6 yet), like dockerd.
                return dns_wire.build_answer(question, local if question.qtype == dns_wire.TYPE_A else [])
        return await self._forward(data, tcp, client)

    async def _forward(self, data: bytes, tcp: bool, client: str | None = None) -> bytes:
        upstreams = self.upstreams
        if client is not None:
            with contextlib.suppress(ValueError):
                upstreams = self.client_upstreams.get(IPv4Address(client)) or upstreams
        for upstream in upstreams:
            try:
                return await asyncio.wait_for(
                    self._ask_tcp(upstream, data) if tcp else self._ask_udp(upstream, data), UPSTREAM_TIMEOUT_S
                )
            except (TimeoutError, OSError, dns_wire.MalformedMessage) as exc:
                log.warning("dns: upstream %s:%d failed: %s", upstream.address, upstream.port, exc)
        return dns_wire.error_response(data, dns_wire.RCODE_SERVFAIL)

    async def _ask_udp(self, upstream: Upstream, data: bytes) -> bytes:
        loop = asyncio.get_running_loop()
        with socket_in(self.host_netns, socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            await loop.sock_connect(sock, (str(upstream.address), upstream.port))
            await loop.sock_sendall(sock, data)
            while True:
                reply = await loop.sock_recv(sock, _MAX_UDP)
                # A reply to another query (or a spoof) is ignored, not relayed.
                if reply[:2] == data[:2]:
                    return reply

    async def _ask_tcp(self, upstream: Upstream, data: bytes) -> bytes:
        loop = asyncio.get_running_loop()
        sock = socket_in(self.host_netns, socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, (str(upstream.address), upstream.port))
        except BaseException:
            sock.close()
            raise
        reader, writer = await asyncio.open_connection(sock=sock)
        try:
            writer.write(struct.pack("!H", len(data)) + data)
            await writer.drain()
            length = struct.unpack("!H", await reader.readexactly(2))[0]
            return await reader.readexactly(length)
        finally:
            writer.close()

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
