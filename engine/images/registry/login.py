"""`docker login` (Engine API `POST /auth`): prove credentials against a registry.

dockerd's flow (registry/auth.go): ping `/v2/`, then answer its challenge with the
credentials — Basic directly, Bearer via a token request without scope — and call
`/v2/` again; a 200 means "Login Succeeded".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import aiohttp

from .auth import Authorizer
from .credentials import Credentials, RequestCredentials, normalize_host
from .errors import RegistryUnavailable, Unauthorized
from .hosts import RegistryHosts
from .transport import RegistryTransport

log = logging.getLogger(__name__)

LOGIN_SUCCEEDED = "Login Succeeded"


@dataclass(frozen=True)
class LoginResult:
    status: str
    identity_token: str = ""


async def login(
    session: aiohttp.ClientSession, hosts: RegistryHosts, server: str, credentials: Credentials
) -> LoginResult:
    """Check `credentials` against `server` ("host:port", a URL, or Docker Hub's names)."""
    domain = normalize_host(server)
    # A transport of its own: the credentials under test must not touch the client's
    # cached tokens or be sent anywhere else.
    authorizer = Authorizer(session, hosts, RequestCredentials(credentials))
    transport = RegistryTransport(session, hosts, authorizer)
    last: RegistryUnavailable | None = None
    for endpoint in hosts.endpoints(domain, for_push=True):
        try:
            await transport.ping(endpoint)
        except RegistryUnavailable as exc:
            last = exc
            continue
        url = f"{endpoint.url}/v2/"
        try:
            async with transport.request(endpoint, "GET", "/v2/", what="login"):
                pass
        except Unauthorized as exc:
            # The registry's own 401 (Basic) in moby registry/auth.go loginV2's wording;
            # a token server's refusal keeps the token server's reason.
            reason = " with status: 401 Unauthorized" if exc.codes else f": {exc}"
            raise Unauthorized(f"login attempt to {url} failed{reason}",
                               exc.codes) from exc
        log.info("login to %s as %s succeeded", endpoint.url, credentials.username or "<token>")
        return LoginResult(LOGIN_SUCCEEDED)
    assert last is not None, "hosts.endpoints() returned no endpoint"
    raise last
