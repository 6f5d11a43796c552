"""What the host namespace already uses: subnets a new network must not overlap.

dockerd checks candidate pools against the host's routes the same way
(libnetwork netutils.CheckRouteOverlaps), so a bridge never hijacks a LAN or VPN.
"""

from __future__ import annotations

import os
from ipaddress import IPv4Network

from pyroute2 import IPRoute

from engine.network.netns import entered

_AF_INET = 2


def occupied_networks(host_netns: str | os.PathLike[str] | None = None) -> list[IPv4Network]:
    """IPv4 networks of every address and non-default route in the host netns (loopback excluded)."""
    found: set[IPv4Network] = set()
    with entered(host_netns), IPRoute() as ipr:
        for addr in ipr.get_addr(family=_AF_INET):
            found.add(IPv4Network(f"{addr.get('IFA_ADDRESS')}/{addr['prefixlen']}", strict=False))
        for route in ipr.get_routes(family=_AF_INET, table=254):
            dst = route.get("RTA_DST")
            if dst and route["dst_len"] > 0:
                found.add(IPv4Network(f"{dst}/{route['dst_len']}", strict=False))
    return sorted(n for n in found if not n.is_loopback)
