"""Networks in the daemon: the records, the NetworkController, and each container's network sandbox.

The daemon's one network object (moby's daemon/network.go + container_operations.go):
- at start: predefined networks (`bridge` on berth0 unless --bridge=none, `host`, `none`), user
  networks re-created from their records, endpoints of containers that were running restored
  (addresses, names, published ports with the same host ports);
- for ContainerService: `prepare` (create: validate NetworkMode, EndpointsConfig, ports, extra
  hosts), `setup` (start: netns + veth per network + /etc files), `teardown` (exit), `forget` (rm);
- for the API: list/inspect/create/remove/connect/disconnect/prune, events.

Where state lives: engine/network/records.py (networks, container endpoints) and the IPAM
tables (engine/network/ipam_store.py), both in the metadata DB; netns files under
<exec-root>/netns/<container id>; bridges and rules are derived and rebuilt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import Any

from pyroute2 import IPRoute

from engine.network import bridge, netns
from engine.network.bridge import DEFAULT_MTU
from engine.network.controller import EndpointConfig, NetworkConfig, NetworkController
from engine.network.errors import Conflict, InvalidParameter, NetworkError, NotFound
from engine.network.hosts_files import (
    ContainerFiles,
    container_resolv_conf,
    hostname_file,
    hosts_file,
    parse_extra_host,
    parse_resolv_conf,
)
from engine.network.inspect_json import endpoint_settings, port_map
from engine.network.ipam import DEFAULT_POOLS, AddressPool, Ipam
from engine.network.ipam_store import DbIpamStore
from engine.network.port_spec import PortSpec, from_port_bindings
from engine.network.portmap import PortBinding
from engine.network.records import (
    ContainerNetwork,
    EndpointRequest,
    NetworkRecord,
    NetworkRecords,
    WiredEndpoint,
)
from engine.store import MetadataDB

log = logging.getLogger(__name__)

DEFAULT_BRIDGE = "berth0"
PREDEFINED = ("bridge", "host", "none")


@dataclass
class NetworkOptions:
    """berthd's network flags (dockerd's names)."""

    bridge: str = DEFAULT_BRIDGE  # --bridge; "none" disables the default bridge network
    bip: str | None = None  # --bip 10.20.0.1/24
    iptables: bool = True
    ip_forward: bool = True
    userland_proxy: bool = True
    default_address_pools: list[AddressPool] = field(default_factory=lambda: list(DEFAULT_POOLS))
    mtu: int = DEFAULT_MTU


@dataclass
class Sandbox:
    """What a starting container needs from the network layer."""

    netns_path: str | None  # None: the daemon's own netns (--network host)
    etc_files: dict[str, str]  # "/etc/hosts" -> host path


def now_rfc3339() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


def parse_address_pool(text: str) -> AddressPool:
    """dockerd --default-address-pool base=10.10.0.0/16,size=24."""
    fields = dict(part.split("=", 1) for part in text.split(",") if "=" in part)
    try:
        return AddressPool(IPv4Network(fields["base"]), int(fields["size"]))
    except (KeyError, ValueError) as exc:
        raise InvalidParameter(f"invalid default address pool {text!r}: expected base=CIDR,size=N") from exc


def network_options(config: Any) -> NetworkOptions:
    """NetworkOptions from berthd's DaemonConfig (flags: "base=CIDR,size=N"; daemon.json: {"base", "size"})."""
    pools = []
    for pool in config.default_address_pools or []:
        pools.append(parse_address_pool(pool) if isinstance(pool, str)
                     else parse_address_pool(f"base={pool.get('base')},size={pool.get('size')}"))
    return NetworkOptions(bridge=str(config.bridge or DEFAULT_BRIDGE), bip=config.bip, iptables=bool(config.iptables),
                          ip_forward=bool(config.ip_forward), userland_proxy=bool(config.userland_proxy),
                          default_address_pools=pools or list(DEFAULT_POOLS), mtu=int(config.mtu))


class NetworkService:
    def __init__(self, db: MetadataDB, exec_root: Path, options: NetworkOptions,
                 publish: Callable[[str, str, str, dict[str, str]], object],
                 container_dir: Callable[[str], Path]) -> None:
        self.options = options
        self.records = NetworkRecords(db)
        self.ipam = Ipam(DbIpamStore(db), pools=options.default_address_pools)
        self.controller = NetworkController(self.ipam, userland_proxy=options.userland_proxy,
                                            iptables=options.iptables, ip_forward=options.ip_forward)
        self.netns_dir = exec_root / "netns"
        self.publish = publish
        self.container_dir = container_dir  # the container's data dir: hosts, resolv.conf, hostname
        self._lock = asyncio.Lock()

    # ================================================================ daemon start / stop
    async def start(self, running: set[str]) -> None:
        """Chains, predefined networks, user networks, then endpoints of containers in `running`."""
        await self.controller.start()
        await self._predefined()
        for record in self.records.networks():
            if record.driver == "bridge":
                try:
                    await self._bring_up(record)
                except NetworkError as exc:
                    log.error("network %s could not be restored: %s", record.name, exc)
        for entry in self.records.container_networks():
            if entry.wired is None:
                continue
            if entry.container_id not in running:
                await self._unwire(entry)
                continue
            try:
                await self.controller.restore_endpoint(
                    self._endpoint_config(entry.container_id, entry.network_id, entry.wired),
                    _bridge_endpoint(entry.wired), [_binding(p) for p in entry.wired.ports])
                log.info("restored endpoint of %s on %s", entry.container_id[:12], entry.network_id[:12])
            except NetworkError as exc:
                log.error("endpoint of %s on %s not restored: %s", entry.container_id[:12], entry.network_id[:12], exc)
        # A berthd that died mid-teardown can leave a netns file behind: only running containers keep theirs.
        if self.netns_dir.is_dir():
            for path in self.netns_dir.iterdir():
                if path.name not in running:
                    await asyncio.to_thread(netns.remove, path)

    async def _predefined(self) -> None:
        have = {r.name: r for r in self.records.networks()}
        wanted = [("host", "host", ""), ("none", "null", "")]
        if self.options.bridge != "none":
            wanted.insert(0, ("bridge", "bridge", self.options.bridge))
        elif "bridge" in have:
            await self._drop_default_bridge(have["bridge"])
        for name, driver, ifname in wanted:
            existing = have.get(name)
            if existing is not None and name == "bridge" and (existing.bridge != ifname or self._bip_changed(existing)):
                await self._drop_default_bridge(existing)
                existing = None
            if existing is None:
                config = []
                if name == "bridge" and self.options.bip:
                    bip = IPv4Interface(self.options.bip)
                    config = [{"Subnet": str(bip.network), "Gateway": str(bip.ip)}]
                options = {}
                if name == "bridge":
                    options = {"com.docker.network.bridge.default_bridge": "true",
                               "com.docker.network.bridge.enable_icc": "true",
                               "com.docker.network.bridge.enable_ip_masquerade": "true",
                               "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
                               "com.docker.network.bridge.name": ifname,
                               "com.docker.network.driver.mtu": str(self.options.mtu)}
                self.records.add_network(NetworkRecord(secrets.token_hex(32), name, driver, now_rfc3339(),
                                                       bridge=ifname, ipam_config=config, options=options))

    def _bip_changed(self, record: NetworkRecord) -> bool:
        if not self.options.bip:
            return False
        bip = IPv4Interface(self.options.bip)
        return record.ipam_config != [{"Subnet": str(bip.network), "Gateway": str(bip.ip)}]

    async def _drop_default_bridge(self, record: NetworkRecord) -> None:
        """--bridge/--bip changed since the last run: the old default network goes (with its subnet)."""
        for entry in self.records.container_networks(network_id=record.id):
            await self._unwire(entry)
            self.records.remove_container_network(entry.container_id, record.id)
        self.ipam.release_subnet(record.id)
        await asyncio.to_thread(bridge.delete_bridge, record.bridge)
        self.records.remove_network(record.id)

    async def _bring_up(self, record: NetworkRecord) -> None:
        requested = record.ipam_config[0] if record.ipam_config else {}
        await self.controller.create_network(NetworkConfig(
            id=record.id, bridge=record.bridge, subnet=requested.get("Subnet") or None,
            gateway=requested.get("Gateway") or None, internal=record.internal,
            mtu=int(record.options.get("com.docker.network.driver.mtu") or self.options.mtu),
            embedded_dns=record.name != "bridge",
        ))

    async def close(self) -> None:
        await self.controller.close()

    # ================================================================ lookups
    def get(self, ref: str) -> NetworkRecord:
        """By full id, name, or unique id prefix (dockerd's FindNetwork)."""
        records = self.records.networks()
        for record in records:
            if record.id == ref:
                return record
        for record in records:
            if record.name == ref:
                return record
        matches = [r for r in records if r.id.startswith(ref)] if ref else []
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InvalidParameter(f"network {ref} is ambiguous ({len(matches)} matches found based on ID prefix)")
        raise NotFound(f"network {ref} not found")

    def all(self) -> list[NetworkRecord]:
        return self.records.networks()

    def _default_network(self) -> NetworkRecord | None:
        try:
            return self.get("bridge") if self.options.bridge != "none" else None
        except NotFound:
            return None

    def host_gateway(self) -> IPv4Address | None:
        """`host-gateway` in --add-host: the default bridge's gateway (dockerd's default)."""
        default = self._default_network()
        if default is None:
            return None
        with contextlib.suppress(NotFound):
            return self.ipam.subnet_of(default.id).gateway
        return None

    # ================================================================ API: networks
    async def create(self, body: dict[str, Any]) -> tuple[NetworkRecord, str]:
        name = str(body.get("Name") or "")
        if not name:
            raise InvalidParameter("network name must not be empty")
        driver = str(body.get("Driver") or "bridge")
        if driver in ("host", "null") or name in PREDEFINED:
            raise Forbidden(f"{name} is a pre-defined network and cannot be created")
        if driver != "bridge":
            raise NotFound(f"plugin \"{driver}\" not found")
        for flag in ("EnableIPv4", "EnableIPv6"):
            if not isinstance(body.get(flag), bool | None):
                raise InvalidParameter(f"invalid JSON: {flag} must be a boolean")
        if body.get("EnableIPv6"):
            raise InvalidParameter("IPv6 is not implemented in Berth: networks are IPv4 only "
                                   "(EnableIPv6 must be false)")
        if body.get("EnableIPv4") is False:
            # dockerd makes an IPv6-only network; without IPv6 there would be no address family left.
            raise InvalidParameter("IPv4 or IPv6 must be enabled, and IPv6 is not implemented in Berth: "
                                   "EnableIPv4 cannot be false")
        ipam = body.get("IPAM") or {}
        configs = [dict(c) for c in ipam.get("Config") or []]
        if len(configs) > 1:
            raise InvalidParameter("Berth supports one IPv4 subnet per network")
        requested: dict[str, str] = {}
        if configs:
            c = configs[0]
            if c.get("IPRange"):
                raise InvalidParameter("IPAM IPRange is not supported by Berth yet")
            if c.get("Gateway") and not c.get("Subnet"):
                raise InvalidParameter("a gateway needs a subnet")
            requested = {k: str(c[k]) for k in ("Subnet", "Gateway") if c.get(k)}
            with contextlib.suppress(KeyError):
                try:
                    network = IPv4Network(requested["Subnet"], strict=False)
                except ValueError as exc:
                    raise InvalidParameter(f"invalid subnet {requested['Subnet']}: {exc}") from exc
                if str(network) != requested["Subnet"]:
                    raise InvalidParameter(f"invalid subnet {requested['Subnet']}: it has host bits set")
        options = {str(k): str(v) for k, v in (body.get("Options") or {}).items()}
        network_id = secrets.token_hex(32)
        ifname = options.get("com.docker.network.bridge.name") or f"br-{network_id[:12]}"
        record = NetworkRecord(network_id, name, "bridge", now_rfc3339(), bridge=ifname,
                               internal=bool(body.get("Internal")), attachable=bool(body.get("Attachable")),
                               labels={str(k): str(v) for k, v in (body.get("Labels") or {}).items()},
                               options=options, ipam_config=[requested] if requested else [],
                               ipam_options={str(k): str(v) for k, v in (ipam.get("Options") or {}).items()})
        async with self._lock:
            if any(r.name == name for r in self.records.networks()):
                raise Conflict(f"network with name {name} already exists")
            await self._bring_up(record)
            try:
                self.records.add_network(record)
            except BaseException:
                await self.controller.remove_network(record.id)
                raise
        self.publish("network", "create", record.id, {"name": name, "type": "bridge"})
        return record, ""

    async def remove(self, ref: str) -> None:
        record = self.get(ref)
        if record.predefined:
            raise Forbidden(f"{record.name} is a pre-defined network and cannot be removed")
        async with self._lock:
            # Like dockerd: only connected endpoints (running containers) hold a network; a created
            # container that names it fails at start instead.
            users = [e for e in self.records.container_networks(network_id=record.id) if e.wired]
            if users:
                raise Conflict(f"error while removing network: network {record.name} id {record.id} has active "
                               "endpoints")
            await self.controller.remove_network(record.id)
            self.records.remove_network(record.id)
        self.publish("network", "destroy", record.id, {"name": record.name, "type": record.driver})

    async def prune(self, keep: Callable[[NetworkRecord], bool]) -> list[str]:
        deleted = []
        for record in self.records.networks():
            if record.predefined or not keep(record) or any(
                    e.wired for e in self.records.container_networks(network_id=record.id)):
                continue
            with contextlib.suppress(Conflict, NotFound):
                await self.remove(record.id)
                deleted.append(record.name)
        return deleted

    def inspect(self, record: NetworkRecord, container_names: dict[str, str]) -> dict[str, Any]:
        containers: dict[str, Any] = {}
        for entry in self.records.container_networks(network_id=record.id):
            if entry.wired is None:
                continue
            containers[entry.container_id] = {
                "Name": container_names.get(entry.container_id, ""), "EndpointID": entry.wired.endpoint_id,
                "MacAddress": entry.wired.mac_address, "IPv4Address": entry.wired.address, "IPv6Address": ""}
        ipam_config: list[dict[str, str]] = []
        with contextlib.suppress(NotFound):
            subnet = self.ipam.subnet_of(record.id)
            ipam_config = [{"Subnet": str(subnet.subnet), "Gateway": str(subnet.gateway)}]
        return {
            "Name": record.name, "Id": record.id, "Created": record.created, "Scope": "local",
            "Driver": record.driver, "EnableIPv4": True, "EnableIPv6": False,
            "IPAM": {"Driver": "default", "Options": record.ipam_options or None, "Config": ipam_config},
            "Internal": record.internal, "Attachable": record.attachable, "Ingress": False,
            "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Containers": containers,
            "Options": record.options, "Labels": record.labels,
        }

    def containers_on(self, network_id: str) -> list[str]:
        """Containers with a connected endpoint (what dockerd's `dangling` and Containers look at)."""
        return [e.container_id for e in self.records.container_networks(network_id=network_id) if e.wired]

    # ================================================================ containers: create
    def prepare(self, container_id: str, config: dict[str, Any], host_config: dict[str, Any],
                networking_config: dict[str, Any] | None, lookup: Callable[[str], Any]) -> list[str]:
        """Validate a new container's network settings and record its endpoints; returns warnings.

        An unknown network is a bad parameter here, not a 404: the docker CLI answers a 404
        from create by pulling the image."""
        try:
            return self._prepare(container_id, config, host_config, networking_config, lookup)
        except NotFound as exc:
            raise InvalidParameter(str(exc)) from exc

    def _prepare(self, container_id: str, config: dict[str, Any], host_config: dict[str, Any],
                 networking_config: dict[str, Any] | None, lookup: Callable[[str], Any]) -> list[str]:
        mode = str(host_config.get("NetworkMode") or "default")
        endpoints = dict((networking_config or {}).get("EndpointsConfig") or {})
        if mode.startswith("container:"):
            other = lookup(mode.split(":", 1)[1])
            if other.id == container_id:
                raise InvalidParameter("cannot join own network")
            for key in ("PortBindings", "ExtraHosts", "Dns", "DnsSearch", "DnsOptions"):
                if host_config.get(key):
                    raise InvalidParameter(f"conflicting options: {key} and the network mode")
            if config.get("Hostname"):
                raise InvalidParameter("conflicting options: hostname and the network mode")
            return []
        self.port_specs(config, host_config)
        for extra in host_config.get("ExtraHosts") or []:
            parse_extra_host(str(extra), self.host_gateway() or IPv4Address("127.0.0.1"))
        primary = self._primary(mode)
        if primary is not None and primary.driver in ("host", "null") and len(endpoints) > 1:
            raise InvalidParameter(f"container cannot be connected to multiple networks with one of the networks "
                                   f"in private (none) or host mode ({primary.name})")
        entries: dict[str, ContainerNetwork] = {}
        if primary is not None and primary.driver == "bridge":
            entries[primary.id] = ContainerNetwork(container_id, primary.id, EndpointRequest())
        for ref, raw in endpoints.items():
            record = self._primary(ref) if ref in ("default", "bridge") else self.get(ref)
            if record is None or record.driver != "bridge":
                continue
            request = _endpoint_request(raw or {})
            self._check_address(record, request)
            if record.name == "bridge" and request.aliases:
                raise InvalidParameter("network-scoped aliases are only supported for user-defined networks")
            entries[record.id] = ContainerNetwork(container_id, record.id, request)
        for entry in entries.values():
            self.records.save_container_network(entry)
        return []

    def _primary(self, mode: str) -> NetworkRecord | None:
        if mode in ("default", "bridge"):
            return self._default_network()
        if mode == "none":
            return self.get("none")
        return self.get(mode)

    def _check_address(self, record: NetworkRecord, request: EndpointRequest) -> None:
        if not request.ipv4_address:
            return
        if record.name == "bridge":
            raise InvalidParameter("user specified IP address is supported on user defined networks only")
        try:
            address = IPv4Address(request.ipv4_address)
        except ValueError as exc:
            raise InvalidParameter(f"invalid IPv4 address {request.ipv4_address}") from exc
        subnet = self.ipam.subnet_of(record.id).subnet
        if address not in subnet:
            raise InvalidParameter(f"no configured subnet contains IP address {address}")

    @staticmethod
    def port_specs(config: dict[str, Any], host_config: dict[str, Any]) -> list[PortSpec]:
        """PortBindings, plus every EXPOSEd port on a random host port with PublishAllPorts (-P)."""
        specs = from_port_bindings(host_config.get("PortBindings") or {})
        if host_config.get("PublishAllPorts"):
            bound = {s.key() for s in specs}
            for key in (config.get("ExposedPorts") or {}):
                port, _, proto = str(key).partition("/")
                if not port.isdigit() or not 0 < int(port) < 65536:
                    raise InvalidParameter(f"invalid exposed port {key!r}")
                spec = PortSpec(int(port), "udp" if proto == "udp" else "tcp")
                if spec.key() not in bound:
                    specs.append(spec)
        return specs

    # ================================================================ containers: start / stop / rm
    def sandbox_path(self, container_id: str) -> Path:
        return self.netns_dir / container_id

    async def setup(self, container_id: str, name: str, config: dict[str, Any], host_config: dict[str, Any],
                    lookup: Callable[[str], Any]) -> Sandbox:
        """netns, endpoints and /etc files for a starting container; all or nothing."""
        mode = str(host_config.get("NetworkMode") or "default")
        if mode.startswith("container:"):
            other = lookup(mode.split(":", 1)[1])
            if other.state.status not in ("running", "paused"):
                raise Conflict(f"cannot join network namespace of a non running container: container {other.id} "
                               f"is {other.state.status}")
            path = self.sandbox_path(other.id)
            data = self.container_dir(other.id)
            files = {f"/etc/{n}": str(data / n) for n in ("hosts", "resolv.conf", "hostname")}
            return Sandbox(str(path) if path.exists() else f"/proc/{other.state.pid}/ns/net", files)
        primary = self._primary(mode)
        hostname = str(config.get("Hostname") or container_id[:12])
        if primary is not None and primary.driver == "host":
            return Sandbox(None, self._write_files(container_id, hostname, config, host_config, [], None, host=True))
        await self.teardown(container_id)  # whatever a run that ended without us left behind
        path = self.sandbox_path(container_id)
        await asyncio.to_thread(_fresh_netns, path)
        wired: list[ContainerNetwork] = []
        try:
            entries = self.records.container_networks(container_id=container_id)
            specs = self.port_specs(config, host_config)
            for index, entry in enumerate(entries):
                entry.wired = await self._wire(entry, name, hostname, path, specs if index == 0 else [],
                                               f"eth{index}", [str(d) for d in host_config.get("Dns") or []])
                wired.append(entry)
                self.records.save_container_network(entry)
            addresses = [IPv4Interface(e.wired.address).ip for e in wired if e.wired]
            dns = self.controller.dns_server(entries[0].network_id) if entries else None
            files = self._write_files(container_id, hostname, config, host_config, addresses, dns)
        except BaseException:
            for entry in wired:
                await self._unwire(entry)
            await asyncio.to_thread(netns.remove, path)
            raise
        for entry in wired:
            self.publish("network", "connect", entry.network_id,
                         {"container": container_id, "name": self._name_of(entry.network_id), "type": "bridge"})
        return Sandbox(str(path), files)

    def _name_of(self, network_id: str) -> str:
        with contextlib.suppress(NotFound):
            return self.get(network_id).name
        return ""

    async def _wire(self, entry: ContainerNetwork, name: str, hostname: str, path: Path, specs: list[PortSpec],
                    ifname: str, dns_servers: list[str] | None = None) -> WiredEndpoint:
        """Connect one endpoint; the first interface (eth0) carries the default route."""
        record = self.get(entry.network_id)
        names = [name, entry.container_id[:12], *entry.request.aliases]
        if hostname not in names and record.name != "bridge":
            names.append(hostname)
        endpoint = EndpointConfig(
            network_id=record.id, endpoint_id=secrets.token_hex(32), netns_path=str(path),
            host_ifname=f"veth{secrets.token_hex(4)[:7]}", dns_names=tuple(names), ports=tuple(specs),
            address=entry.request.ipv4_address or None,
            container_ifname=ifname, default_route=ifname == "eth0", dns_servers=tuple(dns_servers or ()),
        )
        attachment = await self.controller.connect(endpoint)
        ep = attachment.endpoint
        return WiredEndpoint(endpoint.endpoint_id, ep.host_ifname, ep.container_ifname, str(ep.address),
                             str(ep.gateway) if ep.gateway else "", ep.mac_address, ep.mtu,
                             [_binding_json(b) for b in attachment.ports], names, list(dns_servers or ()))

    def _endpoint_config(self, container_id: str, network_id: str, wired: WiredEndpoint) -> EndpointConfig:
        return EndpointConfig(network_id, wired.endpoint_id, str(self.sandbox_path(container_id)), wired.host_ifname,
                              tuple(wired.dns_names), container_ifname=wired.container_ifname,
                              default_route=bool(wired.gateway), dns_servers=tuple(wired.dns_servers))

    async def _unwire(self, entry: ContainerNetwork) -> None:
        """Disconnect one endpoint; works also for endpoints the controller does not know (after a restart)."""
        wired = entry.wired
        if wired is None:
            return
        try:
            await self.controller.disconnect(entry.network_id, wired.endpoint_id)
        except NotFound:
            with contextlib.suppress(NotFound):
                owned = [a for a, o in self.ipam.addresses(entry.network_id).items() if o == wired.endpoint_id]
                for address in owned:
                    self.ipam.release_address(entry.network_id, address)
            await asyncio.to_thread(bridge.disconnect, wired.host_ifname)
        entry.wired = None
        self.records.save_container_network(entry)

    async def teardown(self, container_id: str) -> None:
        """The container stopped: endpoints disconnected, addresses freed, its netns removed (idempotent)."""
        for entry in self.records.container_networks(container_id=container_id):
            if entry.wired is None:
                continue
            try:
                await self._unwire(entry)
            except Exception as exc:  # keep going: the rest must still be released
                log.error("disconnecting %s from %s: %s", container_id[:12], entry.network_id[:12], exc)
            self.publish("network", "disconnect", entry.network_id,
                         {"container": container_id, "name": self._name_of(entry.network_id), "type": "bridge"})
        path = self.sandbox_path(container_id)
        if path.exists():
            await asyncio.to_thread(netns.remove, path)

    def rename(self, container_id: str, old: str, new: str) -> None:
        """`docker rename`: the embedded DNS answers to the new name (and no longer to the old one)."""
        for entry in self.records.container_networks(container_id=container_id):
            if entry.wired is None:
                continue
            entry.wired.dns_names = [new if n == old else n for n in entry.wired.dns_names]
            address = IPv4Interface(entry.wired.address).ip
            self.controller.names.remove_address(entry.network_id, address)
            if self.controller.dns_server(entry.network_id) is not None:
                self.controller.names.add(entry.network_id, entry.wired.dns_names, address)
            self.records.save_container_network(entry)

    def forget(self, container_id: str) -> None:
        self.records.remove_container_network(container_id)

    # ================================================================ API: connect / disconnect
    async def connect_container(self, ref: str, container: Any, endpoint_config: dict[str, Any]) -> None:
        record = self.get(ref)
        mode = str(container.host_config.get("NetworkMode") or "default")
        if record.driver != "bridge" or mode in ("host", "none") or mode.startswith("container:"):
            raise Forbidden("container cannot be disconnected from host network or connected to host network"
                            if "host" in (record.driver, mode) else
                            f"container sharing network namespace with another container or host cannot be "
                            f"connected to any other network ({record.name})")
        existing = {e.network_id for e in self.records.container_networks(container_id=container.id)}
        if record.id in existing:
            raise Forbidden(f"endpoint with name {container.name} already exists in network {record.name}")
        request = _endpoint_request(endpoint_config)
        self._check_address(record, request)
        entry = ContainerNetwork(container.id, record.id, request)
        hostname = str(container.config.get("Hostname") or container.id[:12])
        if container.state.status in ("running", "paused"):
            taken = {e.wired.container_ifname for e in self.records.container_networks(container_id=container.id)
                     if e.wired}
            ifname = next(f"eth{i}" for i in range(len(taken) + 1) if f"eth{i}" not in taken)
            entry.wired = await self._wire(entry, container.name, hostname, self.sandbox_path(container.id), [],
                                           ifname, [str(d) for d in container.host_config.get("Dns") or []])
        self.records.save_container_network(entry)
        if entry.wired is not None:
            await asyncio.to_thread(self._add_hosts_line, container.id, entry.wired.address, hostname)
        self.publish("network", "connect", record.id, {"container": container.id, "name": record.name,
                                                       "type": "bridge"})

    def _add_hosts_line(self, container_id: str, address: str, hostname: str) -> None:
        with open(self.container_dir(container_id) / "hosts", "a") as hosts:
            hosts.write(f"{IPv4Interface(address).ip}\t{hostname}\n")

    async def disconnect_container(self, ref: str, container: Any, force: bool) -> None:
        record = self.get(ref)
        if record.driver == "host":
            raise Forbidden("container cannot be disconnected from host network or connected to host network")
        entries = [e for e in self.records.container_networks(container_id=container.id) if e.network_id == record.id]
        if not entries:
            if force:
                return
            raise Forbidden(f"container {container.id} is not connected to network {record.name}")
        await self._unwire(entries[0])
        self.records.remove_container_network(container.id, record.id)
        self.publish("network", "disconnect", record.id, {"container": container.id, "name": record.name,
                                                          "type": "bridge"})

    # ================================================================ inspect
    def settings(self, container_id: str, config: dict[str, Any], host_config: dict[str, Any]) -> dict[str, Any]:
        """inspect's NetworkSettings fields that depend on the network layer."""
        networks: dict[str, Any] = {}
        bindings: list[PortBinding] = []
        top: dict[str, Any] = {}
        entries = self.records.container_networks(container_id=container_id)
        for entry in entries:
            name = self._name_of(entry.network_id)
            if entry.wired is None:
                networks[name] = _empty_endpoint(entry)
                continue
            networks[name] = endpoint_settings(_bridge_endpoint(entry.wired), entry.network_id,
                                               entry.wired.endpoint_id, entry.request.aliases,
                                               entry.wired.dns_names if name != "bridge" else ())
            networks[name]["IPAMConfig"] = ({"IPv4Address": entry.request.ipv4_address}
                                            if entry.request.ipv4_address else None)
            bindings += [_binding(p) for p in entry.wired.ports]
            if name == "bridge":
                top = {k: networks[name][k] for k in ("EndpointID", "Gateway", "IPAddress", "IPPrefixLen",
                                                      "MacAddress")}
        mode = str(host_config.get("NetworkMode") or "default")
        if not entries and mode in ("host", "none"):
            with contextlib.suppress(NotFound):
                record = self.get(mode)
                networks[mode] = {**_empty_endpoint(ContainerNetwork(container_id, record.id, EndpointRequest()))}
        running = any(e.wired for e in entries)
        exposed = [PortSpec(int(k.partition("/")[0]), "udp" if k.endswith("/udp") else "tcp")
                   for k in (config.get("ExposedPorts") or {}) if k.partition("/")[0].isdigit()]
        path = self.sandbox_path(container_id)
        settings: dict[str, Any] = {
            "Networks": networks,
            "Ports": port_map(bindings, exposed) if running else {},
            "SandboxKey": str(path) if running else "",
            "SandboxID": container_id if running else "",
            "Bridge": "",
        }
        settings.update(top)
        return settings

    def summary_ports(self, container_id: str, config: dict[str, Any]) -> list[dict[str, Any]]:
        """docker ps's Ports: [{IP, PrivatePort, PublicPort, Type}] and exposed-only ports."""
        ports: list[dict[str, Any]] = []
        published = set()
        for entry in self.records.container_networks(container_id=container_id):
            for raw in (entry.wired.ports if entry.wired else []):
                b = _binding(raw)
                published.add(f"{b.container_port}/{b.proto}")
                ports.append({"IP": str(b.host_ip or "0.0.0.0"), "PrivatePort": b.container_port,
                              "PublicPort": b.host_port, "Type": b.proto})
        for key in (config.get("ExposedPorts") or {}):
            port, _, proto = str(key).partition("/")
            if key not in published and port.isdigit():
                ports.append({"PrivatePort": int(port), "Type": proto or "tcp"})
        return ports

    def summary_networks(self, container_id: str, host_config: dict[str, Any] | None = None) -> dict[str, Any]:
        """ps's NetworkSettings.Networks; `host` and `none` containers show that network, like dockerd."""
        networks = {self._name_of(e.network_id): {"NetworkID": e.network_id,
                                                  "IPAddress": str(IPv4Interface(e.wired.address).ip) if e.wired
                                                  else ""}
                    for e in self.records.container_networks(container_id=container_id)}
        mode = str((host_config or {}).get("NetworkMode") or "default")
        if not networks and mode in ("host", "none"):
            with contextlib.suppress(NotFound):
                networks[mode] = {"NetworkID": self.get(mode).id, "IPAddress": ""}
        return networks

    # ================================================================ /etc files
    def _write_files(self, container_id: str, hostname: str, config: dict[str, Any], host_config: dict[str, Any],
                     addresses: list[IPv4Address], embedded_dns: IPv4Address | None, host: bool = False
                     ) -> dict[str, str]:
        gateway = self.host_gateway()
        extra = [parse_extra_host(str(e), gateway) for e in host_config.get("ExtraHosts") or []]
        if host:
            try:
                base = Path("/etc/hosts").read_text()
            except OSError:
                base = hosts_file("localhost", [])
            hosts = base + "".join(f"{h.address}\t{h.name}\n" for h in extra)
            hostname = os.uname().nodename
        else:
            hosts = hosts_file(hostname, addresses, str(config.get("Domainname") or ""), extra)
        try:
            host_resolv = parse_resolv_conf(Path("/etc/resolv.conf").read_text())
        except OSError:
            host_resolv = parse_resolv_conf("")
        resolv = container_resolv_conf(host_resolv, embedded_dns,
                                       [str(d) for d in host_config.get("Dns") or []],
                                       [str(d) for d in host_config.get("DnsSearch") or []],
                                       [str(d) for d in host_config.get("DnsOptions") or []])
        written = ContainerFiles(hosts, resolv, hostname_file(hostname)).write(self.container_dir(container_id))
        files = {dest: str(path) for dest, path in written.items()}
        if host:
            files.pop("/etc/hostname")
        return files


class Forbidden(NetworkError):
    """An operation the network's kind does not allow (dockerd answers 403)."""


def _endpoint_request(raw: dict[str, Any]) -> EndpointRequest:
    ipam = raw.get("IPAMConfig") or {}
    return EndpointRequest(aliases=[str(a) for a in raw.get("Aliases") or []],
                           ipv4_address=str(ipam.get("IPv4Address") or ""),
                           mac_address=str(raw.get("MacAddress") or ""))


def _empty_endpoint(entry: ContainerNetwork) -> dict[str, Any]:
    return {"IPAMConfig": ({"IPv4Address": entry.request.ipv4_address} if entry.request.ipv4_address else None),
            "Links": None, "Aliases": entry.request.aliases or None, "MacAddress": "", "DriverOpts": None,
            "NetworkID": entry.network_id, "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0,
            "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "DNSNames": None}


def _bridge_endpoint(wired: WiredEndpoint) -> bridge.Endpoint:
    return bridge.Endpoint(wired.host_ifname, wired.container_ifname, IPv4Interface(wired.address),
                           IPv4Address(wired.gateway) if wired.gateway else None, wired.mac_address, wired.mtu)


def _binding_json(binding: PortBinding) -> dict[str, Any]:
    raw = asdict(binding)
    raw["container_ip"] = str(binding.container_ip)
    raw["host_ip"] = str(binding.host_ip) if binding.host_ip else None
    return raw


def _binding(raw: dict[str, Any]) -> PortBinding:
    return PortBinding(raw["proto"], IPv4Address(raw["container_ip"]), int(raw["container_port"]),
                       IPv4Address(raw["host_ip"]) if raw.get("host_ip") else None, int(raw["host_port"]))


def _fresh_netns(path: Path) -> None:
    """A new netns for a container at `path`, with lo up (what --network none leaves it with)."""
    if path.exists():
        netns.remove(path)
    netns.create(path)
    with netns.entered(path), IPRoute() as ipr:
        lo = ipr.link_lookup(ifname="lo")
        if lo:
            ipr.link("set", index=lo[0], state="up")
