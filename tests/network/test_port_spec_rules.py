"""Port specs and the rule shapes, without root."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from engine.network.errors import InvalidParameter
from engine.network.firewall_rules import ChainNames, NetworkSpec, PortRuleSpec, hooks, network_rules, port_rules
from engine.network.port_spec import PortSpec, from_port_bindings, parse_port_spec


@pytest.mark.parametrize(("text", "spec"), [
    ("80", PortSpec(80)),
    ("80/udp", PortSpec(80, "udp")),
    ("8080:80", PortSpec(80, host_port=8080)),
    ("127.0.0.1::80", PortSpec(80, host_ip=IPv4Address("127.0.0.1"))),
    ("127.0.0.1:8080:80/udp", PortSpec(80, "udp", IPv4Address("127.0.0.1"), 8080)),
    ("0.0.0.0:8080:80", PortSpec(80, host_port=8080)),
])
def test_parse_port_spec(text, spec):
    assert parse_port_spec(text) == spec


@pytest.mark.parametrize("bad", ["", "80/sctp", "a:b:c:d", "70000", "8000-8010:80", "::1:80:80", "x:80"])
def test_parse_port_spec_rejects(bad):
    with pytest.raises(InvalidParameter):
        parse_port_spec(bad)


def test_port_bindings_from_the_api():
    assert from_port_bindings({"80/tcp": [{"HostIp": "", "HostPort": ""}], "53/udp": [{"HostPort": "5353"}],
                               "9/tcp": None}) == [
        PortSpec(80), PortSpec(53, "udp", host_port=5353), PortSpec(9)]


def test_every_rule_is_tagged_and_lives_in_berths_chains():
    names = ChainNames("BERTH")
    net = NetworkSpec("n1", "br-n1", IPv4Network("172.18.0.0/16"), loopback_dnat=True)
    port = PortRuleSpec("ep1", "br-n1", IPv4Address("172.18.0.2"), 80, "tcp", 8080)
    rules = network_rules(names, net) + port_rules(names, port)
    assert {r.chain for r in rules} == {"BERTH-FORWARD", "BERTH-POSTROUTING", "BERTH-DNAT", "BERTH-ISOLATION-1",
                                        "BERTH-ISOLATION-2"}
    assert all("berth:net:n1" in r.args or "berth:ep:ep1" in r.args for r in rules)
    loopback = next(r.args for r in rules if "127.0.0.0/8" in r.args)
    assert loopback[:6] == ("-s", "127.0.0.0/8", "-o", "br-n1", "-j", "MASQUERADE")


def test_internal_network_only_drops_and_never_masquerades():
    rules = network_rules(ChainNames(), NetworkSpec("n", "br", IPv4Network("10.1.0.0/24"), internal=True))
    drops = [r.args[:-4] for r in rules if "DROP" in r.args]
    assert drops == [("-o", "br", "-j", "DROP"), ("-i", "br", "!", "-o", "br", "-j", "DROP"),
                     ("-o", "br", "!", "-i", "br", "-j", "DROP")]
    assert not any("MASQUERADE" in r.args for r in rules)


def test_output_hook_leaves_loopback_to_the_proxy_only_in_proxy_mode():
    proxy = dict((b, r) for _, b, r in hooks(ChainNames(), userland_proxy=True))
    kernel = dict((b, r) for _, b, r in hooks(ChainNames(), userland_proxy=False))
    assert proxy["OUTPUT"][:3] == ["!", "-d", "127.0.0.0/8"]
    assert "127.0.0.0/8" not in kernel["OUTPUT"]
