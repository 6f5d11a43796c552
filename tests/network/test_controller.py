"""The daemon's view: create a network, attach containers, restart, tear down — in a test host netns."""

from __future__ import annotations

import socket
from ipaddress import IPv4Interface, IPv4Network
from pathlib import Path

import pytest
from pyroute2 import IPRoute

from engine.network import bridge, dns_wire, netns
from engine.network.controller import EndpointConfig, NetworkConfig, NetworkController
from engine.network.ipam import Ipam
from engine.network.ipam_store import DbIpamStore
from engine.network.iptables import Iptables
from engine.network.port_spec import parse_port_spec
from engine.store import MetadataDB
from tests.network.nstools import EchoServer, retry, tcp_exchange

pytestmark = pytest.mark.needs_root


def _resolve(ns: str, server: str, name: str) -> list[str]:
    def once() -> list[str]:
        with netns.socket_in(ns, socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(2)
            sock.sendto(dns_wire.build_query(name), (server, 53))
            return [str(a) for a in dns_wire.parse_answer(sock.recvfrom(4096)[0]).addresses]

    return retry(once)


def test_network_lifecycle_with_restart(host_ns, make_ns, names, loop_thread, tmp_path: Path):
    # Something of the host already uses 172.18.0.0/16: the new network must pick another subnet.
    bridge.create_bridge(names.link("lan"), IPv4Interface("172.18.0.1/16"), host_netns=host_ns)
    db = MetadataDB(tmp_path / "metadata.db")
    ctl = NetworkController(Ipam(DbIpamStore(db)), host_netns=host_ns, upstreams=[])
    loop_thread.run(ctl.start())
    config = NetworkConfig("net1", names.link("br"))
    subnet = loop_thread.run(ctl.create_network(config))
    assert subnet.subnet == IPv4Network("172.19.0.0/16")

    web_ns, client_ns = make_ns("web"), make_ns("client")
    web = EndpointConfig("net1", "ep-web", web_ns, names.link("vw"), ("web", "www"), (parse_port_spec("8080:80"),))
    client = EndpointConfig("net1", "ep-client", client_ns, names.link("vc"), ("client",))
    web_att = loop_thread.run(ctl.connect(web))
    client_att = loop_thread.run(ctl.connect(client))
    assert str(web_att.endpoint.address) == "172.19.0.2/16"
    server = EchoServer(web_ns, port=80)
    try:
        dns = str(ctl.dns_server("net1"))
        assert dns == "172.19.0.1"
        assert _resolve(client_ns, dns, "www") == ["172.19.0.2"]
        assert retry(lambda: tcp_exchange(client_ns, _resolve(client_ns, dns, "web")[0], 80)) == b"echo:hello"
        assert retry(lambda: tcp_exchange(host_ns, "127.0.0.1", 8080)) == b"echo:hello"

        # Daemon restart: proxies and DNS go away with the process; the veths and IPAM stay.
        loop_thread.run(ctl.close())
        db.close()
        db = MetadataDB(tmp_path / "metadata.db")
        ctl = NetworkController(Ipam(DbIpamStore(db)), host_netns=host_ns, upstreams=[])
        loop_thread.run(ctl.start())
        assert loop_thread.run(ctl.create_network(config)).subnet == subnet.subnet
        loop_thread.run(ctl.restore_endpoint(web, web_att.endpoint, web_att.ports))
        loop_thread.run(ctl.restore_endpoint(client, client_att.endpoint, client_att.ports))
        assert retry(lambda: tcp_exchange(host_ns, "127.0.0.1", 8080)) == b"echo:hello"
        assert _resolve(client_ns, dns, "web") == ["172.19.0.2"]
        dnat = Iptables(host_ns).rules("nat", "BERTH-DNAT")
        assert len(dnat) == 1, dnat
    finally:
        server.close()

    loop_thread.run(ctl.disconnect("net1", "ep-web"))
    # A container that has not been seen before must not get the web container's address straight back.
    third = loop_thread.run(ctl.connect(EndpointConfig("net1", "ep-3", web_ns, names.link("v3"))))
    assert str(third.endpoint.address) == "172.19.0.4/16"
    loop_thread.run(ctl.disconnect("net1", "ep-3"))
    loop_thread.run(ctl.disconnect("net1", "ep-client"))
    loop_thread.run(ctl.remove_network("net1"))
    with netns.entered(host_ns), IPRoute() as ipr:
        assert ipr.link_lookup(ifname=names.link("br")) == []
    assert [r.network_id for r in ctl.ipam.store.subnets()] == []
    loop_thread.run(ctl.close(remove_rules=True))
    ipt = Iptables(host_ns)
    assert not any("BERTH" in line for table in ("filter", "nat") for line in ipt.dump(table))
    db.close()


def test_connect_failure_releases_the_address(host_ns, make_ns, names, loop_thread, tmp_path: Path):
    db = MetadataDB(tmp_path / "metadata.db")
    ctl = NetworkController(Ipam(DbIpamStore(db)), host_netns=host_ns, upstreams=[])
    loop_thread.run(ctl.start())
    loop_thread.run(ctl.create_network(NetworkConfig("n", names.link("br"), subnet="10.60.0.0/24")))
    a = make_ns("a")
    holder = netns.socket_in(host_ns, socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("0.0.0.0", 0))
    holder.listen(1)
    try:
        with pytest.raises(Exception, match="already allocated"):
            loop_thread.run(ctl.connect(EndpointConfig(
                "n", "ep", a, names.link("va"), ports=(parse_port_spec(f"{holder.getsockname()[1]}:80"),))))
    finally:
        holder.close()
    assert list(ctl.ipam.addresses("n").values()) == ["gateway"]
    with netns.entered(host_ns), IPRoute() as ipr:
        assert ipr.link_lookup(ifname=names.link("va")) == []
    loop_thread.run(ctl.close(remove_rules=True))
    db.close()
