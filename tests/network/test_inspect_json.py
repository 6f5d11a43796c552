"""API shapes of endpoints, ports and IPAM."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from engine.network.bridge import Endpoint
from engine.network.inspect_json import endpoint_settings, ipam_json, port_map
from engine.network.ipam_store import SubnetRecord
from engine.network.port_spec import PortSpec
from engine.network.portmap import PortBinding


def test_endpoint_settings():
    ep = Endpoint("veth1", "eth0", IPv4Interface("172.18.0.2/16"), IPv4Address("172.18.0.1"), "02:42:ac:12:00:02", 1500)
    doc = endpoint_settings(ep, "n" * 64, "e" * 64, aliases=["web"], dns_names=["c1", "web", "abcdef012345"])
    assert (doc["IPAddress"], doc["IPPrefixLen"], doc["Gateway"]) == ("172.18.0.2", 16, "172.18.0.1")
    assert doc["Aliases"] == ["web"] and doc["DNSNames"] == ["c1", "web", "abcdef012345"]
    assert doc["MacAddress"] == "02:42:ac:12:00:02"


def test_port_map_lists_bindings_and_exposed_only_ports():
    ip = IPv4Address("172.18.0.2")
    bindings = [PortBinding("tcp", ip, 80, None, 8080), PortBinding("tcp", ip, 80, IPv4Address("127.0.0.1"), 8081)]
    assert port_map(bindings, exposed=[PortSpec(80), PortSpec(443)]) == {
        "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "127.0.0.1", "HostPort": "8081"}],
        "443/tcp": None,
    }


def test_ipam_json():
    record = SubnetRecord("n", IPv4Network("172.19.0.0/16"), IPv4Address("172.19.0.1"))
    assert ipam_json(record)["Config"] == [{"Subnet": "172.19.0.0/16", "Gateway": "172.19.0.1"}]
