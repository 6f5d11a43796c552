"""Published ports, hairpin, --internal and the firewall's lifecycle, in a test "host" netns.

Topology (all namespaces made by the test):
  wan netns 203.0.113.2  ──veth──  host netns 203.0.113.1  ── bridge 10.88.0.1/24 ── containers a (.2), b (.3)
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

import pytest
from pyroute2 import IPRoute

from engine.network import bridge, netns
from engine.network.errors import FirewallError, PortConflict
from engine.network.firewall import Firewall
from engine.network.firewall_rules import NetworkSpec
from engine.network.iptables import Iptables
from engine.network.port_spec import parse_port_spec
from engine.network.portmap import PortMapper
from engine.network.userland_proxy import UdpProxy
from tests.network.conftest import veth_between
from tests.network.nstools import EchoServer, retry, tcp_exchange, udp_exchange

pytestmark = pytest.mark.needs_root

HOST_IP = "203.0.113.1"
WAN_IP = "203.0.113.2"
SUBNET = IPv4Network("10.88.0.0/24")
GATEWAY = IPv4Interface("10.88.0.1/24")
A_IP, B_IP = IPv4Address("10.88.0.2"), IPv4Address("10.88.0.3")


@dataclass
class Lab:
    host: str
    wan: str
    a: str
    b: str
    bridge: str
    firewall: Firewall
    mapper: PortMapper


def _build(host_ns, make_ns, names, loop_thread, userland_proxy: bool) -> Lab:
    wan = make_ns("wan")
    veth_between(host_ns, wan, names.link("up"), f"{HOST_IP}/24", f"{WAN_IP}/24")
    br = names.link("br")
    bridge.create_bridge(br, GATEWAY, host_netns=host_ns)
    bridge.enable_routing(br, route_localnet=not userland_proxy, host_netns=host_ns)
    firewall = Firewall(Iptables(host_ns), userland_proxy=userland_proxy)
    firewall.install()
    firewall.add_network(NetworkSpec("net1", br, SUBNET, loopback_dnat=not userland_proxy))
    a, b = make_ns("a"), make_ns("b")
    bridge.connect(br, a, names.link("va"), IPv4Interface(f"{A_IP}/24"), GATEWAY.ip, host_netns=host_ns)
    bridge.connect(br, b, names.link("vb"), IPv4Interface(f"{B_IP}/24"), GATEWAY.ip, host_netns=host_ns)
    return Lab(host_ns, wan, a, b, br, firewall, PortMapper(firewall, host_ns))


@pytest.fixture(params=["userland-proxy", "route-localnet"])
def lab(request, host_ns, make_ns, names, loop_thread):
    built = _build(host_ns, make_ns, names, loop_thread, userland_proxy=request.param == "userland-proxy")
    yield built
    loop_thread.run(built.mapper.close())
    built.firewall.uninstall()


@pytest.fixture
def proxy_lab(host_ns, make_ns, names, loop_thread):
    built = _build(host_ns, make_ns, names, loop_thread, userland_proxy=True)
    yield built
    loop_thread.run(built.mapper.close())
    built.firewall.uninstall()


def test_published_tcp_port_reaches_container_from_host_address_loopback_and_outside(lab, loop_thread):
    server = EchoServer(lab.b, port=80)
    try:
        [binding] = loop_thread.run(lab.mapper.publish("ep-b", lab.bridge, B_IP, [parse_port_spec("8080:80")]))
        assert binding.api() == ("80/tcp", {"HostIp": "0.0.0.0", "HostPort": "8080"})
        assert retry(lambda: tcp_exchange(lab.host, HOST_IP, 8080, b"via-host-ip")) == b"echo:via-host-ip"
        assert retry(lambda: tcp_exchange(lab.host, "127.0.0.1", 8080, b"via-lo")) == b"echo:via-lo"
        assert retry(lambda: tcp_exchange(lab.wan, HOST_IP, 8080, b"from-wan")) == b"echo:from-wan"
        # From outside the container sees the real client: no masquerading on the way in.
        assert WAN_IP in server.peers
    finally:
        server.close()


def test_published_udp_port_echoes(lab, loop_thread):
    server = EchoServer(lab.b, port=5353, udp=True)
    try:
        loop_thread.run(lab.mapper.publish("ep-b", lab.bridge, B_IP, [parse_port_spec("5300:5353/udp")]))
        assert retry(lambda: udp_exchange(lab.host, HOST_IP, 5300, b"u1")) == b"echo:u1"
        assert retry(lambda: udp_exchange(lab.host, "127.0.0.1", 5300, b"u2")) == b"echo:u2"
        assert retry(lambda: udp_exchange(lab.wan, HOST_IP, 5300, b"u3")) == b"echo:u3"
    finally:
        server.close()


def test_random_host_port_is_reported_and_served(proxy_lab, loop_thread):
    lab = proxy_lab
    server = EchoServer(lab.b, port=80)
    try:
        [binding] = loop_thread.run(lab.mapper.publish("ep-b", lab.bridge, B_IP, [parse_port_spec("80")]))
        low, high = map(int, bridge.read_sysctl("net/ipv4/ip_local_port_range", lab.host).split())
        assert low <= binding.host_port <= high
        assert lab.mapper.bindings("ep-b") == [binding]
        assert retry(lambda: tcp_exchange(lab.host, HOST_IP, binding.host_port)) == b"echo:hello"
        assert retry(lambda: tcp_exchange(lab.host, "127.0.0.1", binding.host_port)) == b"echo:hello"
    finally:
        server.close()


def test_conflicting_host_ports_are_refused_and_leave_nothing_behind(proxy_lab, loop_thread):
    lab = proxy_lab
    loop_thread.run(lab.mapper.publish("ep-a", lab.bridge, A_IP, [parse_port_spec("8080:80")]))
    with pytest.raises(PortConflict, match="port is already allocated"):
        loop_thread.run(lab.mapper.publish("ep-b", lab.bridge, B_IP,
                                           [parse_port_spec("9000:90"), parse_port_spec("8080:80")]))
    assert lab.mapper.bindings("ep-b") == []
    assert not any("ep-b" in " ".join(rule) for rules in lab.firewall.listing().values() for rule in rules)
    # 9000 was released with the failed publish; a host service holding a port is a conflict too.
    loop_thread.run(lab.mapper.publish("ep-b", lab.bridge, B_IP, [parse_port_spec("9000:90")]))
    holder = netns.socket_in(lab.host, socket.AF_INET, socket.SOCK_STREAM)
    try:
        holder.bind(("0.0.0.0", 0))
        holder.listen(1)
        taken = holder.getsockname()[1]
        with pytest.raises(PortConflict):
            loop_thread.run(lab.mapper.publish("ep-c", lab.bridge, B_IP, [parse_port_spec(f"{taken}:91")]))
    finally:
        holder.close()


def test_unpublish_removes_rules_and_frees_the_port(proxy_lab, loop_thread):
    lab = proxy_lab
    loop_thread.run(lab.mapper.publish("ep-b", lab.bridge, B_IP, [parse_port_spec("8080:80")]))
    assert any("berth:ep:ep-b" in rule for rules in lab.firewall.listing().values() for rule in rules)
    loop_thread.run(lab.mapper.unpublish("ep-b"))
    assert not any("berth:ep:ep-b" in rule for rules in lab.firewall.listing().values() for rule in rules)
    loop_thread.run(lab.mapper.publish("ep-a", lab.bridge, A_IP, [parse_port_spec("8080:80")]))


def test_hairpin_container_reaches_published_ports_via_the_host_address(lab, loop_thread):
    server = EchoServer(lab.b, port=80)
    try:
        loop_thread.run(lab.mapper.publish("ep-b", lab.bridge, B_IP, [parse_port_spec("8080:80")]))
        # Another container: the reply must come back through the host (MASQUERADE).
        assert retry(lambda: tcp_exchange(lab.a, HOST_IP, 8080, b"hairpin")) == b"echo:hairpin"
        assert server.peers[-1] == str(GATEWAY.ip)
        # The container itself: out and back in through the same bridge port (hairpin mode).
        assert retry(lambda: tcp_exchange(lab.b, HOST_IP, 8080, b"self")) == b"echo:self"
    finally:
        server.close()


def test_outbound_is_masqueraded_and_internal_network_blocks_it(host_ns, make_ns, names, loop_thread, proxy_lab):
    lab = proxy_lab
    outside = EchoServer(lab.wan, port=7000)
    try:
        assert retry(lambda: tcp_exchange(lab.a, WAN_IP, 7000)) == b"echo:hello"
        assert outside.peers == [HOST_IP]
        internal_br = names.link("ib")
        bridge.create_bridge(internal_br, IPv4Interface("10.89.0.1/24"), host_netns=host_ns)
        lab.firewall.add_network(NetworkSpec("inet", internal_br, IPv4Network("10.89.0.0/24"), internal=True))
        c = make_ns("c")
        bridge.connect(internal_br, c, names.link("vc"), IPv4Interface("10.89.0.2/24"), IPv4Address("10.89.0.1"),
                       host_netns=host_ns)
        # The outside knows the way back to the internal subnet: only the firewall can stop the connection.
        with netns.entered(lab.wan), IPRoute() as ipr:
            ipr.route("add", dst="10.89.0.0/24", gateway=HOST_IP)
        gateway_server = EchoServer(host_ns, "10.89.0.1", 0)
        try:
            # The host side of the internal network still answers (that is where its DNS lives)...
            assert retry(lambda: tcp_exchange(c, "10.89.0.1", gateway_server.port)) == b"echo:hello"
        finally:
            gateway_server.close()
        # ...but nothing is forwarded beyond it: the SYN is dropped, the connect times out.
        with pytest.raises(TimeoutError):
            tcp_exchange(c, WAN_IP, 7000, timeout=1.0)
        assert outside.peers == [HOST_IP]
        # Each direction is dropped on its own: a datagram out of the network never reaches the outside...
        outside_udp = EchoServer(lab.wan, port=7001, udp=True)
        inside_udp = EchoServer(c, port=7002, udp=True)
        try:
            with pytest.raises(TimeoutError):
                udp_exchange(c, WAN_IP, 7001, timeout=1.0)
            # ...and one from the outside (which has a route to the subnet) never reaches the container.
            with pytest.raises(TimeoutError):
                udp_exchange(lab.wan, "10.89.0.2", 7002, timeout=1.0)
            assert (outside_udp.peers, inside_udp.peers) == ([], [])
        finally:
            outside_udp.close()
            inside_udp.close()
        assert loop_thread.run(lab.mapper.publish("ep-c", internal_br, IPv4Address("10.89.0.2"),
                                                  [parse_port_spec("8081:80")], internal=True)) == []
    finally:
        outside.close()


def test_networks_are_isolated_except_through_published_ports(host_ns, make_ns, names, loop_thread, proxy_lab):
    lab = proxy_lab
    other_br = names.link("ob")
    bridge.create_bridge(other_br, IPv4Interface("10.90.0.1/24"), host_netns=host_ns)
    lab.firewall.add_network(NetworkSpec("net2", other_br, IPv4Network("10.90.0.0/24")))
    d = make_ns("d")
    bridge.connect(other_br, d, names.link("vd"), IPv4Interface("10.90.0.2/24"), IPv4Address("10.90.0.1"),
                   host_netns=host_ns)
    server = EchoServer(d, port=80)
    try:
        loop_thread.run(lab.mapper.publish("ep-d", other_br, IPv4Address("10.90.0.2"), [parse_port_spec("8090:80")]))
        assert retry(lambda: tcp_exchange(lab.a, HOST_IP, 8090, b"published")) == b"echo:published"
        # The same container by its own address, from another network: dropped (no reply, so a timeout).
        with pytest.raises(TimeoutError):
            tcp_exchange(lab.a, "10.90.0.2", 80, timeout=1.0)
        # Containers of one network still reach each other directly.
        same = EchoServer(lab.b, port=81)
        try:
            assert retry(lambda: tcp_exchange(lab.a, str(B_IP), 81)) == b"echo:hello"
        finally:
            same.close()
    finally:
        server.close()


def _tables(ipt: Iptables) -> dict[str, list[str]]:
    return {table: ipt.dump(table) for table in ("filter", "nat")}


def test_teardown_removes_every_berth_chain_and_keeps_the_hosts_rules(host_ns, names, loop_thread):
    ipt = Iptables(host_ns)
    ipt.append("filter", "INPUT", ["-p", "tcp", "--dport", "22", "-j", "ACCEPT"])
    ipt.run("-t", "filter", "-P", "FORWARD", "DROP")
    ipt.append("nat", "POSTROUTING", ["-o", names.link("up"), "-j", "MASQUERADE"])
    ipt.append("nat", "PREROUTING", ["-p", "tcp", "--dport", "2222", "-j", "REDIRECT", "--to-ports", "22"])
    original = _tables(ipt)

    br = names.link("br")
    bridge.create_bridge(br, GATEWAY, host_netns=host_ns)
    firewall = Firewall(ipt, userland_proxy=True)
    firewall.install()
    firewall.install()  # a daemon restart: the hooks are not stacked
    assert sum("BERTH-DNAT" in line and line.startswith("-A PREROUTING") for line in ipt.dump("nat")) == 1
    firewall.add_network(NetworkSpec("net1", br, SUBNET))
    mapper = PortMapper(firewall, host_ns)
    loop_thread.run(mapper.publish("ep-b", br, B_IP, [parse_port_spec("8080:80"), parse_port_spec("53/udp")]))
    during = _tables(ipt)
    assert during != original
    # Hooks sit at position 1 of each built-in chain, ahead of the host's own rules.
    assert next(line for line in during["nat"] if line.startswith("-A PREROUTING")).endswith("-j BERTH-DNAT")
    assert next(line for line in during["filter"] if line.startswith("-A FORWARD")) == "-A FORWARD -j BERTH-FORWARD"

    loop_thread.run(mapper.close())
    firewall.uninstall()
    assert _tables(ipt) == original
    assert not any("BERTH" in line for lines in _tables(ipt).values() for line in lines)


def test_install_flushes_stale_rules_of_a_previous_run(host_ns, names):
    ipt = Iptables(host_ns)
    firewall = Firewall(ipt)
    firewall.install()
    ipt.append("nat", "BERTH-DNAT", ["-p", "tcp", "--dport", "1", "-m", "comment", "--comment", "berth:ep:dead",
                                     "-j", "DNAT", "--to-destination", "10.88.0.9:1"])
    firewall.install()
    assert firewall.listing() == {
        "BERTH-DNAT": [], "BERTH-POSTROUTING": [], "BERTH-FORWARD": [["-j", "BERTH-ISOLATION-1"]],
        "BERTH-ISOLATION-2": [],
        "BERTH-ISOLATION-1": [["-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "RETURN"]],
    }
    firewall.uninstall()


def test_a_rule_batch_is_all_or_nothing_and_odd_arguments_are_refused(host_ns):
    ipt = Iptables(host_ns)
    ipt.ensure_chain("filter", "BERTH-FORWARD")
    try:
        with pytest.raises(FirewallError):
            ipt.apply({"filter": [["-A", "BERTH-FORWARD", "-i", "bt0", "-j", "ACCEPT"],
                                  ["-A", "BERTH-FORWARD", "-j", "NO-SUCH-TARGET"]]})
        assert ipt.rules("filter", "BERTH-FORWARD") == []
        with pytest.raises(FirewallError, match="refusing"):
            ipt.apply({"filter": [["-A", "BERTH-FORWARD", "-m", "comment", "--comment", "a b\nCOMMIT"]]})
        ipt.apply({"filter": [["-A", "BERTH-FORWARD", "-i", "bt0", "-j", "ACCEPT"]]})
        assert ipt.rules("filter", "BERTH-FORWARD") == [["-i", "bt0", "-j", "ACCEPT"]]
    finally:
        ipt.remove_chain("filter", "BERTH-FORWARD")


def test_proxy_carries_a_half_close_and_large_payloads(proxy_lab, loop_thread):
    """A client that shuts down its sending side still gets the whole answer through the proxy."""
    lab = proxy_lab
    listener = netns.socket_in(lab.b, socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("0.0.0.0", 80))
    listener.listen(1)
    payload = bytes(range(256)) * 4096  # 1 MiB

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            received = b""
            while chunk := conn.recv(65536):  # until the client's EOF arrives
                received += chunk
            conn.sendall(b"got:%d" % len(received))

    worker = threading.Thread(target=serve, daemon=True)
    worker.start()
    try:
        loop_thread.run(lab.mapper.publish("ep-b", lab.bridge, B_IP, [parse_port_spec("8080:80")]))
        with netns.socket_in(lab.host, socket.AF_INET, socket.SOCK_STREAM) as client:
            client.settimeout(10)
            client.connect(("127.0.0.1", 8080))  # the proxy listens before publish() returns
            client.sendall(payload)
            client.shutdown(socket.SHUT_WR)
            reply = b""
            while chunk := client.recv(65536):
                reply += chunk
        assert reply == b"got:%d" % len(payload)
    finally:
        worker.join(10)
        listener.close()


def test_udp_proxy_forgets_idle_flows(host_ns, make_ns, loop_thread):
    container = make_ns("u")
    server = EchoServer(container, "127.0.0.1", 0, udp=True)
    front = netns.socket_in(host_ns, socket.AF_INET, socket.SOCK_DGRAM)
    front.bind(("127.0.0.1", 0))
    front.setblocking(False)
    # The "container" is reached over its own loopback here: the proxy's backend socket lives in `container`.
    proxy = UdpProxy(front, ("127.0.0.1", server.port), container, idle_s=0.2)
    loop_thread.run(proxy.start())
    try:
        assert udp_exchange(host_ns, "127.0.0.1", front.getsockname()[1], b"x") == b"echo:x"
        assert proxy.flow_count() == 1
        deadline = time.monotonic() + 5
        while proxy.flow_count() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proxy.flow_count() == 0
        # A new datagram opens a new flow.
        assert udp_exchange(host_ns, "127.0.0.1", front.getsockname()[1], b"y") == b"echo:y"
    finally:
        loop_thread.run(proxy.close())
        server.close()
