"""IPAM: subnets and addresses, each test run against both stores (JSON file and metadata DB)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

import pytest

from engine.network import bridge
from engine.network.errors import Conflict, InvalidParameter, NotFound, PoolExhausted
from engine.network.host_routes import occupied_networks
from engine.network.ipam import AddressPool, Ipam
from engine.network.ipam_store import DbIpamStore, IpamStore, JsonIpamStore
from engine.store import MetadataDB

StoreFactory = Callable[[], IpamStore]


@pytest.fixture(params=["json", "db"])
def open_store(request, tmp_path: Path):
    """Opens the same persistent store again each call (a daemon restart)."""
    dbs: list[MetadataDB] = []

    def open_() -> IpamStore:
        if request.param == "json":
            return JsonIpamStore(tmp_path / "ipam.json")
        db = MetadataDB(tmp_path / "metadata.db")
        dbs.append(db)
        return DbIpamStore(db)

    yield open_
    for db in dbs:
        db.close()


def test_default_subnet_skips_docker_bridge_and_host_routes(open_store):
    ipam = Ipam(open_store())
    host = [IPv4Network("172.18.0.0/16"), IPv4Network("172.19.5.0/24")]
    first = ipam.allocate_subnet("bridge", avoid=host)
    assert first.subnet == IPv4Network("172.20.0.0/16")
    assert first.gateway == IPv4Address("172.20.0.1")
    second = ipam.allocate_subnet("net2", avoid=host)
    assert second.subnet == IPv4Network("172.21.0.0/16")


def test_subnets_and_gateway_survive_reopen(open_store):
    Ipam(open_store()).allocate_subnet("bridge")
    reopened = Ipam(open_store())
    record = reopened.subnet_of("bridge")
    assert record.subnet == IPv4Network("172.18.0.0/16")
    assert reopened.addresses("bridge") == {IPv4Address("172.18.0.1"): "gateway"}
    assert reopened.allocate_subnet("other").subnet == IPv4Network("172.19.0.0/16")


def test_requested_subnet_overlapping_another_is_refused(open_store):
    ipam = Ipam(open_store())
    ipam.allocate_subnet("a", "10.5.0.0/16")
    with pytest.raises(Conflict):
        ipam.allocate_subnet("b", "10.5.3.0/24")
    with pytest.raises(Conflict):
        ipam.allocate_subnet("a", "10.6.0.0/16")
    with pytest.raises(InvalidParameter):
        ipam.allocate_subnet("c", "10.7.0.0/24", gateway="10.8.0.1")


def test_addresses_are_never_handed_out_twice(open_store):
    ipam = Ipam(open_store())
    ipam.allocate_subnet("n", "10.9.0.0/28", gateway="10.9.0.1")
    got = [ipam.allocate_address("n", f"ep{i}") for i in range(13)]
    assert got == [IPv4Address(f"10.9.0.{i}") for i in range(2, 15)]
    with pytest.raises(PoolExhausted):
        ipam.allocate_address("n", "one-too-many")
    ipam.release_address("n", "10.9.0.5")
    assert ipam.allocate_address("n", "again") == IPv4Address("10.9.0.5")


def test_released_address_is_not_reused_at_once_and_the_state_survives_reopen(open_store):
    ipam = Ipam(open_store())
    ipam.allocate_subnet("n", "10.9.0.0/24")
    a = ipam.allocate_address("n", "a")
    ipam.release_address("n", a)
    b = ipam.allocate_address("n", "b")
    assert b != a
    reopened = Ipam(open_store())
    assert reopened.addresses("n") == {IPv4Address("10.9.0.1"): "gateway", b: "b"}
    # The cursor persisted too: the next address continues after b, not from the start.
    assert reopened.allocate_address("n", "c") == b + 1


def test_requested_address_must_be_free_and_inside(open_store):
    ipam = Ipam(open_store())
    ipam.allocate_subnet("n", "10.9.0.0/24")
    assert ipam.allocate_address("n", "a", "10.9.0.50") == IPv4Address("10.9.0.50")
    with pytest.raises(Conflict):
        ipam.allocate_address("n", "b", "10.9.0.50")
    with pytest.raises(Conflict):
        ipam.allocate_address("n", "b", "10.9.0.1")  # the gateway
    for bad in ("10.10.0.5", "10.9.0.0", "10.9.0.255"):
        with pytest.raises(InvalidParameter):
            ipam.allocate_address("n", "b", bad)
    with pytest.raises(NotFound):
        ipam.allocate_address("missing", "b")


def test_concurrent_allocations_get_distinct_addresses(open_store):
    ipam = Ipam(open_store())
    ipam.allocate_subnet("n", "10.9.0.0/24")
    results: list[IPv4Address] = []
    lock = threading.Lock()

    def grab(i: int) -> None:
        for j in range(10):
            address = ipam.allocate_address("n", f"ep{i}-{j}")
            with lock:
                results.append(address)

    threads = [threading.Thread(target=grab, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 40 and len(set(results)) == 40


def test_release_subnet_frees_it_for_the_next_network(open_store):
    ipam = Ipam(open_store(), pools=[AddressPool(IPv4Network("10.100.0.0/23"), 24)])
    assert ipam.allocate_subnet("a").subnet == IPv4Network("10.100.0.0/24")
    assert ipam.allocate_subnet("b").subnet == IPv4Network("10.100.1.0/24")
    with pytest.raises(PoolExhausted):
        ipam.allocate_subnet("c")
    ipam.release_subnet("a")
    assert ipam.allocate_subnet("c").subnet == IPv4Network("10.100.0.0/24")
    with pytest.raises(NotFound):
        ipam.addresses("a")


@pytest.mark.needs_root
def test_occupied_networks_reads_the_given_host_netns(host_ns, names, tmp_path):
    bridge.create_bridge(names.link("lan"), IPv4Interface("172.18.3.1/24"), host_netns=host_ns)
    occupied = occupied_networks(host_ns)
    assert occupied == [IPv4Network("172.18.3.0/24")]
    ipam = Ipam(JsonIpamStore(tmp_path / "ipam.json"))
    assert ipam.allocate_subnet("bridge", avoid=occupied).subnet == IPv4Network("172.19.0.0/16")
