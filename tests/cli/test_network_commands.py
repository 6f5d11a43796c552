"""`berth network ...` and `berth port` against one berthd, side by side with the real docker CLI.

The network commands speak Docker's /networks API, which berthd serves.
"""

from __future__ import annotations

import json
from argparse import Namespace

import pytest

from tests.cli.conftest import Tools

pytestmark = pytest.mark.needs_root


@pytest.fixture(scope="module")
def networks_api(tools: Tools) -> None:
    probe = tools.docker("network", "ls")
    assert probe.returncode == 0, probe.stderr  # berthd serves /networks: a failure here is a regression


def _both(tools: Tools, *args: str) -> str:
    ours, theirs = tools.berth(*args), tools.docker(*args)
    assert (ours.returncode, ours.stdout, ours.stderr) == (theirs.returncode, theirs.stdout, theirs.stderr), args
    return ours.stdout


def test_create_ls_inspect_rm_agree_with_docker(tools: Tools, networks_api: None) -> None:
    made = tools.ok("berth", "network", "create", "--label", "team=a", "--subnet", "10.231.0.0/24",
                    "--gateway", "10.231.0.1", "net-b").strip()
    assert len(made) == 64
    tools.ok("docker", "network", "create", "--label", "team=b", "--internal", "net-d")
    listed = _both(tools, "network", "ls")
    assert listed.splitlines()[0].split() == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    assert {"net-b", "net-d", "bridge"} <= {line.split()[1] for line in listed.splitlines()[1:]}
    for args in (["-q"], ["--no-trunc", "-q"], ["--filter", "label=team=a", "--format", "{{.Name}} {{.Driver}}"],
                 ["--filter", "label=team", "--format", '{{.Name}} {{.Label "team"}} {{.Internal}}'],
                 ["--filter", "name=net-", "--format", "json"]):
        _both(tools, "network", "ls", *args)
    inspected = json.loads(_both(tools, "network", "inspect", "net-b"))
    assert inspected[0]["IPAM"]["Config"][0]["Subnet"] == "10.231.0.0/24"
    _both(tools, "network", "inspect", "-f", "{{.Name}} {{json .Labels}} {{.Internal}}", "net-b", "net-d")
    assert tools.ok("berth", "network", "rm", "net-b", "net-d") == "net-b\nnet-d\n"
    _both(tools, "network", "rm", "net-b")  # gone for both: same error
    assert tools.berth("network", "rm", "-f", "net-b").returncode == 0


def test_connect_disconnect_are_seen_by_docker(tools: Tools, busybox: str, networks_api: None) -> None:
    tools.ok("berth", "network", "create", "--subnet", "10.232.0.0/24", "net-c")
    tools.ok("docker", "run", "-d", "--name", "net-user", busybox, "sleep", "3600")
    tools.ok("berth", "network", "connect", "--alias", "db", "--ip", "10.232.0.9", "net-c", "net-user")
    fmt = "{{(index .NetworkSettings.Networks \"net-c\").IPAddress}}"
    assert tools.ok("docker", "inspect", "-f", fmt, "net-user") == "10.232.0.9\n"
    in_use = tools.berth("network", "rm", "net-c")
    assert in_use.returncode == 1 and in_use.stderr.startswith("Error response from daemon: ")
    tools.ok("berth", "network", "disconnect", "net-c", "net-user")
    assert "net-c" not in tools.ok("docker", "inspect", "-f", "{{json .NetworkSettings.Networks}}", "net-user")
    pruned = tools.berth("network", "prune", "-f")
    assert pruned.returncode == 0 and pruned.stdout.startswith("Deleted Networks:\n")
    assert "net-c" in pruned.stdout.splitlines()[1:]
    assert _both(tools, "network", "prune", "-f") == ""


def test_published_ports_agree_with_docker(tools: Tools, busybox: str) -> None:
    tools.ok("docker", "run", "-d", "--name", "ports", "-p", "127.0.0.1:18080:80", "-p", "127.0.0.1:19090:90/udp",
             "-p", "127.0.0.1::443", busybox, "sleep", "3600")
    for args in (["ports"], ["ports", "80"], ["ports", "90/udp"], ["ports", "443/tcp"], ["ports", "81"],
                 ["no-such-container"]):
        _both(tools, "port", *args)
    assert tools.ok("berth", "port", "ports", "80") == "127.0.0.1:18080\n"


def test_ipam_flags_line_up_by_position() -> None:
    from engine.cli.commands.networks import _ipam_config
    from engine.cli.context import UsageError

    opts = Namespace(subnet=["10.1.0.0/16", "fd00::/64"], ip_range=["10.1.2.0/24"], gateway=["10.1.0.254"],
                     aux_address=["router=10.1.0.2"])
    assert _ipam_config(opts) == [
        {"Subnet": "10.1.0.0/16", "IPRange": "10.1.2.0/24", "Gateway": "10.1.0.254",
         "AuxiliaryAddresses": {"router": "10.1.0.2"}},
        {"Subnet": "fd00::/64"}]
    with pytest.raises(UsageError, match="must have a corresponding subnet"):
        _ipam_config(Namespace(subnet=[], ip_range=[], gateway=["10.0.0.1"], aux_address=[]))


def test_usage_errors_are_docker_lines(tools: Tools) -> None:
    out = tools.berth("network", "connect", "only-one")
    assert out.returncode == 1 and "'berth network connect' requires" in out.stderr
    out = tools.berth("network", "create", "--subnett", "x", "n")
    assert out.returncode == 125 and "Did you mean '--subnet'?" in out.stderr
    out = tools.berth("network", "lss")
    assert out.returncode == 125 and "Did you mean 'ls'?" in out.stderr


def test_ip_family_flags_like_docker_28(tools: Tools, networks_api: None) -> None:
    # --ipv4 / --ipv4=true: an IPv4 network, made and seen the same by both tools.
    for tool, name in (("berth", "net-v4-b"), ("docker", "net-v4-d")):
        for flag in ("--ipv4", "--ipv4=true", "--ipv4=1"):
            tools.ok(tool, "network", "create", flag, name)
            assert tools.ok("docker", "network", "inspect", "-f", "{{.EnableIPv4}} {{.EnableIPv6}}", name) == (
                "true false\n")
            tools.ok(tool, "network", "rm", name)
    # What berthd cannot do is a clear 400, to both tools alike, and no network is left behind.
    for flags, says in ((["--ipv6"], "IPv6 is not implemented in Berth"),
                        (["--ipv4=false"], "IPv4 or IPv6 must be enabled, and IPv6 is not implemented in Berth"),
                        (["--ipv4=false", "--ipv6"], "IPv6 is not implemented in Berth")):
        ours, theirs = tools.berth("network", "create", *flags, "net-fam"), tools.docker("network", "create",
                                                                                         *flags, "net-fam")
        assert (ours.returncode, ours.stderr) == (theirs.returncode, theirs.stderr), flags
        assert ours.returncode == 1 and ours.stderr.startswith(f"Error response from daemon: {says}"), flags
        assert "net-fam" not in tools.ok("docker", "network", "ls", "--format", "{{.Name}}").split()
    # --ipv6=false asks for nothing berthd lacks; a bad boolean is a usage error, exit 125 like docker's.
    tools.ok("berth", "network", "create", "--ipv6=false", "net-no6")
    tools.ok("berth", "network", "rm", "net-no6")
    ours, theirs = tools.berth("network", "create", "--ipv4=maybe", "x"), tools.docker("network", "create",
                                                                                      "--ipv4=maybe", "x")
    assert ours.returncode == theirs.returncode == 125
    said = 'invalid argument "maybe" for "--ipv4" flag: strconv.ParseBool: parsing "maybe": invalid syntax'
    assert said in ours.stderr and said in theirs.stderr
