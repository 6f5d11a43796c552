"""berthd's listener and system endpoints, driven by the real docker CLI and docker-py."""

from __future__ import annotations

import grp
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import docker
import pytest

from tests.api.conftest import REPO, RunningDaemon, start_berthd, stop


def raw_get(sock: Path, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(sock))
        s.sendall(f"{method} {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    return status, headers, body


def test_docker_cli_version_reports_berth(berthd: RunningDaemon) -> None:
    out = subprocess.run(
        ["docker", "version", "--format", "{{json .Server}}"], env=berthd.env(), capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    server = json.loads(out.stdout)
    assert server["Platform"]["Name"] == "Berth Engine"
    assert server["ApiVersion"] == "1.51"
    assert server["MinAPIVersion"] == "1.24"


def test_docker_cli_info_reads_host_facts(berthd: RunningDaemon) -> None:
    out = subprocess.run(["docker", "info", "--format", "{{json .}}"], env=berthd.env(), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["NCPU"] == os.cpu_count()
    assert info["KernelVersion"] == os.uname().release
    assert info["DockerRootDir"] == str(berthd.root / "data")


def test_ping_headers_match_what_clients_read(berthd: RunningDaemon) -> None:
    for method in ("GET", "HEAD"):
        status, headers, body = raw_get(berthd.socket, "/_ping", method)
        assert status == 200
        assert headers["api-version"] == "1.51"
        assert headers["builder-version"] == "1"
        assert headers["cache-control"] == "no-cache, no-store, must-revalidate"
        assert body == (b"OK" if method == "GET" else b"")


def test_docker_py_negotiates_and_pings(berthd: RunningDaemon) -> None:
    client = docker.DockerClient(base_url=berthd.docker_host, version="auto")
    try:
        assert client.ping() is True
        assert client.version()["Platform"]["Name"] == "Berth Engine"
        assert client.api.api_version == "1.51"
    finally:
        client.close()


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/v1.99/version", 400, "client version 1.99 is too new. Maximum supported API version is 1.51"),
        ("/v1.12/version", 400, "client version 1.12 is too old. Minimum supported API version is 1.24"),
        ("/v1.51/no/such/endpoint", 404, "page not found"),
    ],
)
def test_errors_are_docker_json(berthd: RunningDaemon, path: str, status: int, message: str) -> None:
    got, headers, body = raw_get(berthd.socket, path)
    assert got == status
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["message"].startswith(message)
    assert berthd.proc.poll() is None


def test_malformed_http_gets_400_and_daemon_survives(berthd: RunningDaemon) -> None:
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(berthd.socket))
        s.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        reply = s.recv(4096)
    assert reply.startswith(b"HTTP/1.1 400")
    assert raw_get(berthd.socket, "/_ping")[0] == 200


def test_socket_is_not_world_accessible(berthd: RunningDaemon) -> None:
    mode = stat.S_IMODE(berthd.socket.stat().st_mode)
    assert mode == 0o660


def test_second_daemon_on_same_socket_is_refused(berthd: RunningDaemon) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "engine.daemon.main", "-H", berthd.docker_host,
         "--data-root", str(berthd.root / "data2"), "--exec-root", str(berthd.root / "run2"),
         "--bridge=none", "--iptables=false"],  # the host's netns: no bridge, no rules
        capture_output=True, text=True, cwd=REPO, timeout=30,
    )
    assert out.returncode == 1
    assert "already listening" in out.stderr
    assert raw_get(berthd.socket, "/_ping")[0] == 200


def test_stale_socket_is_replaced(run_tag: str) -> None:
    with tempfile.TemporaryDirectory(prefix=f"{run_tag}-api-") as tmp:
        root = Path(tmp)
        (root / "run").mkdir()
        stale = socket.socket(socket.AF_UNIX)
        stale.bind(str(root / "run" / "berth.sock"))
        stale.close()  # bound, never listening: what a crashed daemon leaves
        daemon = start_berthd(root)
        try:
            assert raw_get(daemon.socket, "/_ping")[0] == 200
        finally:
            stop(daemon)


def test_refuses_non_loopback_tcp_without_tls(run_tag: str) -> None:
    with tempfile.TemporaryDirectory(prefix=f"{run_tag}-api-") as tmp:
        out = subprocess.run(
            [sys.executable, "-m", "engine.daemon.main", "-H", "tcp://0.0.0.0:2375",
             "--data-root", f"{tmp}/data", "--exec-root", f"{tmp}/run", "--bridge=none", "--iptables=false"],
            capture_output=True, text=True, cwd=REPO, timeout=30,
        )
    assert out.returncode == 1
    assert "refusing to listen on tcp://0.0.0.0:2375 without --tlsverify" in out.stderr
    assert "Traceback" not in out.stderr


def test_loopback_tcp_serves_the_cli(run_tag: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix=f"{run_tag}-api-") as tmp:
        daemon = start_berthd(Path(tmp), "-H", f"tcp://127.0.0.1:{port}", host_netns=True)
        try:
            out = subprocess.run(
                ["docker", "-H", f"tcp://127.0.0.1:{port}", "version", "--format", "{{.Server.Platform.Name}}"],
                capture_output=True, text=True,
            )
            assert out.stdout.strip() == "Berth Engine", out.stderr
        finally:
            stop(daemon)


def test_unknown_daemon_json_key_is_refused(run_tag: str) -> None:
    with tempfile.TemporaryDirectory(prefix=f"{run_tag}-api-") as tmp:
        cfg = Path(tmp) / "daemon.json"
        cfg.write_text(json.dumps({"registry-mirrors": [], "no-such-option": 1}))
        out = subprocess.run(
            [sys.executable, "-m", "engine.daemon.main", "--config-file", str(cfg), "--data-root", f"{tmp}/d"],
            capture_output=True, text=True, cwd=REPO, timeout=30,
        )
    assert out.returncode == 1
    assert "unknown option(s): no-such-option" in out.stderr


def test_info_reports_insecure_registries_like_dockerd(run_tag: str) -> None:
    from tests.api.conftest import running_berthd

    config = {"insecure-registries": ["10.1.2.0/24", "myregistry.local:5000"]}
    with running_berthd(run_tag, config=config) as daemon:
        registry = json.loads(raw_get(daemon.socket, "/info")[2])["RegistryConfig"]
    assert registry["InsecureRegistryCIDRs"] == ["127.0.0.0/8", "10.1.2.0/24"]
    assert registry["IndexConfigs"]["myregistry.local:5000"]["Secure"] is False


def test_sighup_reloads_mirrors_and_sigterm_removes_socket(run_tag: str) -> None:
    with tempfile.TemporaryDirectory(prefix=f"{run_tag}-api-") as tmp:
        root = Path(tmp)
        cfg = root / "daemon.json"
        cfg.write_text(json.dumps({"registry-mirrors": ["http://127.0.0.1:5000"]}))
        daemon = start_berthd(root, "--config-file", str(cfg))
        try:
            info = json.loads(raw_get(daemon.socket, "/info")[2])
            assert info["RegistryConfig"]["Mirrors"] == ["http://127.0.0.1:5000"]
            cfg.write_text(json.dumps({"registry-mirrors": ["http://127.0.0.1:5001"]}))
            daemon.proc.send_signal(signal.SIGHUP)
            for _ in range(200):
                info = json.loads(raw_get(daemon.socket, "/info")[2])
                if info["RegistryConfig"]["Mirrors"] == ["http://127.0.0.1:5001"]:
                    break
                subprocess.run(["sleep", "0.05"])
            assert info["RegistryConfig"]["Mirrors"] == ["http://127.0.0.1:5001"]
            daemon.proc.send_signal(signal.SIGTERM)
            assert daemon.proc.wait(10) == 0
            assert not daemon.socket.exists()
            assert not (root / "run" / "berthd.pid").exists()
        finally:
            stop(daemon)


def _second_berthd(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A berthd in the host's netns (no bridge, no rules) that is expected to refuse to start."""
    return subprocess.run(
        [sys.executable, "-m", "engine.daemon.main", "-H", f"unix://{root}/second.sock",
         "--data-root", str(root / "data2"), "--exec-root", str(root / "run2"), "--bridge=none",
         "--iptables=false", *args],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )


@pytest.mark.parametrize("group", ["daemon", "4242"])
def test_group_owns_the_socket(run_tag: str, group: str) -> None:
    from tests.api.conftest import running_berthd

    gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
    with running_berthd(run_tag, "--group", group) as daemon:
        st = daemon.socket.stat()
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, gid, 0o660)


def test_an_unknown_socket_group_stops_the_start(berthd: RunningDaemon) -> None:
    out = _second_berthd(berthd.root, "--group", "no-such-group-berth")
    assert out.returncode == 1
    assert "group no-such-group-berth not found" in out.stderr and "Traceback" not in out.stderr
    assert not (berthd.root / "second.sock").exists()


def test_pidfile_names_the_daemon_and_refuses_a_second_one(berthd: RunningDaemon) -> None:
    pidfile = berthd.root / "run" / "berthd.pid"  # what the fixture passes as --pidfile
    assert pidfile.read_text() == f"{berthd.proc.pid}\n"
    out = _second_berthd(berthd.root, "--pidfile", str(pidfile))
    assert out.returncode == 1
    assert f"pid file {pidfile} names a running process ({berthd.proc.pid})" in out.stderr
    assert pidfile.read_text() == f"{berthd.proc.pid}\n"  # left as it was
    assert raw_get(berthd.socket, "/_ping")[0] == 200


def test_sighup_applies_debug_insecure_registries_and_log_opts(run_tag: str) -> None:
    """The keys SIGHUP reloads (registry-mirrors has its own test) take effect; a broken file changes nothing."""
    from tests.api.conftest import load_images, remove_all_containers, running_berthd, seed_archives
    from tests.api.test_containers import _wait_for

    first = {"debug": False, "insecure-registries": [], "log-opts": {"max-size": "10m"}}
    with running_berthd(run_tag, config=first) as daemon:
        load_images(daemon, seed_archives("busybox"))
        try:
            cfg = daemon.root / "daemon.json"
            info = json.loads(raw_get(daemon.socket, "/info")[2])
            assert info["Debug"] is False and "10.9.8.0/24" not in info["RegistryConfig"]["InsecureRegistryCIDRs"]
            cfg.write_text(json.dumps({"debug": True, "insecure-registries": ["10.9.8.0/24"],
                                       "log-opts": {"max-size": "1k", "max-file": "2"}}))
            daemon.proc.send_signal(signal.SIGHUP)
            _wait_for(lambda: "SIGHUP: reloaded debug, insecure-registries, log-opts" in daemon.log_text(),
                      "the reload")
            info = json.loads(raw_get(daemon.socket, "/info")[2])
            assert info["Debug"] is True
            assert "10.9.8.0/24" in info["RegistryConfig"]["InsecureRegistryCIDRs"]
            # A container made after the reload logs with the new rotation: 1 KiB files, two of them.
            chatty = ["sh", "-c", "for i in $(seq 1 300); do echo line-$i; done"]
            out = subprocess.run(["docker", "run", "--name", "chatty", "busybox", *chatty], env=daemon.env(),
                                 capture_output=True, text=True, timeout=60)
            assert out.returncode == 0 and out.stdout.endswith("line-300\n"), out.stderr
            logs = subprocess.run(["docker", "logs", "chatty"], env=daemon.env(), capture_output=True, text=True,
                                  timeout=60).stdout
            assert logs.endswith("line-300\n") and "line-1\n" not in logs and len(logs) < 2048
            # A file that does not parse: the running configuration stays.
            cfg.write_text("{not json")
            daemon.proc.send_signal(signal.SIGHUP)
            _wait_for(lambda: "SIGHUP: keeping the old configuration" in daemon.log_text(), "the refused reload")
            info = json.loads(raw_get(daemon.socket, "/info")[2])
            assert info["Debug"] is True and "10.9.8.0/24" in info["RegistryConfig"]["InsecureRegistryCIDRs"]
        finally:
            remove_all_containers(daemon)
