"""The embedded resolver: names from the table, the rest forwarded to a fake upstream on the host's loopback."""

from __future__ import annotations

import socket
import struct
import threading
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

import pytest

from engine.network import bridge, dns_wire
from engine.network.dns import DnsServer, NameTable, Upstream, read_upstreams
from engine.network.netns import socket_in
from tests.network.nstools import retry

pytestmark = pytest.mark.needs_root

GATEWAY = IPv4Interface("10.77.0.1/24")
A_IP, B_IP = IPv4Address("10.77.0.2"), IPv4Address("10.77.0.3")
UPSTREAM_ANSWER = IPv4Address("192.0.2.99")


class FakeUpstream:
    """A resolver on 127.0.0.1:53 of the test host netns: 192.0.2.99 for any name, NXDOMAIN for nx.example."""

    def __init__(self, ns: str) -> None:
        self.sock = socket_in(ns, socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 53))
        self.sock.settimeout(0.2)
        self.asked: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            question = dns_wire.parse_question(data)
            self.asked.append(question.name)
            if question.name == "nx.example":
                reply = dns_wire.build_answer(question, [], dns_wire.RCODE_NXDOMAIN)
            else:
                reply = dns_wire.build_answer(question, [UPSTREAM_ANSWER])
            self.sock.sendto(reply, peer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


def ask(ns: str, server: IPv4Address, name: str, qtype: int = dns_wire.TYPE_A) -> dns_wire.Answer:
    """A stub resolver's UDP query from inside `ns`."""
    query = dns_wire.build_query(name, qtype, ident=0x1234)

    def once() -> dns_wire.Answer:
        with socket_in(ns, socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(2)
            sock.sendto(query, (str(server), 53))
            return dns_wire.parse_answer(sock.recvfrom(4096)[0])

    answer = retry(once)
    assert answer.id == 0x1234
    return answer


@pytest.fixture
def dns_lab(host_ns, make_ns, names, loop_thread, tmp_path: Path):
    br = names.link("br")
    bridge.create_bridge(br, GATEWAY, host_netns=host_ns)
    a, b = make_ns("a"), make_ns("b")
    bridge.connect(br, a, names.link("va"), IPv4Interface(f"{A_IP}/24"), GATEWAY.ip, host_netns=host_ns)
    bridge.connect(br, b, names.link("vb"), IPv4Interface(f"{B_IP}/24"), GATEWAY.ip, host_netns=host_ns)
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("# the host's\nsearch example.org\nnameserver 127.0.0.1\nnameserver ::1\n")
    upstream = FakeUpstream(host_ns)
    table = NameTable()
    table.add("net1", ["web", "db-alias", "0123456789ab"], B_IP)
    table.add("net1", ["client"], A_IP)
    server = DnsServer("net1", table, GATEWAY.ip, read_upstreams(resolv), host_netns=host_ns, device=br)
    loop_thread.run(server.start())
    yield a, b, table, upstream, server
    loop_thread.run(server.close())
    upstream.close()


def test_container_name_and_alias_resolve_to_the_container(dns_lab):
    a, _, _, upstream, _ = dns_lab
    assert ask(a, GATEWAY.ip, "web").addresses == [B_IP]
    assert ask(a, GATEWAY.ip, "WEB.").addresses == [B_IP]
    assert ask(a, GATEWAY.ip, "db-alias").addresses == [B_IP]
    assert ask(a, GATEWAY.ip, "0123456789ab").addresses == [B_IP]
    assert upstream.asked == []


def test_known_name_without_ipv4_type_gets_an_empty_answer_not_a_forward(dns_lab):
    a, _, _, upstream, _ = dns_lab
    answer = ask(a, GATEWAY.ip, "web", dns_wire.TYPE_AAAA)
    assert (answer.rcode, answer.addresses) == (dns_wire.RCODE_NOERROR, [])
    assert upstream.asked == []


def test_unknown_names_are_forwarded_to_the_hosts_upstream(dns_lab):
    a, _, _, upstream, _ = dns_lab
    assert ask(a, GATEWAY.ip, "example.com").addresses == [UPSTREAM_ANSWER]
    nx = ask(a, GATEWAY.ip, "nx.example")
    assert (nx.rcode, nx.addresses) == (dns_wire.RCODE_NXDOMAIN, [])
    assert upstream.asked == ["example.com", "nx.example"]


def test_removed_endpoint_is_no_longer_resolved_locally(dns_lab):
    a, _, table, upstream, _ = dns_lab
    table.remove_address("net1", B_IP)
    assert ask(a, GATEWAY.ip, "web").addresses == [UPSTREAM_ANSWER]
    assert upstream.asked == ["web"]
    assert ask(a, GATEWAY.ip, "client").addresses == [A_IP]


def test_tcp_query_is_answered(dns_lab):
    a, _, _, _, _ = dns_lab
    query = dns_wire.build_query("web", ident=7)

    def once() -> bytes:
        with socket_in(a, socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(2)
            sock.connect((str(GATEWAY.ip), 53))
            sock.sendall(struct.pack("!H", len(query)) + query)
            length = struct.unpack("!H", sock.recv(2))[0]
            return sock.recv(length)

    answer = dns_wire.parse_answer(retry(once))
    assert (answer.id, answer.addresses) == (7, [B_IP])


def test_no_upstream_answers_servfail(host_ns, make_ns, names, loop_thread):
    br = names.link("br")
    bridge.create_bridge(br, GATEWAY, host_netns=host_ns)
    a = make_ns("a")
    bridge.connect(br, a, names.link("va"), IPv4Interface(f"{A_IP}/24"), GATEWAY.ip, host_netns=host_ns)
    # Nothing listens on 127.0.0.1:9 in the test host netns: the upstream refuses at once.
    server = DnsServer("net1", NameTable(), GATEWAY.ip, [Upstream(IPv4Address("127.0.0.1"), 9)], host_netns=host_ns)
    loop_thread.run(server.start())
    try:
        assert ask(a, GATEWAY.ip, "example.com").rcode == dns_wire.RCODE_SERVFAIL
    finally:
        loop_thread.run(server.close())


def test_read_upstreams_keeps_ipv4_nameservers_in_order(tmp_path: Path):
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 10.0.0.2\n# nameserver 1.1.1.1\nnameserver fe80::1\nnameserver 10.0.0.3\n")
    assert read_upstreams(conf) == [Upstream(IPv4Address("10.0.0.2")), Upstream(IPv4Address("10.0.0.3"))]
    assert read_upstreams(tmp_path / "missing") == []


def test_wire_roundtrip_and_malformed_queries():
    question = dns_wire.parse_question(dns_wire.build_query("Web.Example.", ident=9))
    assert (question.id, question.name, question.qtype) == (9, "web.example", dns_wire.TYPE_A)
    answer = dns_wire.parse_answer(dns_wire.build_answer(question, [A_IP, B_IP], ttl=5))
    assert (answer.id, answer.rcode, answer.addresses) == (9, 0, [A_IP, B_IP])
    with pytest.raises(dns_wire.MalformedMessage):
        dns_wire.parse_question(b"\x00\x01\x00")
    formerr = dns_wire.parse_answer(dns_wire.error_response(b"\x12\x34garbage", dns_wire.RCODE_FORMERR))
    assert (formerr.id, formerr.rcode) == (0x1234, dns_wire.RCODE_FORMERR)


def test_only_the_bridge_reaches_the_resolver(dns_lab, host_ns, make_ns, names):
    """It forwards anything: a query that reaches the gateway address through another interface (a
    neighbour routing to it) gets nothing, so the resolver is never open to whoever can route there."""
    import os

    from pyroute2 import IPRoute

    from engine.network import netns

    a, _, _, upstream, _ = dns_lab
    outsider = make_ns("out")
    near, far = names.link("vo"), names.link("vp")
    with netns.entered(host_ns), IPRoute() as ipr:
        ipr.link("add", ifname=near, kind="veth", peer=far)
        index = ipr.link_lookup(ifname=near)[0]
        ipr.addr("add", index=index, address="10.78.0.1", prefixlen=24)
        ipr.link("set", index=index, state="up")
        target = os.open(outsider, os.O_RDONLY)
        try:
            ipr.link("set", index=ipr.link_lookup(ifname=far)[0], net_ns_fd=target)
        finally:
            os.close(target)
    with netns.entered(outsider), IPRoute() as ipr:
        index = ipr.link_lookup(ifname=far)[0]
        ipr.addr("add", index=index, address="10.78.0.2", prefixlen=24)
        ipr.link("set", index=index, state="up")
        ipr.route("add", dst="10.77.0.0/24", gateway="10.78.0.1")
    assert ask(a, GATEWAY.ip, "web").addresses == [B_IP]  # over the bridge: served
    with socket_in(outsider, socket.AF_INET, socket.SOCK_STREAM) as tcp:
        tcp.settimeout(3)
        with pytest.raises(ConnectionRefusedError):  # the neighbour reaches the host (a RST), not the resolver
            tcp.connect((str(GATEWAY.ip), 53))
    with socket_in(outsider, socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.settimeout(1)
        udp.sendto(dns_wire.build_query("example.com", ident=9), (str(GATEWAY.ip), 53))
        with pytest.raises(OSError):  # nothing answers (a timeout, or the port-unreachable error)
            udp.recvfrom(4096)
    assert upstream.asked == []
