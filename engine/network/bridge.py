"""Linux bridges and the veth pairs that plug container namespaces into them.

Everything happens in the `host_netns` given (None: the daemon's own), via
netlink (pyroute2); the container end of a veth is created directly inside the
container's netns under its final name (eth0), so no half-configured interface
ever shows up in the host namespace with a temporary name.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from engine.network.errors import Conflict, NetworkError, NotFound
from engine.network.netns import entered

log = logging.getLogger(__name__)

DEFAULT_MTU = 1500
_EEXIST = 17
_ENODEV = 19
_ESRCH = 3


@dataclass(frozen=True)
class Endpoint:
    """One container's attachment: the host end of the veth on the bridge and the address inside."""

    host_ifname: str
    container_ifname: str
    address: IPv4Interface
    gateway: IPv4Address | None
    mac_address: str
    mtu: int


def _index(ipr: IPRoute, ifname: str) -> int | None:
    found = ipr.link_lookup(ifname=ifname)
    return int(found[0]) if found else None


def create_bridge(
    name: str, gateway: IPv4Interface, mtu: int = DEFAULT_MTU, host_netns: str | os.PathLike[str] | None = None
) -> None:
    """Make (or adopt after a restart) bridge `name` with `gateway` as its address, up, with `mtu`."""
    with entered(host_netns), IPRoute() as ipr:
        index = _index(ipr, name)
        if index is None:
            ipr.link("add", ifname=name, kind="bridge", mtu=mtu)
            index = _index(ipr, name)
            if index is None:
                raise NetworkError(f"bridge {name} vanished right after it was created")
        else:
            kind = ipr.get_links(index)[0].get(("IFLA_LINKINFO", "IFLA_INFO_KIND"))
            if kind != "bridge":
                raise Conflict(f"interface {name} exists and is a {kind}, not a bridge")
            ipr.link("set", index=index, mtu=mtu)
        have = {(a.get("IFA_ADDRESS"), a["prefixlen"]) for a in ipr.get_addr(index=index, family=2)}
        if (str(gateway.ip), gateway.network.prefixlen) not in have:
            ipr.addr("add", index=index, address=str(gateway.ip), prefixlen=gateway.network.prefixlen)
        ipr.link("set", index=index, state="up")
    log.info("bridge %s up with %s mtu %d", name, gateway, mtu)


def delete_bridge(name: str, host_netns: str | os.PathLike[str] | None = None) -> None:
    """Remove bridge `name` (idempotent); its remaining ports are detached by the kernel."""
    with entered(host_netns), IPRoute() as ipr:
        index = _index(ipr, name)
        if index is not None:
            ipr.link("del", index=index)
            log.info("bridge %s deleted", name)


def enable_routing(
    bridge: str, route_localnet: bool, host_netns: str | os.PathLike[str] | None = None, ip_forward: bool = True
) -> None:
    """ip_forward=1 (containers reach beyond the bridge; not with dockerd's --ip-forward=false) and,
    if asked, route_localnet on the bridge.

    route_localnet lets a packet DNATed from 127.0.0.1 leave through the bridge
    (dockerd sets it when its userland proxy is off).  /proc/sys/net shows the
    netns of the thread that opens it; the bridge's own conf directory exists only
    in the right netns, which is checked first so a write can never land elsewhere."""
    with entered(host_netns):
        conf = Path("/proc/sys/net/ipv4/conf") / bridge
        if not conf.is_dir():
            raise NotFound(f"bridge {bridge} is not in network namespace {host_netns or 'of the daemon'}")
        if route_localnet:
            (conf / "route_localnet").write_text("1")
        if ip_forward:
            Path("/proc/sys/net/ipv4/ip_forward").write_text("1")


def read_sysctl(path: str, host_netns: str | os.PathLike[str] | None = None) -> str:
    """A /proc/sys value as seen from `host_netns` (e.g. 'net/ipv4/ip_forward')."""
    with entered(host_netns):
        return (Path("/proc/sys") / path).read_text().strip()


def connect(
    bridge: str,
    netns_path: str | os.PathLike[str],
    host_ifname: str,
    address: IPv4Interface,
    gateway: IPv4Address | None,
    mtu: int = DEFAULT_MTU,
    container_ifname: str = "eth0",
    host_netns: str | os.PathLike[str] | None = None,
) -> Endpoint:
    """Plug the container netns at `netns_path` into `bridge` with a veth pair.

    Inside: `container_ifname` with `address`, the default route via `gateway`
    (None for a network without one, e.g. a second network), `mtu`, and lo up."""
    try:
        container_fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        raise NotFound(f"container network namespace {netns_path} does not exist") from exc
    try:
        with entered(host_netns), IPRoute() as ipr:
            bridge_index = _index(ipr, bridge)
            if bridge_index is None:
                raise NotFound(f"bridge {bridge} does not exist")
            if _index(ipr, host_ifname) is not None:
                raise Conflict(f"interface {host_ifname} already exists")
            try:
                ipr.link(
                    "add", ifname=host_ifname, kind="veth", mtu=mtu,
                    peer={"ifname": container_ifname, "net_ns_fd": container_fd, "mtu": mtu},
                )
            except NetlinkError as exc:
                if exc.code == _EEXIST:
                    raise Conflict(f"{container_ifname} already exists in {netns_path}") from exc
                raise
            host_index = _index(ipr, host_ifname)
            if host_index is None:
                raise NetworkError(f"veth {host_ifname} vanished right after it was created")
            ipr.link("set", index=host_index, master=bridge_index)
            # Hairpin: a container reaching its own published port gets the reply back
            # through the same bridge port (dockerd sets it when its userland proxy is off).
            ipr.brport("set", index=host_index, mode=1)  # IFLA_BRPORT_MODE = hairpin
            ipr.link("set", index=host_index, state="up")
        try:
            with entered(netns_path), IPRoute() as inner:
                mac = _configure_inside(inner, container_ifname, address, gateway)
        except BaseException:
            disconnect(host_ifname, host_netns)
            raise
    finally:
        os.close(container_fd)
    log.info("connected %s (%s) to bridge %s via %s", netns_path, address, bridge, host_ifname)
    return Endpoint(host_ifname, container_ifname, address, gateway, mac, mtu)


def _configure_inside(ipr: IPRoute, ifname: str, address: IPv4Interface, gateway: IPv4Address | None) -> str:
    lo = _index(ipr, "lo")
    if lo is not None:
        ipr.link("set", index=lo, state="up")
    index = _index(ipr, ifname)
    if index is None:
        raise NetworkError(f"{ifname} did not appear in the container namespace")
    ipr.addr("add", index=index, address=str(address.ip), prefixlen=address.network.prefixlen)
    ipr.link("set", index=index, state="up")
    if gateway is not None:
        ipr.route("add", dst="0.0.0.0/0", gateway=str(gateway))
    link: Any = ipr.get_links(index)[0]
    return str(link.get("IFLA_ADDRESS"))


def disconnect(host_ifname: str, host_netns: str | os.PathLike[str] | None = None) -> None:
    """Delete the veth pair (both ends go together); idempotent."""
    with entered(host_netns), IPRoute() as ipr:
        index = _index(ipr, host_ifname)
        if index is None:
            return
        try:
            ipr.link("del", index=index)
        except NetlinkError as exc:
            # The container's netns died meanwhile and took the pair with it.
            if exc.code not in (_ENODEV, _ESRCH):
                raise
    log.info("disconnected %s", host_ifname)
