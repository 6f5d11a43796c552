"""IPv4 address management: one subnet per network, one address per endpoint.

Subnets come from dockerd's default address pools (172.17.0.0/16 ... 172.31.0.0/16,
then 192.168.0.0/16 cut in /20s: libnetwork ipamutils.localScopeDefaultNetworks)
and never overlap Docker's own 172.17.0.0/16 (a Docker engine may run beside
Berth), another Berth network, or anything the caller says is in use (the host
namespace's routes and addresses: engine/network/host_routes.py).

Addresses: the gateway is taken first when the subnet is allocated; endpoints
then get the next free address after the one handed out last, wrapping around,
so a released address is not reused immediately (libnetwork does the same).
The network and broadcast addresses are never handed out.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from engine.network.errors import Conflict, InvalidParameter, NotFound, PoolExhausted
from engine.network.ipam_store import IpamStore, SubnetRecord

log = logging.getLogger(__name__)

GATEWAY_OWNER = "gateway"
DOCKER_DEFAULT_BRIDGE = IPv4Network("172.17.0.0/16")


@dataclass(frozen=True)
class AddressPool:
    base: IPv4Network
    size: int  # prefix length of the subnets cut from base


DEFAULT_POOLS: tuple[AddressPool, ...] = (
    *(AddressPool(IPv4Network(f"172.{second}.0.0/16"), 16) for second in range(17, 32)),
    AddressPool(IPv4Network("192.168.0.0/16"), 20),
)


class Ipam:
    """Allocation decisions over an IpamStore; safe to call from several threads."""

    def __init__(
        self,
        store: IpamStore,
        pools: Sequence[AddressPool] = DEFAULT_POOLS,
        reserved: Iterable[IPv4Network] = (DOCKER_DEFAULT_BRIDGE,),
    ) -> None:
        self.store = store
        self.pools = tuple(pools)
        self.reserved = tuple(reserved)
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- subnets

    def allocate_subnet(
        self,
        network_id: str,
        subnet: IPv4Network | str | None = None,
        gateway: IPv4Address | str | None = None,
        avoid: Iterable[IPv4Network] = (),
    ) -> SubnetRecord:
        """Give `network_id` a subnet (the one asked for, or the first free pool subnet) and take its gateway."""
        with self._lock:
            existing = self.store.subnets()
            if any(r.network_id == network_id for r in existing):
                raise Conflict(f"network {network_id} already has a subnet")
            if subnet is not None:
                chosen = _network(subnet)
                clash = next((r for r in existing if r.subnet.overlaps(chosen)), None)
                if clash is not None:
                    raise Conflict(f"Pool overlaps with other one on this address space ({clash.subnet})")
            else:
                taken = [*self.reserved, *(r.subnet for r in existing), *avoid]
                chosen = self._first_free(taken)
            gw = _address(gateway) if gateway is not None else next(chosen.hosts())
            if gw not in chosen or gw in (chosen.network_address, chosen.broadcast_address):
                raise InvalidParameter(f"gateway {gw} is not a usable address of {chosen}")
            record = SubnetRecord(network_id, chosen, gw)
            self.store.add_subnet(record)
            self.store.add_address(network_id, gw, GATEWAY_OWNER)
            log.info("ipam: network %s got subnet %s gateway %s", network_id, chosen, gw)
            return SubnetRecord(network_id, chosen, gw, gw)

    def _first_free(self, taken: Sequence[IPv4Network]) -> IPv4Network:
        for pool in self.pools:
            for candidate in pool.base.subnets(new_prefix=pool.size):
                if not any(candidate.overlaps(t) for t in taken):
                    return candidate
        raise PoolExhausted("could not find an available, non-overlapping IPv4 address pool among the defaults")

    def release_subnet(self, network_id: str) -> None:
        with self._lock:
            self.store.remove_subnet(network_id)
            log.info("ipam: network %s released its subnet", network_id)

    def subnet_of(self, network_id: str) -> SubnetRecord:
        for record in self.store.subnets():
            if record.network_id == network_id:
                return record
        raise NotFound(f"network {network_id} has no subnet")

    # ---------------------------------------------------------------- addresses

    def allocate_address(self, network_id: str, owner: str, address: IPv4Address | str | None = None) -> IPv4Address:
        """An address for `owner` (an endpoint id): the one asked for, or the next free one."""
        with self._lock:
            record = self.subnet_of(network_id)
            taken = self.store.addresses(network_id)
            if address is not None:
                wanted = _address(address)
                if wanted not in record.subnet or wanted in (record.subnet.network_address,
                                                             record.subnet.broadcast_address):
                    raise InvalidParameter(f"address {wanted} is not a usable address of {record.subnet}")
                if wanted in taken:
                    raise Conflict(f"Address already in use: {wanted}")
                chosen = wanted
            else:
                chosen = _next_free(record, taken)
            self.store.add_address(network_id, chosen, owner)
            log.info("ipam: %s got %s in network %s", owner, chosen, network_id)
            return chosen

    def release_address(self, network_id: str, address: IPv4Address | str) -> None:
        with self._lock:
            self.store.remove_address(network_id, _address(address))

    def addresses(self, network_id: str) -> dict[IPv4Address, str]:
        return self.store.addresses(network_id)


def _next_free(record: SubnetRecord, taken: dict[IPv4Address, str]) -> IPv4Address:
    first = int(record.subnet.network_address) + 1
    end = int(record.subnet.broadcast_address)  # exclusive
    count = end - first
    if count <= 0:
        raise PoolExhausted(f"subnet {record.subnet} has no host addresses")
    start = int(record.last) + 1 if record.last is not None else first
    for step in range(count):
        candidate = IPv4Address(first + (start - first + step) % count)
        if candidate not in taken:
            return candidate
    raise PoolExhausted(f"no available IPv4 addresses on network {record.network_id} ({record.subnet})")


def _network(value: IPv4Network | str) -> IPv4Network:
    try:
        return value if isinstance(value, IPv4Network) else IPv4Network(value)
    except ValueError as exc:
        raise InvalidParameter(f"invalid subnet {value}: {exc}") from exc


def _address(value: IPv4Address | str) -> IPv4Address:
    try:
        return value if isinstance(value, IPv4Address) else IPv4Address(value)
    except ValueError as exc:
        raise InvalidParameter(f"invalid address {value}: {exc}") from exc
