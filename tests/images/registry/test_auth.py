"""Credentials against real registries: htpasswd basic auth, and docker-registry's
token mode with our own token server (Bearer flow, scopes, caching, refresh tokens)."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import pytest

from engine.images.content_store import ContentStore
from engine.images.registry import (
    LOGIN_SUCCEEDED,
    Credentials,
    CredentialsError,
    CredentialStore,
    DockerConfigCredentials,
    LoginResult,
    PulledImage,
    RegistryClient,
    RegistryHosts,
    StaticCredentials,
    Unauthorized,
    credentials_from_registry_auth_header,
)
from tests.fixtures.registry import LocalRegistry

from .conftest import REFRESH_TOKEN, TOKEN_USER, TokenAuthRegistry
from .imagegen import TestImage, make_image
from .token_server import TokenServer


def _client(credentials: CredentialStore | None) -> RegistryClient:
    return RegistryClient(RegistryHosts(certs_dir=None), credentials)


async def _push_and_pull(
    client: RegistryClient,
    registry: LocalRegistry,
    ref: str,
    image: TestImage,
    source: ContentStore,
    sink: ContentStore,
) -> PulledImage:
    await client.push(f"{registry.host}/{ref}", image.manifest, image.media_type, source)
    return await client.pull(f"{registry.host}/{ref}", sink)


def _write_docker_config(path: Path, host: str, user: str, password: str) -> Path:
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    path.write_text(json.dumps({"auths": {f"http://{host}": {"auth": auth}}}))
    return path


def _registry_auth_header(user: str, password: str, server: str) -> str:
    body = json.dumps({"username": user, "password": password, "serveraddress": server}).encode()
    return base64.urlsafe_b64encode(body).decode().rstrip("=")


# ---------------------------------------------------------------- basic auth


def test_basic_auth_registry_without_credentials_is_unauthorized(
    registry_basic_auth: LocalRegistry, store: ContentStore
) -> None:
    async def go() -> None:
        async with _client(None) as client:
            await client.pull(f"{registry_basic_auth.host}/auth/app:v1", store)

    with pytest.raises(Unauthorized, match=r"^unauthorized: authentication required$"):
        asyncio.run(go())


def test_basic_auth_with_wrong_password_is_unauthorized(
    registry_basic_auth: LocalRegistry, store: ContentStore
) -> None:
    creds = StaticCredentials({registry_basic_auth.host: Credentials("berthtest-user", "wrong")})

    async def go() -> None:
        async with _client(creds) as client:
            await client.pull(f"{registry_basic_auth.host}/auth/app:v1", store)

    with pytest.raises(Unauthorized, match="unauthorized"):
        asyncio.run(go())


def test_basic_auth_with_credentials_from_docker_config_json(
    registry_basic_auth: LocalRegistry, store: ContentStore, tmp_path: Path
) -> None:
    assert registry_basic_auth.username and registry_basic_auth.password
    config = _write_docker_config(
        tmp_path / "config.json", registry_basic_auth.host, registry_basic_auth.username, registry_basic_auth.password
    )
    source = ContentStore(tmp_path / "source")
    image = make_image(source)

    async def go() -> PulledImage:
        async with _client(DockerConfigCredentials(config)) as client:
            return await _push_and_pull(client, registry_basic_auth, "auth/config:v1", image, source, store)

    assert asyncio.run(go()).digest == image.digest


def test_basic_auth_with_credentials_from_x_registry_auth(
    registry_basic_auth: LocalRegistry, store: ContentStore, tmp_path: Path
) -> None:
    assert registry_basic_auth.username and registry_basic_auth.password
    header = _registry_auth_header(
        registry_basic_auth.username, registry_basic_auth.password, registry_basic_auth.host
    )
    source = ContentStore(tmp_path / "source")
    image = make_image(source)

    async def go() -> PulledImage:
        async with _client(credentials_from_registry_auth_header(header)) as client:
            return await _push_and_pull(client, registry_basic_auth, "auth/header:v1", image, source, store)

    assert asyncio.run(go()).digest == image.digest


def test_missing_credential_helper_is_a_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"credsStore": "berthtest-absent"}))
    with pytest.raises(CredentialsError, match='"docker-credential-berthtest-absent": executable file not found'):
        DockerConfigCredentials(config).get("127.0.0.1:5000")


def test_credential_helper_answer_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A real executable speaking the docker-credential-helpers protocol on stdin/stdout.
    helper = tmp_path / "bin" / "docker-credential-berthtest"
    helper.parent.mkdir()
    helper.write_text(
        "#!/bin/sh\nread server\n"
        'if [ "$server" = "reg.example:5000" ]; then\n'
        '  printf \'{"ServerURL":"%s","Username":"alice","Secret":"s3cret"}\' "$server"; exit 0\nfi\n'
        "echo 'credentials not found in native keychain'; exit 1\n"
    )
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{helper.parent}:/usr/bin:/bin")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"credHelpers": {"reg.example:5000": "berthtest"}, "credsStore": "berthtest"}))
    store = DockerConfigCredentials(config)
    assert store.get("reg.example:5000") == Credentials("alice", "s3cret")
    assert store.get("other.example") is None


# ---------------------------------------------------------------- token auth


def test_token_flow_pushes_and_pulls_with_bearer_tokens(
    registry_token: TokenAuthRegistry, token_server: TokenServer, store: ContentStore, tmp_path: Path
) -> None:
    source = ContentStore(tmp_path / "source")
    image = make_image(source, layer_sizes=(5_000, 6_000, 7_000))
    creds = StaticCredentials({registry_token.host: Credentials(*TOKEN_USER)})
    before = len(token_server.requests)

    async def go() -> tuple[PulledImage, int]:
        async with _client(creds) as client:
            pulled = await _push_and_pull(client, registry_token, "token/app:v1", image, source, store)
            # A second pull reuses the cached tokens: no new token requests.
            asked = client.authorizer.token_requests
            await client.pull(f"{registry_token.host}/token/app:v1", ContentStore(tmp_path / "again"))
            assert client.authorizer.token_requests == asked
            return pulled, asked

    pulled, asked = asyncio.run(go())
    assert pulled.digest == image.digest
    requests = token_server.requests[before:]
    assert len(requests) == asked
    # One token per scope set, not per blob: push (pull,push) and pull scopes only.
    assert {tuple(r.scopes) for r in requests} == {("repository:token/app:pull,push",), ("repository:token/app:pull",)}
    assert all(r.user == TOKEN_USER[0] and r.service == "berthtest-registry" for r in requests)


def test_anonymous_token_cannot_push(registry_token: TokenAuthRegistry, tmp_path: Path) -> None:
    source = ContentStore(tmp_path / "source")
    image = make_image(source)

    async def go() -> None:
        async with _client(None) as client:
            await client.push(f"{registry_token.host}/token/anon:v1", image.manifest, image.media_type, source)

    with pytest.raises(Unauthorized, match="authentication required"):
        asyncio.run(go())


def test_wrong_password_is_refused_by_the_token_server(registry_token: TokenAuthRegistry, store: ContentStore) -> None:
    creds = StaticCredentials({registry_token.host: Credentials(TOKEN_USER[0], "wrong")})

    async def go() -> None:
        async with _client(creds) as client:
            await client.pull(f"{registry_token.host}/token/app:v1", store)

    with pytest.raises(Unauthorized, match="unauthorized: bad credentials"):
        asyncio.run(go())


def test_identity_token_uses_the_oauth2_refresh_grant(
    registry_token: TokenAuthRegistry, token_server: TokenServer, tmp_path: Path
) -> None:
    source = ContentStore(tmp_path / "source")
    image = make_image(source)
    creds = StaticCredentials({registry_token.host: Credentials(identity_token=REFRESH_TOKEN)})
    before = len(token_server.requests)

    async def go() -> None:
        async with _client(creds) as client:
            await client.push(f"{registry_token.host}/token/refresh:v1", image.manifest, image.media_type, source)

    asyncio.run(go())
    posts = token_server.requests[before:]
    assert posts and all(r.method == "POST" and r.grant_type == "refresh_token" for r in posts)


def test_expired_token_is_fetched_again(
    registry_token: TokenAuthRegistry, token_server: TokenServer, tmp_path: Path
) -> None:
    source = ContentStore(tmp_path / "source")
    image = make_image(source)
    creds = StaticCredentials({registry_token.host: Credentials(*TOKEN_USER)})
    now = [1000.0]

    async def go() -> list[int]:
        async with _client(creds) as client:
            client.authorizer._clock = lambda: now[0]  # the cache's notion of time, not a sleep
            ref = f"{registry_token.host}/token/expiry:v1"
            await client.push(ref, image.manifest, image.media_type, source)
            counts = [client.authorizer.token_requests]
            await client.list_tags(ref)
            counts.append(client.authorizer.token_requests)
            await client.list_tags(ref)
            counts.append(client.authorizer.token_requests)
            now[0] += token_server.expires_in
            await client.list_tags(ref)
            counts.append(client.authorizer.token_requests)
            return counts

    pushed, first_pull, cached, expired = asyncio.run(go())
    assert first_pull == pushed + 1 and cached == first_pull and expired == cached + 1


# ---------------------------------------------------------------- login


def _login(registry: LocalRegistry, credentials: Credentials) -> LoginResult:
    async def go() -> LoginResult:
        async with _client(None) as client:
            return await client.login(registry.host, credentials)

    return asyncio.run(go())


def test_login_to_basic_auth_registry(registry_basic_auth: LocalRegistry) -> None:
    assert registry_basic_auth.username and registry_basic_auth.password
    good = Credentials(registry_basic_auth.username, registry_basic_auth.password)
    assert _login(registry_basic_auth, good).status == LOGIN_SUCCEEDED
    refused = rf"^login attempt to http://{registry_basic_auth.host}/v2/ failed with status: 401 Unauthorized$"
    with pytest.raises(Unauthorized, match=refused):
        _login(registry_basic_auth, Credentials(registry_basic_auth.username, "wrong"))


def test_login_to_token_registry(registry_token: TokenAuthRegistry, token_server: TokenServer) -> None:
    before = len(token_server.requests)
    assert _login(registry_token, Credentials(*TOKEN_USER)).status == LOGIN_SUCCEEDED
    assert [r.user for r in token_server.requests[before:]] == [TOKEN_USER[0]]
    with pytest.raises(Unauthorized, match="bad credentials"):
        _login(registry_token, Credentials(TOKEN_USER[0], "wrong"))
