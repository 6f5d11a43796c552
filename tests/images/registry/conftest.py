"""Fixtures of the registry client tests: a content store per test, and a
docker-registry in `auth.token` mode with its own token server.  The plain,
basic-auth, TLS and seeded registries come from tests/conftest.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.images.content_store import ContentStore
from tests.fixtures import capabilities
from tests.fixtures.registry import LocalRegistry
from tests.fixtures.tls import TestCA

from .token_server import TokenServer

TOKEN_SERVICE = "berthtest-registry"
TOKEN_ISSUER = "berthtest-token-issuer"
TOKEN_USER = ("berthtest-token-user", "berthtest-token-secret")
REFRESH_TOKEN = "berthtest-refresh-token"


class TokenAuthRegistry(LocalRegistry):
    """A LocalRegistry whose config delegates auth to a token server."""

    def __init__(self, workdir: Path, token_server: TokenServer, root_cert_bundle: Path) -> None:
        super().__init__(workdir)
        self.token_server = token_server
        self.root_cert_bundle = root_cert_bundle

    def _write_config(self) -> None:
        super()._write_config()
        config = json.loads(self.config_path.read_text())
        config["auth"] = {
            "token": {
                "realm": self.token_server.realm,
                "service": TOKEN_SERVICE,
                "issuer": TOKEN_ISSUER,
                "rootcertbundle": str(self.root_cert_bundle),
            }
        }
        self.config_path.write_text(json.dumps(config, indent=2))


@pytest.fixture
def store(tmp_path: Path) -> ContentStore:
    return ContentStore(tmp_path / "content")


@pytest.fixture(scope="session")
def token_server(test_ca: TestCA) -> Iterator[TokenServer]:
    signer = test_ca.issue_client("token-signer")
    server = TokenServer(
        signer.cert_path,
        signer.key_path,
        TOKEN_ISSUER,
        TOKEN_SERVICE,
        users={TOKEN_USER[0]: TOKEN_USER[1]},
        refresh_tokens={REFRESH_TOKEN},
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def registry_token(
    tmp_path_factory: pytest.TempPathFactory, token_server: TokenServer, test_ca: TestCA
) -> Iterator[TokenAuthRegistry]:
    if not capabilities.registry().available:
        pytest.skip(f"[needs_registry] {capabilities.registry().missing}")
    registry = TokenAuthRegistry(tmp_path_factory.mktemp("registry-token"), token_server, test_ca.cert_path)
    registry.start()
    yield registry
    registry.stop()
