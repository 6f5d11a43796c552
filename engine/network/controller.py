"""The network layer's one entry point for the daemon: bridge networks and container attachments.

What the daemon keeps (in its metadata DB) and replays; what this object derives:
- persistent: IPAM (subnets, addresses: engine/network/ipam.py), and the daemon's own
  records of networks (NetworkConfig) and endpoints (EndpointConfig + the
  PortBinding list returned by connect, so random host ports survive restarts);
- derived, rebuilt at start: bridges, iptables rules, DNS name tables and
  servers, userland proxies.

Daemon start:   ctl = NetworkController(Ipam(DbIpamStore(db))); await ctl.start()
                for each network record: await ctl.create_network(cfg)  (adopts its subnet)
                for each running container: await ctl.restore_endpoint(...)
docker network create:   await ctl.create_network(cfg)   -> SubnetRecord
container start:         path = netns.create(...); await ctl.connect(...) -> Attachment; then the
                         OCI runtime joins `path`; /etc files from hosts_files.py
container stop:          await ctl.disconnect(network_id, endpoint_id); netns.remove(path)
docker network rm:       await ctl.remove_network(network_id)
daemon stop:             await ctl.close()  (rules stay until the next start flushes them, like dockerd)
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

from engine.network import bridge
from engine.network.bridge import DEFAULT_MTU
from engine.network.dns import DnsServer, NameTable, Upstream, read_upstreams
from engine.network.errors import Conflict, NotFound
from engine.network.firewall import Firewall, NoFirewall
from engine.network.firewall_rules import ChainNames, NetworkSpec
from engine.network.host_routes import occupied_networks
from engine.network.ipam import Ipam
from engine.network.ipam_store import SubnetRecord
from engine.network.iptables import Iptables
from engine.network.port_spec import PortSpec
from engine.network.portmap import PortBinding, PortMapper

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NetworkConfig:
    id: str
    bridge: str  # interface name, at most 15 characters (dockerd: br-<12 hex of the id>)
    subnet: str | None = None  # None: the next free default pool subnet
    gateway: str | None = None
    internal: bool = False
    mtu: int = DEFAULT_MTU
    masquerade: bool = True
    # The default "bridge" network has no embedded DNS in dockerd; user-defined ones do.
    embedded_dns: bool = True


@dataclass(frozen=True)
class EndpointConfig:
    network_id: str
    endpoint_id: str
    netns_path: str
    host_ifname: str  # dockerd: veth<7 hex>
    dns_names: tuple[str, ...] = ()  # container name, aliases, short id
    ports: tuple[PortSpec, ...] = ()
    address: str | None = None  # --ip
    container_ifname: str = "eth0"
    default_route: bool = True
    dns_servers: tuple[str, ...] = ()  # --dns: where the embedded resolver forwards this container's queries


@dataclass(frozen=True)
class Attachment:
    """What inspect's NetworkSettings.Networks[...] and Ports show for one endpoint."""

    endpoint: bridge.Endpoint
    ports: list[PortBinding]


@dataclass
class _Network:
    config: NetworkConfig
    subnet: SubnetRecord
    dns: DnsServer | None = None
    endpoints: dict[str, EndpointConfig] = field(default_factory=dict)


class NetworkController:
    def __init__(
        self,
        ipam: Ipam,
        host_netns: str | os.PathLike[str] | None = None,
        userland_proxy: bool = True,
        upstreams: list[Upstream] | None = None,
        chain_prefix: str = "BERTH",
        resolv_conf: Path = Path("/etc/resolv.conf"),
        iptables: bool = True,
        ip_forward: bool = True,
    ) -> None:
        self.ipam = ipam
        self.host_netns = host_netns
        self.userland_proxy = userland_proxy
        self.upstreams = upstreams if upstreams is not None else read_upstreams(resolv_conf)
        self.ip_forward = ip_forward
        self.firewall = (Firewall(Iptables(host_netns), ChainNames(chain_prefix), userland_proxy) if iptables
                         else NoFirewall(ChainNames(chain_prefix), userland_proxy))
        self.ports = PortMapper(self.firewall, host_netns)
        self.names = NameTable()
        self._networks: dict[str, _Network] = {}

    async def start(self) -> None:
        """Install Berth's chains, dropping whatever a previous run left in them."""
        await asyncio.to_thread(self.firewall.install)

    def _network(self, network_id: str) -> _Network:
        try:
            return self._networks[network_id]
        except KeyError:
            raise NotFound(f"network {network_id} not found") from None

    async def create_network(self, config: NetworkConfig) -> SubnetRecord:
        """Create (or, after a restart, re-create from its IPAM record) a bridge network."""
        if config.id in self._networks:
            raise Conflict(f"network {config.id} already exists")
        try:
            subnet = self.ipam.subnet_of(config.id)
        except NotFound:
            avoid = await asyncio.to_thread(occupied_networks, self.host_netns)
            subnet = self.ipam.allocate_subnet(config.id, config.subnet, config.gateway, avoid=avoid)
        gateway = IPv4Interface(f"{subnet.gateway}/{subnet.subnet.prefixlen}")
        await asyncio.to_thread(bridge.create_bridge, config.bridge, gateway, config.mtu, self.host_netns)
        await asyncio.to_thread(bridge.enable_routing, config.bridge, not self.userland_proxy, self.host_netns,
                                self.ip_forward)
        spec = NetworkSpec(config.id, config.bridge, subnet.subnet, config.internal, config.masquerade,
                           loopback_dnat=not self.userland_proxy)
        await asyncio.to_thread(self.firewall.add_network, spec)
        network = _Network(config, subnet)
        if config.embedded_dns:
            network.dns = DnsServer(config.id, self.names, subnet.gateway, self.upstreams, self.host_netns,
                                    device=config.bridge)
            await network.dns.start()
        self._networks[config.id] = network
        return subnet

    async def remove_network(self, network_id: str) -> None:
        network = self._network(network_id)
        if network.endpoints:
            raise Conflict(f"network {network_id} has active endpoints")
        if network.dns is not None:
            await network.dns.close()
        await asyncio.to_thread(self.firewall.remove_network, network_id)
        await asyncio.to_thread(bridge.delete_bridge, network.config.bridge, self.host_netns)
        self.names.drop_network(network_id)
        self.ipam.release_subnet(network_id)
        del self._networks[network_id]

    async def connect(self, endpoint: EndpointConfig) -> Attachment:
        """Address, veth, names and published ports for one container on one network; all or nothing."""
        network = self._network(endpoint.network_id)
        if endpoint.endpoint_id in network.endpoints:
            raise Conflict(f"endpoint {endpoint.endpoint_id} is already connected to {endpoint.network_id}")
        address = self.ipam.allocate_address(endpoint.network_id, endpoint.endpoint_id, endpoint.address)
        try:
            wired = await asyncio.to_thread(
                bridge.connect, network.config.bridge, endpoint.netns_path, endpoint.host_ifname,
                IPv4Interface(f"{address}/{network.subnet.subnet.prefixlen}"),
                network.subnet.gateway if endpoint.default_route else None,
                network.config.mtu, endpoint.container_ifname, self.host_netns,
            )
            try:
                attachment = await self._expose(network, endpoint, wired, list(endpoint.ports))
            except BaseException:
                await asyncio.to_thread(bridge.disconnect, endpoint.host_ifname, self.host_netns)
                raise
        except BaseException:
            self.ipam.release_address(endpoint.network_id, address)
            raise
        return attachment

    async def restore_endpoint(self, endpoint: EndpointConfig, wired: bridge.Endpoint,
                               ports: list[PortBinding]) -> Attachment:
        """After a daemon restart: a running container's veth is still there; names and ports are not."""
        network = self._network(endpoint.network_id)
        specs = [PortSpec(p.container_port, p.proto, p.host_ip, p.host_port) for p in ports]
        return await self._expose(network, endpoint, wired, specs)

    async def _expose(self, network: _Network, endpoint: EndpointConfig, wired: bridge.Endpoint,
                      specs: list[PortSpec]) -> Attachment:
        bindings = await self.ports.publish(endpoint.endpoint_id, network.config.bridge, wired.address.ip, specs,
                                            internal=network.config.internal)
        if network.dns is not None:
            self.names.add(endpoint.network_id, endpoint.dns_names, wired.address.ip)
            own = [Upstream(IPv4Address(s)) for s in endpoint.dns_servers if _is_ipv4(s)]
            if own:
                network.dns.client_upstreams[wired.address.ip] = own
        network.endpoints[endpoint.endpoint_id] = endpoint
        return Attachment(wired, bindings)

    async def disconnect(self, network_id: str, endpoint_id: str) -> None:
        network = self._network(network_id)
        endpoint = network.endpoints.pop(endpoint_id, None)
        if endpoint is None:
            raise NotFound(f"endpoint {endpoint_id} is not connected to network {network_id}")
        await self.ports.unpublish(endpoint_id)
        addresses = [a for a, owner in self.ipam.addresses(network_id).items() if owner == endpoint_id]
        for address in addresses:
            if network.dns is not None:
                network.dns.client_upstreams.pop(address, None)
            self.names.remove_address(network_id, address)
            self.ipam.release_address(network_id, address)
        await asyncio.to_thread(bridge.disconnect, endpoint.host_ifname, self.host_netns)

    def dns_server(self, network_id: str) -> IPv4Address | None:
        """The nameserver for containers' resolv.conf on this network (None: no embedded DNS)."""
        network = self._network(network_id)
        return network.subnet.gateway if network.dns is not None else None

    async def close(self, remove_rules: bool = False) -> None:
        """Stop proxies and DNS servers; bridges stay (containers may outlive the daemon)."""
        await self.ports.close()
        for network in self._networks.values():
            if network.dns is not None:
                await network.dns.close()
        self._networks.clear()
        if remove_rules:
            await asyncio.to_thread(self.firewall.uninstall)


def _is_ipv4(text: str) -> bool:
    try:
        IPv4Address(text)
    except ValueError:
        return False
    return True
