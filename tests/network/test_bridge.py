"""Bridge + veth wiring between namespaces, all inside a test "host" netns."""

from __future__ import annotations

import os
import subprocess
import time
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

import pytest
from pyroute2 import IPRoute

from engine.network import bridge, netns
from engine.network.errors import Conflict, NotFound
from tests.fixtures.cleanup import register_process
from tests.network.nstools import EchoServer, retry, tcp_exchange

pytestmark = pytest.mark.needs_root

GATEWAY = IPv4Interface("10.231.0.1/24")


def _links(ns: str) -> dict[str, dict[str, object]]:
    with netns.entered(ns), IPRoute() as ipr:
        return {
            str(link.get("IFLA_IFNAME")): {"mtu": link.get("IFLA_MTU"), "master": link.get("IFLA_MASTER")}
            for link in ipr.get_links()
        }


def test_netns_create_and_remove_leaves_no_file(names):
    path = netns.create(names.netns("lone"))
    assert f" {path} " in Path("/proc/self/mountinfo").read_text()  # kept alive by a bind mount
    with netns.entered(path), IPRoute() as ipr:
        assert [str(link.get("IFLA_IFNAME")) for link in ipr.get_links()] == ["lo"]
    netns.remove(path)
    assert not path.exists()
    netns.remove(path)  # idempotent


def test_entered_returns_to_the_original_netns(host_ns):
    before = os.stat("/proc/thread-self/ns/net").st_ino
    with netns.entered(host_ns):
        assert os.stat("/proc/thread-self/ns/net").st_ino == os.stat(host_ns).st_ino
    assert os.stat("/proc/thread-self/ns/net").st_ino == before


def test_two_containers_on_a_bridge_reach_each_other_over_tcp(host_ns, make_ns, names):
    br = names.link("br")
    bridge.create_bridge(br, GATEWAY, mtu=1400, host_netns=host_ns)
    a, b = make_ns("a"), make_ns("b")
    ep_a = bridge.connect(br, a, names.link("va"), IPv4Interface("10.231.0.2/24"), GATEWAY.ip, 1400, host_netns=host_ns)
    bridge.connect(br, b, names.link("vb"), IPv4Interface("10.231.0.3/24"), GATEWAY.ip, 1400, host_netns=host_ns)
    assert ep_a.mac_address.count(":") == 5

    server = EchoServer(b, port=8080)
    try:
        assert retry(lambda: tcp_exchange(a, "10.231.0.3", 8080, b"ping")) == b"echo:ping"
        assert server.peers == ["10.231.0.2"]
        # The gateway (the bridge in the host netns) is reachable too: the default route works.
        host_server = EchoServer(host_ns, "10.231.0.1", 0)
        try:
            assert retry(lambda: tcp_exchange(a, "10.231.0.1", host_server.port)) == b"echo:hello"
        finally:
            host_server.close()
    finally:
        server.close()

    inside = _links(a)
    assert set(inside) == {"lo", "eth0"}
    assert inside["eth0"]["mtu"] == 1400
    host_links = _links(host_ns)
    assert host_links[names.link("va")]["master"] is not None
    with netns.entered(host_ns), IPRoute() as ipr:
        port = ipr.get_links(ipr.link_lookup(ifname=names.link("va"))[0])[0]
        assert port.get(("IFLA_LINKINFO", "IFLA_INFO_SLAVE_DATA", "IFLA_BRPORT_MODE")) == 1


def test_disconnect_removes_both_veth_ends(host_ns, make_ns, names):
    br = names.link("br")
    bridge.create_bridge(br, GATEWAY, host_netns=host_ns)
    a = make_ns("a")
    bridge.connect(br, a, names.link("va"), IPv4Interface("10.231.0.2/24"), GATEWAY.ip, host_netns=host_ns)
    bridge.disconnect(names.link("va"), host_netns=host_ns)
    assert names.link("va") not in _links(host_ns)
    assert set(_links(a)) == {"lo"}
    bridge.disconnect(names.link("va"), host_netns=host_ns)  # idempotent


def test_connect_refuses_a_taken_name_and_a_missing_bridge(host_ns, make_ns, names):
    a = make_ns("a")
    with pytest.raises(NotFound):
        bridge.connect(names.link("nobr"), a, names.link("va"), IPv4Interface("10.231.0.2/24"), None,
                       host_netns=host_ns)
    br = names.link("br")
    bridge.create_bridge(br, GATEWAY, host_netns=host_ns)
    bridge.connect(br, a, names.link("va"), IPv4Interface("10.231.0.2/24"), None, host_netns=host_ns)
    with pytest.raises(Conflict):
        bridge.connect(br, a, names.link("va"), IPv4Interface("10.231.0.3/24"), None, host_netns=host_ns)


def test_create_bridge_is_idempotent_and_delete_removes_it(host_ns, names):
    br = names.link("br")
    bridge.create_bridge(br, GATEWAY, mtu=1500, host_netns=host_ns)
    bridge.create_bridge(br, GATEWAY, mtu=1450, host_netns=host_ns)
    assert _links(host_ns)[br]["mtu"] == 1450
    with netns.entered(host_ns), IPRoute() as ipr:
        addrs = [a.get("IFA_ADDRESS") for a in ipr.get_addr(index=ipr.link_lookup(ifname=br)[0], family=2)]
    assert addrs == ["10.231.0.1"]
    bridge.delete_bridge(br, host_netns=host_ns)
    assert br not in _links(host_ns)


def test_enable_routing_changes_only_the_given_netns(host_ns, names):
    br = names.link("br")
    bridge.create_bridge(br, GATEWAY, host_netns=host_ns)
    real_forward = bridge.read_sysctl("net/ipv4/ip_forward")
    # A new netns copies ip_forward from the host's (net.core.devconf_inherit_init_net=0): start from 0.
    with netns.entered(host_ns):
        Path("/proc/sys/net/ipv4/ip_forward").write_text("0")
    assert bridge.read_sysctl("net/ipv4/ip_forward", host_ns) == "0"
    bridge.enable_routing(br, route_localnet=True, host_netns=host_ns)
    assert bridge.read_sysctl("net/ipv4/ip_forward", host_ns) == "1"
    assert bridge.read_sysctl(f"net/ipv4/conf/{br}/route_localnet", host_ns) == "1"
    assert bridge.read_sysctl("net/ipv4/ip_forward") == real_forward
    # A bridge that is not in the given netns is refused before anything is written.
    with pytest.raises(NotFound):
        bridge.enable_routing(br, route_localnet=True)


def test_container_default_route_points_at_the_gateway(host_ns, make_ns, names):
    br = names.link("br")
    bridge.create_bridge(br, GATEWAY, host_netns=host_ns)
    a = make_ns("a")
    bridge.connect(br, a, names.link("va"), IPv4Interface("10.231.0.2/24"), IPv4Address("10.231.0.1"),
                   host_netns=host_ns)
    with netns.entered(a), IPRoute() as ipr:
        routes = [(r.get("RTA_DST"), r.get("RTA_GATEWAY")) for r in ipr.get_routes(family=2, table=254)]
    assert (None, "10.231.0.1") in routes



def test_entered_returns_home_even_when_the_block_fails(host_ns):
    before = os.stat("/proc/thread-self/ns/net").st_ino
    with pytest.raises(RuntimeError), netns.entered(host_ns):
        raise RuntimeError("boom")
    assert os.stat("/proc/thread-self/ns/net").st_ino == before
    with pytest.raises(NotFound), netns.entered("/run/netns/berthtest-does-not-exist"):
        pass
    assert os.stat("/proc/thread-self/ns/net").st_ino == before


def test_connect_accepts_a_process_netns_path(host_ns, names):
    """The daemon may hand over /proc/<pid>/ns/net of a running container instead of a netns file."""
    child = subprocess.Popen(["unshare", "--net", "sleep", "60"])
    register_process(child.pid)
    try:
        ours = os.stat("/proc/self/ns/net").st_ino
        path = str(netns.pid_path(child.pid))
        # unshare execs sleep once the new netns exists: wait (bounded) for the switch.
        deadline = time.monotonic() + 10
        while os.stat(path).st_ino == ours and time.monotonic() < deadline:
            time.sleep(0.01)
        assert os.stat(path).st_ino != ours
        br = names.link("br")
        bridge.create_bridge(br, GATEWAY, host_netns=host_ns)
        bridge.connect(br, path, names.link("vp"), IPv4Interface("10.231.0.9/24"), GATEWAY.ip, host_netns=host_ns)
        assert set(_links(path)) == {"lo", "eth0"}
        server = EchoServer(host_ns, "10.231.0.1", 0)
        try:
            assert retry(lambda: tcp_exchange(path, "10.231.0.1", server.port)) == b"echo:hello"
        finally:
            server.close()
    finally:
        child.kill()
        child.wait()
