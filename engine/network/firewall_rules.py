"""The iptables rules of a network and of a published port, as data (pure functions).

Shapes follow dockerd's bridge driver (libnetwork drivers/bridge/setup_ip_tables.go)
with Berth's chain names, and one deliberate difference: DNAT rules carry no
`! -i <bridge>`, so a container reaching a published port through the host's
address is served by the kernel (and masqueraded, below) instead of a proxy.

  nat    PREROUTING  -> <P>-DNAT        (dst-type LOCAL)
  nat    OUTPUT      -> <P>-DNAT        (dst-type LOCAL; `! -d 127.0.0.0/8` when the userland proxy serves loopback)
  nat    POSTROUTING -> <P>-POSTROUTING
  filter FORWARD     -> <P>-FORWARD -> <P>-ISOLATION-1 -> <P>-ISOLATION-2

Isolation is dockerd's two-stage scheme (DOCKER-ISOLATION-STAGE-1/2): a packet
leaving one Berth bridge for another is dropped, so networks cannot reach each
other's containers directly; a published port (a DNATed connection) is accepted
before the isolation jump and stays reachable from everywhere, other networks included.

Every rule carries a comment (`berth:net:<id>` or `berth:ep:<id>`), so all rules
of one network or one endpoint can be listed and removed without tracking them.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Literal

Proto = Literal["tcp", "udp"]
LOOPBACK = "127.0.0.0/8"


@dataclass(frozen=True)
class ChainNames:
    prefix: str = "BERTH"

    @property
    def dnat(self) -> str:
        return f"{self.prefix}-DNAT"

    @property
    def postrouting(self) -> str:
        return f"{self.prefix}-POSTROUTING"

    @property
    def forward(self) -> str:
        return f"{self.prefix}-FORWARD"

    @property
    def isolation1(self) -> str:
        return f"{self.prefix}-ISOLATION-1"

    @property
    def isolation2(self) -> str:
        return f"{self.prefix}-ISOLATION-2"


@dataclass(frozen=True)
class TableRule:
    table: str
    chain: str
    args: tuple[str, ...]
    # Port accepts go before the networks' final DROPs, so they are inserted at the top.
    first: bool = False


@dataclass(frozen=True)
class NetworkSpec:
    network_id: str
    bridge: str
    subnet: IPv4Network
    internal: bool = False
    masquerade: bool = True  # com.docker.network.bridge.enable_ip_masquerade
    # When the kernel (not the userland proxy) serves 127.0.0.1: route_localnet is on
    # and packets DNATed from loopback must leave the bridge with a real source.
    loopback_dnat: bool = False


@dataclass(frozen=True)
class PortRuleSpec:
    endpoint_id: str
    bridge: str
    container_ip: IPv4Address
    container_port: int
    proto: Proto
    host_port: int
    host_ip: IPv4Address | None = None  # None: every local address


def network_tag(network_id: str) -> str:
    return f"berth:net:{network_id}"


def endpoint_tag(endpoint_id: str) -> str:
    return f"berth:ep:{endpoint_id}"


def hooks(names: ChainNames, userland_proxy: bool) -> list[tuple[str, str, list[str]]]:
    """(table, built-in chain, jump rule) for each hook."""
    output_match = ["!", "-d", LOOPBACK] if userland_proxy else []
    return [
        ("nat", "PREROUTING", ["-m", "addrtype", "--dst-type", "LOCAL", "-j", names.dnat]),
        ("nat", "OUTPUT", [*output_match, "-m", "addrtype", "--dst-type", "LOCAL", "-j", names.dnat]),
        ("nat", "POSTROUTING", ["-j", names.postrouting]),
        ("filter", "FORWARD", ["-j", names.forward]),
    ]


def base_rules(names: ChainNames) -> list[TableRule]:
    """Rules that are not a network's: the jump into isolation, first in <P>-FORWARD.

    Isolation judges new connections only: the replies of an accepted one (a
    published port reached from another network, masqueraded) must pass."""
    return [
        TableRule("filter", names.forward, ("-j", names.isolation1)),
        TableRule("filter", names.isolation1, ("-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "RETURN")),
    ]


def network_rules(names: ChainNames, net: NetworkSpec) -> list[TableRule]:
    tag = ["-m", "comment", "--comment", network_tag(net.network_id)]
    br, subnet = net.bridge, str(net.subnet)
    rules: list[TableRule] = []

    def add(table: str, chain: str, *args: str) -> None:
        rules.append(TableRule(table, chain, (*args, *tag)))

    add("filter", names.isolation1, "-i", br, "!", "-o", br, "-j", names.isolation2)
    add("filter", names.isolation2, "-o", br, "-j", "DROP")
    # Containers of one network talk to each other (br_netfilter sends bridged frames through FORWARD).
    add("filter", names.forward, "-i", br, "-o", br, "-j", "ACCEPT")
    if net.internal:
        # dockerd --internal: nothing is forwarded into or out of the network.
        add("filter", names.forward, "-i", br, "!", "-o", br, "-j", "DROP")
        add("filter", names.forward, "-o", br, "!", "-i", br, "-j", "DROP")
        return rules
    add("filter", names.forward, "-o", br, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")
    add("filter", names.forward, "-i", br, "!", "-o", br, "-j", "ACCEPT")
    # Unpublished ports are not reachable from outside, whatever the host's FORWARD policy.
    add("filter", names.forward, "-o", br, "!", "-i", br, "-j", "DROP")
    if net.masquerade:
        add("nat", names.postrouting, "-s", subnet, "!", "-o", br, "-j", "MASQUERADE")
    # Hairpin: a container reaching a published port via a host address must see the
    # reply come from that address, so the server has to answer through the host.
    add("nat", names.postrouting, "-s", subnet, "-o", br, "-m", "conntrack", "--ctstate", "DNAT", "-j", "MASQUERADE")
    if net.loopback_dnat:
        add("nat", names.postrouting, "-s", LOOPBACK, "-o", br, "-j", "MASQUERADE")
    return rules


def port_rules(names: ChainNames, port: PortRuleSpec) -> list[TableRule]:
    tag = ("-m", "comment", "--comment", endpoint_tag(port.endpoint_id))
    dst = ("-d", str(port.host_ip)) if port.host_ip is not None else ()
    target = f"{port.container_ip}:{port.container_port}"
    return [
        TableRule("nat", names.dnat,
                  ("-p", port.proto, *dst, "--dport", str(port.host_port), *tag,
                   "-j", "DNAT", "--to-destination", target)),
        TableRule("filter", names.forward,
                  ("-d", str(port.container_ip), "-o", port.bridge, "-p", port.proto,
                   "--dport", str(port.container_port), "-m", "conntrack", "--ctstate", "DNAT",
                   *tag, "-j", "ACCEPT"),
                  first=True),
    ]
