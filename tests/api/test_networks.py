"""Container networking through berthd with the real docker CLI (and docker-py).

Every berthd here runs in its own run-tagged network namespace (tests/api/conftest.py):
its bridge, veths, iptables rules and published ports live there, and the test reaches
them by running clients in that namespace (`daemon.in_netns(...)`); nothing touches
the host's network.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import (
    RestartableBerthd,
    RunningDaemon,
    berthd_with_images,
    load_images,
    remove_all_containers,
    seed_archives,
    stop,
)
from tests.api.test_containers import _wait_for, docker_cli
from tests.api.test_push import raw_request
from tests.fixtures.cleanup import register_process

pytestmark = pytest.mark.needs_root

# busybox httpd serving one page; `-f` keeps it in the foreground.
HTTPD = ["sh", "-c", "mkdir -p /www && echo hello-from-$(hostname) > /www/index.html && exec httpd -f -h /www"]


@pytest.fixture(scope="module")
def daemon(run_tag: str) -> Iterator[RunningDaemon]:
    with berthd_with_images(run_tag, "busybox") as running:
        yield running


def ok(daemon: RunningDaemon, *args: str, timeout: float = 60) -> str:
    out = docker_cli(daemon, *args, timeout=timeout)
    assert out.returncode == 0, f"docker {' '.join(args)}: {out.stderr}"
    return out.stdout


def fetch(daemon: RunningDaemon, url: str) -> subprocess.CompletedProcess[str]:
    """An HTTP GET from the daemon's netns (the host's view, in the test's namespace)."""
    return subprocess.run(daemon.in_netns("curl", "-sS", "--max-time", "10", url), capture_output=True, text=True,
                          timeout=30)


def wait_http(daemon: RunningDaemon, url: str) -> str:
    _wait_for(lambda: fetch(daemon, url).returncode == 0, f"{url} to answer")
    return fetch(daemon, url).stdout


def inspect(daemon: RunningDaemon, name: str) -> dict:  # type: ignore[type-arg]
    return dict(json.loads(ok(daemon, "inspect", name))[0])


def links(daemon: RunningDaemon) -> list[str]:
    out = subprocess.run(daemon.in_netns("ip", "-o", "link", "show"), capture_output=True, text=True, check=True)
    return [line.split(":")[1].strip().split("@")[0] for line in out.stdout.splitlines()]


def firewall(daemon: RunningDaemon) -> str:
    return subprocess.run(daemon.in_netns("iptables-save"), capture_output=True, text=True, check=True).stdout


def cleanup(daemon: RunningDaemon, *names: str) -> None:
    docker_cli(daemon, "rm", "-f", *names)


def test_default_networks_are_listed_like_dockerd(daemon: RunningDaemon) -> None:
    rows = ok(daemon, "network", "ls", "--format", "{{.Name}} {{.Driver}} {{.Scope}}").split("\n")
    assert {"bridge bridge local", "host host local", "none null local"} <= set(rows)
    bridge = json.loads(ok(daemon, "network", "inspect", "bridge"))[0]
    subnet = bridge["IPAM"]["Config"][0]["Subnet"]
    assert subnet != "172.17.0.0/16"
    assert bridge["Options"]["com.docker.network.bridge.name"] == "berth0"
    assert "berth0" in links(daemon)


def test_user_network_resolves_names_and_aliases(daemon: RunningDaemon) -> None:
    try:
        ok(daemon, "network", "create", "appnet")
        ok(daemon, "run", "-d", "--name", "web", "--network", "appnet", "--network-alias", "frontend", "busybox",
           *HTTPD)
        for host in ("web", "frontend"):
            out = docker_cli(daemon, "run", "--rm", "--network", "appnet", "busybox", "sh", "-c",
                             f"for i in $(seq 50); do wget -qO- http://{host}/ && exit 0; sleep 0.2; done; exit 1")
            assert out.returncode == 0, out.stderr
            assert out.stdout.startswith("hello-from-"), out.stdout
        info = inspect(daemon, "web")["NetworkSettings"]["Networks"]["appnet"]
        assert "frontend" in info["Aliases"]
        assert info["IPAddress"]
        ok(daemon, "rename", "web", "web2")  # the resolver follows a rename
        renamed = ok(daemon, "run", "--rm", "--network", "appnet", "busybox", "sh", "-c",
                     "wget -qO- http://web2/; nslookup web >/dev/null 2>&1 && echo old-name-resolves; true")
        assert renamed.startswith("hello-from-") and "old-name-resolves" not in renamed, renamed
    finally:
        cleanup(daemon, "web", "web2")
        docker_cli(daemon, "network", "rm", "appnet")


def test_default_bridge_does_not_resolve_container_names(daemon: RunningDaemon) -> None:
    try:
        ok(daemon, "run", "-d", "--name", "quiet", "busybox", "sleep", "300")
        out = docker_cli(daemon, "run", "--rm", "busybox", "sh", "-c", "cat /etc/resolv.conf; nslookup quiet")
        assert out.returncode != 0
        assert "nameserver 172." not in out.stdout  # no embedded resolver on the default bridge
    finally:
        cleanup(daemon, "quiet")


def test_published_port_reaches_httpd_on_loopback_and_bridge_gateway(daemon: RunningDaemon) -> None:
    try:
        ok(daemon, "run", "-d", "--name", "pub", "-p", "18080:80", "busybox", *HTTPD)
        assert wait_http(daemon, "http://127.0.0.1:18080/").startswith("hello-from-")
        gateway = inspect(daemon, "pub")["NetworkSettings"]["Gateway"]
        assert fetch(daemon, f"http://{gateway}:18080/").stdout.startswith("hello-from-")  # the kernel's DNAT
        assert ok(daemon, "port", "pub").strip() == "80/tcp -> 0.0.0.0:18080"
        assert "18080" in ok(daemon, "ps", "--format", "{{.Ports}}", "--filter", "name=pub")
        # hairpin: another container reaches the published port through the host side
        out = docker_cli(daemon, "run", "--rm", "busybox", "wget", "-qO-", f"http://{gateway}:18080/")
        assert out.returncode == 0 and out.stdout.startswith("hello-from-"), out.stderr
        # and the container reaches its own published port (the bridge port's hairpin mode)
        out = docker_cli(daemon, "exec", "pub", "wget", "-qO-", f"http://{gateway}:18080/")
        assert out.returncode == 0 and out.stdout.startswith("hello-from-"), out.stderr
    finally:
        cleanup(daemon, "pub")
    assert fetch(daemon, "http://127.0.0.1:18080/").returncode != 0
    assert "18080" not in firewall(daemon)


def test_random_host_port_is_reported_by_docker_port(daemon: RunningDaemon) -> None:
    try:
        ok(daemon, "run", "-d", "--name", "rnd", "-p", "80", "busybox", *HTTPD)
        line = ok(daemon, "port", "rnd", "80").strip().splitlines()[0]
        host_port = int(line.rsplit(":", 1)[1])
        assert host_port > 0
        assert wait_http(daemon, f"http://127.0.0.1:{host_port}/").startswith("hello-from-")
        ports = inspect(daemon, "rnd")["NetworkSettings"]["Ports"]
        assert ports["80/tcp"][0]["HostPort"] == str(host_port)
    finally:
        cleanup(daemon, "rnd")


# Busybox has no UDP server; Debian's perl-base has IO::Socket::INET: an echo server on 53/udp.
UDP_ECHO = ["perl", "-MIO::Socket::INET", "-e",
            "$|=1; my $s = IO::Socket::INET->new(LocalPort => 53, Proto => 'udp') or die $!; print qq(ready\\n); "
            "while (1) { my $peer = $s->recv(my $data, 1024); $s->send(qq(echo:$data)) }"]


def test_udp_port_is_published(daemon: RunningDaemon) -> None:
    load_images(daemon, seed_archives("debian-bookworm-slim"))
    try:
        ok(daemon, "run", "-d", "--name", "udp", "-p", "15353:53/udp", "debian:bookworm-slim", *UDP_ECHO)
        _wait_for(lambda: "ready" in docker_cli(daemon, "logs", "udp").stdout, "the UDP echo server")
        ask = ("import socket, sys; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2); "
               "s.sendto(b'ping', (sys.argv[1], 15353)); print(s.recv(100).decode())")
        gateway = inspect(daemon, "udp")["NetworkSettings"]["Gateway"]
        for target in ("127.0.0.1", gateway):  # the userland proxy, then the kernel's DNAT
            out = subprocess.run(daemon.in_netns(sys.executable, "-c", ask, target), capture_output=True, text=True,
                                 timeout=30)
            assert out.stdout.strip() == "echo:ping", out.stderr
    finally:
        cleanup(daemon, "udp")


def test_none_has_only_loopback_and_host_sees_the_daemon_netns(daemon: RunningDaemon) -> None:
    none = ok(daemon, "run", "--rm", "--network", "none", "busybox", "ip", "-o", "link")
    assert [line.split(":")[1].strip() for line in none.splitlines()] == ["lo"]
    host = ok(daemon, "run", "--rm", "--network", "host", "busybox", "ip", "-o", "link")
    assert "berth0" in host
    try:
        ok(daemon, "run", "-d", "--name", "loner", "--network", "none", "busybox", "sleep", "300")
        ok(daemon, "run", "-d", "--name", "bridged", "busybox", "sleep", "300")
        rows = ok(daemon, "ps", "--filter", "name=loner", "--filter", "name=bridged", "--format",
                  "{{.Names}} {{.Networks}}").splitlines()
        assert sorted(rows) == ["bridged bridge", "loner none"]
        assert list(inspect(daemon, "loner")["NetworkSettings"]["Networks"]) == ["none"]
        none_net = json.loads(ok(daemon, "network", "inspect", "none"))[0]
        assert [c["Name"] for c in none_net["Containers"].values()] == ["loner"]
    finally:
        cleanup(daemon, "loner", "bridged")


def test_container_reaches_a_server_on_the_bridge_gateway(daemon: RunningDaemon, tmp_path: Path) -> None:
    gateway = json.loads(ok(daemon, "network", "inspect", "bridge"))[0]["IPAM"]["Config"][0]["Gateway"]
    (tmp_path / "index.html").write_text("served-by-the-test\n")
    server = subprocess.Popen(daemon.in_netns(sys.executable, "-m", "http.server", "--bind", gateway, "18099"),
                              cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    register_process(server.pid)
    try:
        out = docker_cli(daemon, "run", "--rm", "--add-host", "host.docker.internal:host-gateway", "busybox", "sh",
                         "-c", "grep host.docker.internal /etc/hosts; for i in $(seq 50); do "
                         "wget -qO- http://host.docker.internal:18099/ && exit 0; sleep 0.2; done; exit 1")
        assert out.returncode == 0, out.stderr
        assert f"{gateway}\thost.docker.internal" in out.stdout
        assert "served-by-the-test" in out.stdout
    finally:
        server.kill()
        server.wait()


def test_etc_files_hostname_dns_and_extra_hosts(daemon: RunningDaemon) -> None:
    out = ok(daemon, "run", "--rm", "--hostname", "box1", "--dns", "10.9.8.7", "--dns-search", "example.test",
             "--dns-option", "ndots:3", "--add-host", "db:10.1.2.3", "busybox", "sh", "-c",
             "hostname; cat /etc/resolv.conf /etc/hosts; grep -E ' /etc/(hosts|hostname|resolv.conf) ' "
             "/proc/self/mountinfo | wc -l")
    lines = out.splitlines()
    assert lines[0] == "box1"
    assert "nameserver 10.9.8.7" in lines and "search example.test" in lines and "options ndots:3" in lines
    assert "10.1.2.3\tdb" in lines
    assert any(line.endswith("\tbox1") for line in lines)
    assert lines[-1].strip() == "3"  # bind-mounted, like Docker


def test_container_network_mode_shares_the_namespace(daemon: RunningDaemon) -> None:
    try:
        ok(daemon, "run", "-d", "--name", "owner", "busybox", *HTTPD)
        ip = inspect(daemon, "owner")["NetworkSettings"]["IPAddress"]
        out = ok(daemon, "run", "--rm", "--network", "container:owner", "busybox", "sh", "-c",
                 "ip -o -4 addr show eth0; for i in $(seq 50); do wget -qO- http://127.0.0.1/ && exit 0; "
                 "sleep 0.2; done; exit 1")
        assert ip in out and "hello-from-" in out
    finally:
        cleanup(daemon, "owner")


def test_network_connect_disconnect_inspect_and_events(daemon: RunningDaemon) -> None:
    try:
        ok(daemon, "network", "create", "--subnet", "10.77.0.0/24", "--gateway", "10.77.0.1", "--label", "k=v",
           "side")
        ok(daemon, "run", "-d", "--name", "mover", "busybox", "sleep", "300")
        ok(daemon, "network", "connect", "--ip", "10.77.0.50", "side", "mover")
        out = ok(daemon, "exec", "mover", "ip", "-o", "-4", "addr")
        assert "10.77.0.50/24" in out
        net = json.loads(ok(daemon, "network", "inspect", "side"))[0]
        assert net["Labels"] == {"k": "v"}
        assert net["IPAM"]["Config"] == [{"Subnet": "10.77.0.0/24", "Gateway": "10.77.0.1"}]
        (member,) = net["Containers"].values()
        assert member["Name"] == "mover" and member["IPv4Address"] == "10.77.0.50/24"
        assert ok(daemon, "network", "ls", "-q", "--filter", "label=k=v").strip() == net["Id"][:12]
        ok(daemon, "network", "disconnect", "side", "mover")
        assert "10.77.0.50" not in ok(daemon, "exec", "mover", "ip", "-o", "-4", "addr")
        events = ok(daemon, "events", "--since", "0", "--until", f"{time.time():.3f}", "--filter", "type=network",
                    "--format", "{{.Action}}")
        assert {"create", "connect", "disconnect"} <= set(events.split())
    finally:
        cleanup(daemon, "mover")
        docker_cli(daemon, "network", "rm", "side")


def test_bad_input_is_refused_with_dockers_errors(daemon: RunningDaemon) -> None:
    try:
        ok(daemon, "network", "create", "--subnet", "10.88.0.0/16", "first")
        out = docker_cli(daemon, "network", "create", "--subnet", "10.88.5.0/24", "second")
        assert out.returncode != 0 and "overlaps" in out.stderr
        out = docker_cli(daemon, "network", "create", "first")
        assert out.returncode != 0 and "already exists" in out.stderr
        out = docker_cli(daemon, "run", "--rm", "--network", "first", "--ip", "10.99.0.5", "busybox", "true")
        assert out.returncode != 0 and "10.99.0.5" in out.stderr
        out = docker_cli(daemon, "run", "--rm", "--network", "nosuchnet", "busybox", "true")
        assert out.returncode != 0 and "nosuchnet" in out.stderr and "Unable to find image" not in out.stderr
        ok(daemon, "run", "-d", "--name", "user", "--network", "first", "busybox", "sleep", "300")
        status, body = raw_request(daemon.socket, "DELETE", "/networks/first")
        assert status == 409, body
        out = docker_cli(daemon, "network", "rm", "first")
        assert out.returncode != 0 and "active endpoints" in out.stderr
        status, body = raw_request(daemon.socket, "DELETE", "/networks/bridge")
        assert status == 403, body
        bad = {"Image": "busybox", "HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": "99999"}]}}}
        status, body = raw_request(daemon.socket, "POST", "/containers/create", body=json.dumps(bad).encode(),
                                   headers={"Content-Type": "application/json"})
        assert status == 400 and b"invalid host port" in body
        bad["HostConfig"] = {"PortBindings": {"eighty/tcp": [{"HostPort": "8080"}]}}
        status, body = raw_request(daemon.socket, "POST", "/containers/create", body=json.dumps(bad).encode(),
                                   headers={"Content-Type": "application/json"})
        assert status == 400
        bad = {"Image": "busybox", "ExposedPorts": {"http/tcp": {}}, "HostConfig": {"PublishAllPorts": True}}
        status, body = raw_request(daemon.socket, "POST", "/containers/create", body=json.dumps(bad).encode(),
                                   headers={"Content-Type": "application/json"})
        assert status == 400 and b"invalid port specification" in body  # moby verifyContainerSettings
    finally:
        cleanup(daemon, "user")
        docker_cli(daemon, "network", "rm", "first")


def test_network_create_refuses_address_families_it_lacks(daemon: RunningDaemon) -> None:
    """EnableIPv6, EnableIPv4=false or a non-boolean: a 400 that says why, never silently ignored."""
    for body, says in (({"EnableIPv6": True}, b"IPv6 is not implemented"),
                       ({"EnableIPv4": False}, b"IPv4 or IPv6 must be enabled"),
                       ({"EnableIPv4": "no"}, b"EnableIPv4 must be a boolean")):
        status, answer = raw_request(daemon.socket, "POST", "/networks/create",
                                     body=json.dumps({"Name": "fam", **body}).encode(),
                                     headers={"Content-Type": "application/json"})
        assert status == 400 and says in json.loads(answer)["message"].encode(), (body, answer)
    status, _ = raw_request(daemon.socket, "GET", "/networks/fam")
    assert status == 404


def test_port_in_use_fails_cleanly(daemon: RunningDaemon) -> None:
    try:
        ok(daemon, "run", "-d", "--name", "holder", "-p", "18181:80", "busybox", *HTTPD)
        before_links = links(daemon)
        out = docker_cli(daemon, "run", "-d", "--name", "loser", "-p", "18181:80", "busybox", *HTTPD)
        assert out.returncode != 0
        assert "port is already allocated" in out.stderr
        state = inspect(daemon, "loser")["State"]
        assert state["Status"] == "created" and not state["Running"]
        assert links(daemon) == before_links  # no veth left behind
        assert inspect(daemon, "loser")["NetworkSettings"]["Networks"]["bridge"]["IPAddress"] == ""
        # a start that fails after the network was set up gives everything back too
        out = docker_cli(daemon, "run", "-d", "--name", "broken", "-p", "18182:80", "busybox", "no-such-command")
        assert out.returncode != 0 and "no-such-command" in out.stderr
        assert links(daemon) == before_links
        ok(daemon, "run", "-d", "--name", "reuser", "-p", "18182:80", "busybox", *HTTPD)
    finally:
        cleanup(daemon, "holder", "loser", "broken", "reuser")


def test_rm_of_fifty_containers_leaves_nothing_behind(daemon: RunningDaemon) -> None:
    names = [f"many{i}" for i in range(50)]
    try:
        for index, name in enumerate(names):
            ok(daemon, "run", "-d", "--name", name, *(["-p", "80"] if index % 5 == 0 else []), "busybox", "sleep",
               "300")
        assert sum(1 for link in links(daemon) if link.startswith("veth")) == 50
    finally:
        out = docker_cli(daemon, "rm", "-f", *names, timeout=300)
    assert out.returncode == 0, out.stderr
    assert not [link for link in links(daemon) if link.startswith("veth")]
    assert "berth:ep:" not in firewall(daemon)
    netns_dir = daemon.root / "run" / "netns"
    assert not list(netns_dir.iterdir()) if netns_dir.exists() else True
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(netns_dir) not in mounts


def test_docker_py_network_calls(daemon: RunningDaemon) -> None:
    import docker

    client = docker.DockerClient(base_url=daemon.docker_host, version="auto")
    try:
        net = client.networks.create("pynet", driver="bridge", labels={"from": "docker-py"},
                                     ipam=docker.types.IPAMConfig(pool_configs=[
                                         docker.types.IPAMPool(subnet="10.66.0.0/24")]))
        assert client.networks.get("pynet").attrs["IPAM"]["Config"][0]["Subnet"] == "10.66.0.0/24"
        container = client.containers.run("busybox", ["sleep", "300"], detach=True, name="pyc")
        net.connect(container, aliases=["pyalias"])
        net.reload()
        assert [c.name for c in net.containers] == ["pyc"]
        net.disconnect(container)
        container.remove(force=True)
        assert [n.name for n in client.networks.list(names=["pynet"])] == ["pynet"]
        net.remove()
        with pytest.raises(docker.errors.NotFound):
            client.networks.get("pynet")
        client.networks.create("prunable")
        assert "prunable" in (client.networks.prune()["NetworksDeleted"] or [])
    finally:
        client.close()


@pytest.mark.parametrize("halt", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "kill-9"])
def test_daemon_restart_keeps_networks_addresses_and_ports(run_tag: str, halt: int) -> None:
    archives = seed_archives("busybox")
    with tempfile.TemporaryDirectory(prefix=f"{run_tag}-nr-") as tmp:
        handle = RestartableBerthd(Path(tmp), run_tag)
        daemon = handle.daemon
        try:
            load_images(daemon, archives)
            ok(daemon, "network", "create", "keep")
            ok(daemon, "run", "-d", "--name", "kweb", "--network", "keep", "-p", "18282:80", "-p", "80", "busybox",
               *HTTPD)
            ok(daemon, "run", "-d", "--name", "kgone", "-p", "18283:80", "busybox", "sleep", "300")
            gone_pid = inspect(daemon, "kgone")["State"]["Pid"]
            before = inspect(daemon, "kweb")["NetworkSettings"]
            assert wait_http(daemon, "http://127.0.0.1:18282/").startswith("hello-from-")
            handle.daemon.proc.send_signal(halt)
            handle.daemon.proc.wait(30)
            os.kill(gone_pid, signal.SIGKILL)  # a container that ends while no daemon is there
            _wait_for(lambda: not os.path.exists(f"/proc/{gone_pid}"), "the container to die")
            daemon = handle.start()
            assert inspect(daemon, "kgone")["State"]["Status"] == "exited"
            assert inspect(daemon, "kgone")["NetworkSettings"]["Ports"] == {}
            ok(daemon, "run", "-d", "--name", "kheir", "-p", "18283:80", "busybox", "sleep", "300")  # port freed
            after = inspect(daemon, "kweb")["NetworkSettings"]
            assert after["Networks"]["keep"]["IPAddress"] == before["Networks"]["keep"]["IPAddress"]
            assert after["Ports"] == before["Ports"]
            assert wait_http(daemon, "http://127.0.0.1:18282/").startswith("hello-from-")
            random_port = after["Ports"]["80/tcp"][0]["HostPort"]
            assert wait_http(daemon, f"http://127.0.0.1:{random_port}/").startswith("hello-from-")
            out = docker_cli(daemon, "run", "--rm", "--network", "keep", "busybox", "wget", "-qO-", "http://kweb/")
            assert out.returncode == 0 and out.stdout.startswith("hello-from-"), out.stderr
            # a new container does not get the address the running one still holds
            ok(daemon, "run", "-d", "--name", "kother", "--network", "keep", "busybox", "sleep", "300")
            other = inspect(daemon, "kother")["NetworkSettings"]["Networks"]["keep"]["IPAddress"]
            assert other != after["Networks"]["keep"]["IPAddress"]
        finally:
            remove_all_containers(handle.daemon)
            stop(handle.daemon)


def test_daemon_network_flags(run_tag: str) -> None:
    from tests.api.conftest import running_berthd

    with running_berthd(run_tag, "--bip", "10.123.0.1/24", "--default-address-pool", "base=10.124.0.0/16,size=24",
                        "--mtu", "1400") as daemon:
        bridge = json.loads(ok(daemon, "network", "inspect", "bridge"))[0]
        assert bridge["IPAM"]["Config"] == [{"Subnet": "10.123.0.0/24", "Gateway": "10.123.0.1"}]
        assert bridge["Options"]["com.docker.network.driver.mtu"] == "1400"
        ok(daemon, "network", "create", "pooled")
        pooled = json.loads(ok(daemon, "network", "inspect", "pooled"))[0]
        assert pooled["IPAM"]["Config"][0]["Subnet"] == "10.124.0.0/24"
        assert "mtu 1400" in subprocess.run(daemon.in_netns("ip", "link", "show", "berth0"), capture_output=True,
                                            text=True).stdout
    config = {"bip": "10.125.0.1/24", "default-address-pools": [{"base": "10.126.0.0/16", "size": 24}],
              "userland-proxy": False, "ip-forward": True}
    with running_berthd(run_tag, config=config) as daemon:  # the same settings from daemon.json
        bridge = json.loads(ok(daemon, "network", "inspect", "bridge"))[0]
        assert bridge["IPAM"]["Config"] == [{"Subnet": "10.125.0.0/24", "Gateway": "10.125.0.1"}]
        ok(daemon, "network", "create", "pooled")
        assert json.loads(ok(daemon, "network", "inspect", "pooled"))[0]["IPAM"]["Config"][0]["Subnet"] == \
            "10.126.0.0/24"
    with running_berthd(run_tag, "--bridge=none", "--iptables=false") as daemon:
        load_images(daemon, seed_archives("busybox"))
        assert sorted(ok(daemon, "network", "ls", "--format", "{{.Name}}").split()) == ["host", "none"]
        assert "berth0" not in links(daemon)
        assert "BERTH" not in firewall(daemon)
        out = ok(daemon, "run", "--rm", "busybox", "ip", "-o", "link")
        assert [line.split(":")[1].strip() for line in out.splitlines()] == ["lo"]
        remove_all_containers(daemon)


def test_publish_all_two_networks_internal_and_ps_filters(daemon: RunningDaemon) -> None:
    try:
        ok(daemon, "network", "create", "--internal", "--subnet", "10.55.0.0/24", "inner")
        ok(daemon, "network", "create", "--subnet", "10.56.0.0/24", "outer")
        ok(daemon, "create", "--name", "multi", "--network", "outer", "--expose", "80", "--expose", "53/udp", "-P",
           "busybox", *HTTPD)
        ok(daemon, "network", "connect", "inner", "multi")  # a created container: wired at start
        ok(daemon, "start", "multi")
        addrs = ok(daemon, "exec", "multi", "ip", "-o", "-4", "addr")
        assert "10.56.0." in addrs and "10.55.0." in addrs
        route = ok(daemon, "exec", "multi", "ip", "route", "show", "default")
        assert "10.56.0.1" in route  # the first network carries the default route
        ports = inspect(daemon, "multi")["NetworkSettings"]["Ports"]
        assert set(ports) == {"80/tcp", "53/udp"} and all(ports.values())
        tcp_port = ports["80/tcp"][0]["HostPort"]
        assert wait_http(daemon, f"http://127.0.0.1:{tcp_port}/").startswith("hello-from-")
        # --internal: the network's containers reach each other but not the outside (the gateway here)
        ok(daemon, "run", "-d", "--name", "secluded", "--network", "inner", "busybox", "sleep", "300")
        outer_gw = "10.56.0.1"
        out = docker_cli(daemon, "exec", "secluded", "wget", "-T", "2", "-qO-", f"http://{outer_gw}:{tcp_port}/")
        assert out.returncode != 0
        inner_ip = inspect(daemon, "multi")["NetworkSettings"]["Networks"]["inner"]["IPAddress"]
        assert ok(daemon, "exec", "secluded", "wget", "-qO-", f"http://{inner_ip}/").startswith("hello-from-")
        for terms, expected in ((["network=inner"], {"multi", "secluded"}), (["network=outer"], {"multi"}),
                                (["publish=80"], {"multi"}), (["publish=53/udp"], {"multi"}),
                                (["expose=50-90/tcp"], {"multi"}), (["publish=8080"], set())):
            args = [arg for term in terms for arg in ("--filter", term)]
            assert set(ok(daemon, "ps", *args, "--format", "{{.Names}}").split()) == expected, terms
    finally:
        cleanup(daemon, "multi", "secluded")
        docker_cli(daemon, "network", "rm", "inner", "outer")


def test_network_prune_and_list_filters_with_the_cli(daemon: RunningDaemon) -> None:
    try:
        ok(daemon, "network", "create", "--label", "tier=a", "unused-a")
        ok(daemon, "network", "create", "--label", "tier=b", "unused-b")
        ok(daemon, "network", "create", "kept")
        ok(daemon, "run", "-d", "--name", "keeper", "--network", "kept", "busybox", "sleep", "300")
        names = ok(daemon, "network", "ls", "--filter", "type=custom", "--format", "{{.Name}}").split()
        assert sorted(names) == ["kept", "unused-a", "unused-b"]
        dangling = ok(daemon, "network", "ls", "--filter", "dangling=true", "--format", "{{.Name}}").split()
        assert sorted(dangling) == ["unused-a", "unused-b"]
        assert ok(daemon, "network", "ls", "--filter", "driver=null", "--format", "{{.Name}}").split() == ["none"]
        # until: only networks created before it go (all of these are younger than an hour).
        assert "unused" not in ok(daemon, "network", "prune", "-f", "--filter", "until=1h")
        out = ok(daemon, "network", "prune", "-f", "--filter", "label=tier=a")
        assert "unused-a" in out and "unused-b" not in out
        out = ok(daemon, "network", "prune", "-f", "--filter", f"until={int(time.time()) + 3600}")
        assert "unused-b" in out and "kept" not in out
        assert sorted(ok(daemon, "network", "ls", "--format", "{{.Name}}").split()) == ["bridge", "host", "kept",
                                                                                         "none"]
    finally:
        cleanup(daemon, "keeper")
        for name in ("kept", "unused-a", "unused-b"):
            docker_cli(daemon, "network", "rm", name)


def test_without_userland_proxy_loopback_is_dnated_by_the_kernel(run_tag: str) -> None:
    from tests.api.conftest import running_berthd

    with running_berthd(run_tag, "--userland-proxy=false") as daemon:
        load_images(daemon, seed_archives("busybox"))
        try:
            ok(daemon, "run", "-d", "--name", "kweb", "-p", "18383:80", "busybox", *HTTPD)
            assert wait_http(daemon, "http://127.0.0.1:18383/").startswith("hello-from-")
            rules = firewall(daemon)
            assert "-d 127.0.0.0/8" not in rules.split("-A OUTPUT", 1)[1].split("\n", 1)[0]  # loopback hooked too
            route_localnet = subprocess.run(daemon.in_netns("cat", "/proc/sys/net/ipv4/conf/berth0/route_localnet"),
                                            capture_output=True, text=True).stdout.strip()
            assert route_localnet == "1"
        finally:
            remove_all_containers(daemon)


def test_parallel_runs_get_distinct_addresses_and_ports(daemon: RunningDaemon) -> None:
    from concurrent.futures import ThreadPoolExecutor

    names = [f"par{i}" for i in range(10)]
    try:
        with ThreadPoolExecutor(len(names)) as pool:
            results = list(pool.map(lambda n: docker_cli(daemon, "run", "-d", "--name", n, "-p", "80", "busybox",
                                                         *HTTPD, timeout=120), names))
        assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
        settings = [inspect(daemon, n)["NetworkSettings"] for n in names]
        assert len({s["IPAddress"] for s in settings}) == len(names)
        ports = [s["Ports"]["80/tcp"][0]["HostPort"] for s in settings]
        assert len(set(ports)) == len(names)
        for port in ports:
            assert wait_http(daemon, f"http://127.0.0.1:{port}/").startswith("hello-from-")
    finally:
        with ThreadPoolExecutor(len(names)) as pool:
            list(pool.map(lambda n: docker_cli(daemon, "rm", "-f", n, timeout=120), names))
    assert not [link for link in links(daemon) if link.startswith("veth")]
    assert "berth:ep:" not in firewall(daemon)


# A one-name DNS server for --dns tests: answers every A query with 10.20.30.40.
FAKE_DNS = """
import socket, sys
from ipaddress import IPv4Address
from engine.network import dns_wire
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 53))
print("ready", flush=True)
while True:
    data, peer = s.recvfrom(4096)
    s.sendto(dns_wire.build_answer(dns_wire.parse_question(data), [IPv4Address("10.20.30.40")]), peer)
"""


def test_embedded_dns_forwards_to_the_containers_own_dns_servers(daemon: RunningDaemon) -> None:
    from tests.api.conftest import REPO

    server = subprocess.Popen(daemon.in_netns(sys.executable, "-c", FAKE_DNS, "127.0.0.99"), cwd=REPO,
                              stdout=subprocess.PIPE, text=True)
    register_process(server.pid)
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        ok(daemon, "network", "create", "dnsnet")
        out = ok(daemon, "run", "--rm", "--network", "dnsnet", "--dns", "127.0.0.99", "busybox", "sh", "-c",
                 "cat /etc/resolv.conf; nslookup -type=a anything.example.test")
        assert "10.20.30.40" in out, out
        assert "nameserver 127.0.0.99" not in out  # the container asks the embedded resolver, which forwards
    finally:
        server.kill()
        server.wait()
        docker_cli(daemon, "network", "rm", "dnsnet")


def test_a_created_container_does_not_hold_its_network(daemon: RunningDaemon) -> None:
    try:
        ok(daemon, "network", "create", "fleeting")
        ok(daemon, "create", "--name", "waiter", "--network", "fleeting", "busybox", "true")
        ok(daemon, "network", "rm", "fleeting")  # like dockerd: only connected endpoints hold a network
        out = docker_cli(daemon, "start", "waiter")
        assert out.returncode != 0 and "not found" in out.stderr, out.stderr
        assert inspect(daemon, "waiter")["State"]["Status"] == "created"
        assert not [link for link in links(daemon) if link.startswith("veth")]
    finally:
        cleanup(daemon, "waiter")
