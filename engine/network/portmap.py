"""Port publishing: `-p hostIp:hostPort:containerPort/proto` made real in a host netns.

How a published port is served (the choice, and why):
- The kernel does the work: DNAT in <P>-DNAT (hooked from PREROUTING for traffic
  arriving from outside or from containers, from OUTPUT for the host's own
  connections), an ACCEPT in <P>-FORWARD, MASQUERADE for hairpin traffic
  (engine/network/firewall_rules.py).  No process copies bytes on that path.
- 127.0.0.1 is the one destination the kernel cannot DNAT out of a bridge unless
  route_localnet is on.  With `userland_proxy=True` (dockerd's default) an asyncio
  proxy (engine/network/userland_proxy.py) serves loopback and route_localnet
  stays off; with `userland_proxy=False` the network must be set up with
  route_localnet (bridge.enable_routing(..., route_localnet=True)) and
  NetworkSpec.loopback_dnat, and loopback is DNATed like everything else.
- Every published port also holds a socket bound to hostIp:hostPort in the host
  netns, in both modes: binding is how conflicts with other containers and with
  host services are found (EADDRINUSE), and how a random host port is chosen
  (bind to port 0: the kernel's ephemeral range, as dockerd's portallocator).

Restore after a daemon restart: `Firewall.install()` flushes the chains; the
daemon then calls `publish()` again for each running container with the host
ports it recorded (so random ports stay the same).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from engine.network.errors import NetworkError, PortConflict
from engine.network.firewall import Firewall
from engine.network.firewall_rules import PortRuleSpec, Proto
from engine.network.netns import socket_in
from engine.network.port_spec import PortSpec
from engine.network.userland_proxy import TcpProxy, UdpProxy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PortBinding:
    """A published port as it ended up: what `docker port` and inspect's NetworkSettings.Ports show."""

    proto: Proto
    container_ip: IPv4Address
    container_port: int
    host_ip: IPv4Address | None
    host_port: int

    def api(self) -> tuple[str, dict[str, str]]:
        return f"{self.container_port}/{self.proto}", {
            "HostIp": str(self.host_ip) if self.host_ip else "0.0.0.0",
            "HostPort": str(self.host_port),
        }


@dataclass
class _Published:
    bindings: list[PortBinding] = field(default_factory=list)
    sockets: list[socket.socket] = field(default_factory=list)
    proxies: list[TcpProxy | UdpProxy] = field(default_factory=list)


class PortMapper:
    """Published ports of every endpoint, in one host netns; call from the daemon's event loop."""

    def __init__(self, firewall: Firewall, host_netns: str | os.PathLike[str] | None = None) -> None:
        self.firewall = firewall
        self.host_netns = host_netns
        self.userland_proxy = firewall.userland_proxy
        self._endpoints: dict[str, _Published] = {}

    async def publish(
        self,
        endpoint_id: str,
        bridge: str,
        container_ip: IPv4Address,
        specs: Sequence[PortSpec],
        internal: bool = False,
    ) -> list[PortBinding]:
        """Publish `specs` for one endpoint; all or nothing (a conflict leaves nothing behind)."""
        if endpoint_id in self._endpoints:
            raise NetworkError(f"endpoint {endpoint_id} already has published ports")
        if internal:
            # dockerd: ports of a container on an --internal network are not published.
            log.warning("portmap: %s is on an internal network: %d ports not published", endpoint_id, len(specs))
            return []
        published = _Published()
        try:
            for spec in specs:
                sock = self._reserve(spec)
                published.sockets.append(sock)
                published.bindings.append(PortBinding(
                    spec.proto, container_ip, spec.container_port, spec.host_ip, int(sock.getsockname()[1])
                ))
            rules = [
                PortRuleSpec(endpoint_id, bridge, b.container_ip, b.container_port, b.proto, b.host_port, b.host_ip)
                for b in published.bindings
            ]
            await asyncio.to_thread(self.firewall.add_ports, rules)
            for binding, sock in zip(published.bindings, published.sockets, strict=True):
                if self._proxy_serves(binding):
                    target = (str(binding.container_ip), binding.container_port)
                    proxy: TcpProxy | UdpProxy = (
                        TcpProxy(sock, target, self.host_netns) if binding.proto == "tcp"
                        else UdpProxy(sock, target, self.host_netns)
                    )
                    await proxy.start()
                    published.proxies.append(proxy)
        except BaseException:
            await self._teardown(endpoint_id, published)
            raise
        self._endpoints[endpoint_id] = published
        log.info("portmap: %s published %s", endpoint_id,
                 ", ".join(f"{b.host_ip or '0.0.0.0'}:{b.host_port}->{b.container_port}/{b.proto}"
                           for b in published.bindings))
        return list(published.bindings)

    def _proxy_serves(self, binding: PortBinding) -> bool:
        return self.userland_proxy and (binding.host_ip is None or binding.host_ip.is_loopback)

    def _reserve(self, spec: PortSpec) -> socket.socket:
        kind = socket.SOCK_STREAM if spec.proto == "tcp" else socket.SOCK_DGRAM
        sock = socket_in(self.host_netns, socket.AF_INET, kind)
        address = (str(spec.host_ip) if spec.host_ip else "0.0.0.0", spec.host_port or 0)
        serving = self.userland_proxy and (spec.host_ip is None or spec.host_ip.is_loopback)
        try:
            if serving and kind == socket.SOCK_STREAM:
                # A proxy that restarts must not wait for its old connections' TIME_WAIT.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            if serving and kind == socket.SOCK_STREAM:
                sock.listen(128)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE:
                raise PortConflict(
                    f"Bind for {address[0]}:{address[1]} failed: port is already allocated"
                ) from exc
            raise NetworkError(f"cannot bind {address[0]}:{address[1]}/{spec.proto}: {exc}") from exc
        return sock

    async def unpublish(self, endpoint_id: str) -> None:
        """Remove an endpoint's rules, proxies and reservations (idempotent)."""
        published = self._endpoints.pop(endpoint_id, None)
        await self._teardown(endpoint_id, published or _Published())

    async def _teardown(self, endpoint_id: str, published: _Published) -> None:
        # No binding, no rule (install() flushed whatever an earlier run left): skip listing the tables.
        if published.bindings:
            await asyncio.to_thread(self.firewall.remove_endpoint, endpoint_id)
        for proxy in published.proxies:
            await proxy.close()
        for sock in published.sockets:
            with contextlib.suppress(OSError):
                sock.close()

    def bindings(self, endpoint_id: str) -> list[PortBinding]:
        published = self._endpoints.get(endpoint_id)
        return list(published.bindings) if published else []

    async def close(self) -> None:
        for endpoint_id in list(self._endpoints):
            await self.unpublish(endpoint_id)
