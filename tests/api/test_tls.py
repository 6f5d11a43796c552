"""Mutual TLS on tcp 127.0.0.1: the docker CLI with client certs works; without, it does not."""

from __future__ import annotations

import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.api.server import ListenAddress
from engine.client import Client, EngineUnreachable
from engine.client.hosts import TLSConfig, parse_host
from tests.api.conftest import RunningDaemon, start_berthd, stop
from tests.fixtures.tls import KeyPair, TestCA


@dataclass
class TLSDaemon:
    daemon: RunningDaemon
    port: int
    ca: TestCA
    client: KeyPair


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def tls_daemon(run_tag: str) -> Iterator[TLSDaemon]:
    with tempfile.TemporaryDirectory(prefix=f"{run_tag}-tls-") as tmp:
        root = Path(tmp)
        ca = TestCA(root / "pki")
        server = ca.issue_server("berthd")
        client = ca.issue_client("client")
        port = _free_port()
        daemon = start_berthd(
            root, "-H", f"tcp://127.0.0.1:{port}", "--tlsverify", "--tlscacert", str(ca.cert_path),
            "--tlscert", str(server.cert_path), "--tlskey", str(server.key_path), host_netns=True,
        )
        try:
            yield TLSDaemon(daemon, port, ca, client)
        finally:
            stop(daemon)


def _docker(t: TLSDaemon, *tls_args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", "-H", f"tcp://127.0.0.1:{t.port}", *tls_args, "version", "--format", "{{.Server.Platform.Name}}"],
        capture_output=True, text=True, timeout=30, env=t.daemon.env(),
    )


def test_docker_cli_with_client_cert_works(tls_daemon: TLSDaemon) -> None:
    out = _docker(tls_daemon, "--tlsverify", "--tlscacert", str(tls_daemon.ca.cert_path),
                  "--tlscert", str(tls_daemon.client.cert_path), "--tlskey", str(tls_daemon.client.key_path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "Berth Engine"


def test_without_client_cert_the_handshake_fails(tls_daemon: TLSDaemon) -> None:
    out = _docker(tls_daemon, "--tlsverify", "--tlscacert", str(tls_daemon.ca.cert_path))
    assert out.returncode != 0
    assert "Berth Engine" not in out.stdout


def test_plain_http_is_refused(tls_daemon: TLSDaemon) -> None:
    out = _docker(tls_daemon)
    assert out.returncode != 0
    assert "Berth Engine" not in out.stdout


def test_berth_client_speaks_mutual_tls(tls_daemon: TLSDaemon) -> None:
    tls = TLSConfig(str(tls_daemon.ca.cert_path), str(tls_daemon.client.cert_path), str(tls_daemon.client.key_path))
    client = Client(parse_host(f"tcp://127.0.0.1:{tls_daemon.port}", tls))
    assert client.get("/version")["Platform"]["Name"] == "Berth Engine"
    anonymous = Client(parse_host(f"tcp://127.0.0.1:{tls_daemon.port}", TLSConfig(str(tls_daemon.ca.cert_path),
                                                                                    None, None)))
    with pytest.raises(EngineUnreachable):
        anonymous.get("/version")


def test_socket_activated_tcp_beyond_loopback_needs_mutual_tls(monkeypatch: pytest.MonkeyPatch) -> None:
    """fd:// obeys -H tcp://'s rule: a passed socket not on loopback is refused without --tlsverify."""
    import asyncio
    import os

    from engine.api.router import Router
    from engine.api.server import APIServer, ListenerError

    monkeypatch.setenv("LISTEN_FDS", "1")
    monkeypatch.setenv("LISTEN_PID", str(os.getpid()))
    unbound = socket.socket()  # its address is 0.0.0.0: every interface once it listens
    loopback = socket.socket()
    loopback.bind(("127.0.0.1", 0))
    # The server owns a passed fd (as with systemd's): detached here, closed by it.
    refused, accepted = unbound.detach(), loopback.detach()

    async def scenario() -> None:
        server = APIServer(Router())
        with pytest.raises(ListenerError, match="without --tlsverify"):
            await server.listen(ListenAddress("fd", path=str(refused)))
        await server.listen(ListenAddress("fd", path=str(accepted)))
        assert len(server._servers) == 1
        await server.close()

    asyncio.run(scenario())
