"""Per-container /etc files, compared with what dockerd writes."""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path

import pytest

from engine.network.errors import InvalidParameter
from engine.network.hosts_files import (
    ContainerFiles,
    ExtraHost,
    container_resolv_conf,
    hostname_file,
    hosts_file,
    parse_extra_host,
    parse_resolv_conf,
)

HOST_RESOLV = parse_resolv_conf(
    "# managed\nnameserver 127.0.0.53\nnameserver 10.255.255.53\nsearch corp.example lab.example\n"
    "options edns0 trust-ad\n"
)


def test_hosts_file_has_dockers_default_block_extra_hosts_then_the_container():
    gw = IPv4Address("172.18.0.1")
    text = hosts_file(
        "c0ffee123456",
        [IPv4Address("172.18.0.2")],
        extra_hosts=[parse_extra_host("host.docker.internal:host-gateway", gw), parse_extra_host("db=10.0.0.9")],
    )
    assert text == (
        "127.0.0.1\tlocalhost\n"
        "::1\tlocalhost ip6-localhost ip6-loopback\n"
        "fe00::0\tip6-localnet\n"
        "ff00::0\tip6-mcastprefix\n"
        "ff02::1\tip6-allnodes\n"
        "ff02::2\tip6-allrouters\n"
        "172.18.0.1\thost.docker.internal\n"
        "10.0.0.9\tdb\n"
        "172.18.0.2\tc0ffee123456\n"
    )


def test_hosts_file_with_a_domain_names_both_forms():
    assert hosts_file("web", [IPv4Address("10.0.0.2")], domainname="example.org").endswith(
        "10.0.0.2\tweb.example.org web\n"
    )


def test_extra_host_validation():
    assert parse_extra_host("v6:[::1]") == ExtraHost("v6", "::1")
    with pytest.raises(InvalidParameter):
        parse_extra_host("nohost")
    with pytest.raises(InvalidParameter):
        parse_extra_host("x:not-an-ip")
    with pytest.raises(InvalidParameter, match="host-gateway"):
        parse_extra_host("h:host-gateway")


def test_resolv_conf_with_the_embedded_resolver_points_at_the_gateway():
    text = container_resolv_conf(HOST_RESOLV, embedded_dns=IPv4Address("172.18.0.1"))
    assert text.splitlines()[1:] == [
        "nameserver 172.18.0.1",
        "search corp.example lab.example",
        "options ndots:0 edns0 trust-ad",
    ]


def test_resolv_conf_without_the_embedded_resolver_drops_loopback_nameservers():
    text = container_resolv_conf(HOST_RESOLV)
    assert "nameserver 10.255.255.53" in text and "127.0.0.53" not in text
    only_loopback = parse_resolv_conf("nameserver 127.0.0.53\n")
    assert container_resolv_conf(only_loopback).splitlines()[1:] == ["nameserver 8.8.8.8", "nameserver 8.8.4.4"]


def test_resolv_conf_overrides():
    text = container_resolv_conf(HOST_RESOLV, dns=["1.1.1.1"], dns_search=["."], dns_options=["ndots:2"])
    assert text.splitlines()[1:] == ["nameserver 1.1.1.1", "options ndots:2"]


def test_container_files_are_written_for_bind_mounts(tmp_path: Path):
    files = ContainerFiles(hosts_file("h", []), container_resolv_conf(HOST_RESOLV), hostname_file("h"))
    mounts = files.write(tmp_path / "c1")
    assert set(mounts) == {"/etc/hosts", "/etc/resolv.conf", "/etc/hostname"}
    assert mounts["/etc/hostname"].read_text() == "h\n"
    assert mounts["/etc/hosts"].stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in (tmp_path / "c1").iterdir()) == ["hostname", "hosts", "resolv.conf"]
