"""The real docker CLI against berthd, against a registry behind a token server (Docker
Hub's scheme): `docker login` gets a token without scope, `docker push` one with
pull,push scope for the repository, `docker pull` one with pull scope."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.api.conftest import RunningDaemon
from tests.api.test_containers import docker_cli
from tests.api.test_push import berthd_with_busybox
from tests.fixtures.registry import LocalRegistry
from tests.images.registry.conftest import TOKEN_USER, TokenAuthRegistry
from tests.images.registry.token_server import TokenServer

pytestmark = [pytest.mark.needs_root, pytest.mark.needs_registry]


@pytest.fixture(scope="module")
def daemon(seeded_registry: LocalRegistry, run_tag: str) -> Iterator[RunningDaemon]:
    with berthd_with_busybox(run_tag, seeded_registry) as running:
        yield running


def test_login_push_pull_through_a_token_server(daemon: RunningDaemon, registry_token: TokenAuthRegistry,
                                                token_server: TokenServer) -> None:
    host = registry_token.host
    name = f"{host}/berthtest/tokened:v1"
    assert docker_cli(daemon, "tag", "busybox", name).returncode == 0
    refused = docker_cli(daemon, "push", name)
    assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1
    wrong = docker_cli(daemon, "login", "-u", TOKEN_USER[0], "--password-stdin", host, input="nope\n")
    assert wrong.returncode == 1 and "login attempt to" in wrong.stderr
    ok = docker_cli(daemon, "login", "-u", TOKEN_USER[0], "--password-stdin", host, input=TOKEN_USER[1] + "\n")
    assert ok.returncode == 0, ok.stderr
    before = len(token_server.requests)
    pushed = docker_cli(daemon, "push", name)
    assert pushed.returncode == 0, pushed.stderr
    assert "v1: digest: sha256:" in pushed.stdout
    scopes = [scope for request in token_server.requests[before:] for scope in request.scopes]
    assert "repository:berthtest/tokened:pull,push" in scopes
    assert docker_cli(daemon, "rmi", name).returncode == 0
    pulled = docker_cli(daemon, "pull", name)
    assert pulled.returncode == 0, pulled.stderr
    assert all(request.user == TOKEN_USER[0] for request in token_server.requests[before:])
