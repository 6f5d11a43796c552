"""Authorization for registry requests: Basic, and Docker's Bearer token flow.

Token flow (distribution "Token Authentication Specification"): the registry answers
401 with `WWW-Authenticate: Bearer realm=...,service=...,scope=...`; we GET
`realm?service=...&scope=...` (Basic credentials if we have any) and retry with
`Authorization: Bearer <token>`.  With an identity token we use the OAuth2 form
instead (`POST realm`, grant_type=refresh_token, "Token Authentication
Implementation: OAuth2").  Tokens are cached per (realm, service, scopes) until
`expires_in` (60 s when unset, the spec's minimum) runs out.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp

from .challenge import Challenge, parse_challenges
from .credentials import Credentials, CredentialStore
from .errors import RegistryUnavailable, Unauthorized, describe_error
from .hosts import Endpoint, RegistryHosts

log = logging.getLogger(__name__)

DEFAULT_TOKEN_LIFETIME = 60  # seconds; token spec: "expires_in ... defaults to 60"
CLIENT_ID = "berth"


@dataclass
class _Token:
    value: str
    expires_at: float


class Authorizer:
    """Holds each registry host's challenge and the tokens obtained for it."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        hosts: RegistryHosts,
        credentials: CredentialStore | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._session = session
        self._hosts = hosts
        self._credentials = credentials
        self._clock = clock
        self._challenges: dict[str, Challenge] = {}
        self._tokens: dict[tuple[str, str, tuple[str, ...], str], _Token] = {}
        self._locks: dict[tuple[str, str, tuple[str, ...], str], asyncio.Lock] = {}
        self.token_requests = 0  # how many times we asked a token server (for tests and logs)

    def credentials_for(self, host: str) -> Credentials | None:
        return self._credentials.get(host) if self._credentials else None

    def challenge(self, host: str) -> Challenge | None:
        return self._challenges.get(host)

    def record_challenge(self, host: str, headers: Sequence[str]) -> Challenge | None:
        """Remember the challenge of a 401; Bearer wins over Basic when both are offered."""
        challenges = [c for value in headers for c in parse_challenges(value)]
        chosen = next((c for c in challenges if c.scheme == "bearer"), None) or next(
            (c for c in challenges if c.scheme == "basic"), None
        )
        if chosen is not None:
            self._challenges[host] = chosen
        return chosen

    def invalidate(self, host: str, scopes: Sequence[str]) -> None:
        """Forget the cached token for these scopes (after it was refused)."""
        challenge = self._challenges.get(host)
        if challenge is not None:
            self._tokens.pop(self._key(host, challenge, scopes), None)

    async def authorization(self, host: str, scopes: Sequence[str]) -> str | None:
        """The Authorization header value for a request to `host`, or None if none applies."""
        challenge = self._challenges.get(host)
        if challenge is None:
            return None
        creds = self.credentials_for(host)
        if challenge.scheme == "basic":
            if not creds or not creds.username:
                return None
            return _basic(creds)
        if challenge.scheme != "bearer":
            return None
        if creds and creds.registry_token:
            return f"Bearer {creds.registry_token}"
        key = self._key(host, challenge, scopes)
        lock = self._locks.setdefault(key, asyncio.Lock())
        # One fetch per key even when many layer downloads start at once.
        async with lock:
            token = self._tokens.get(key)
            if token is None or token.expires_at <= self._clock():
                token = await self._fetch_token(challenge, scopes, creds)
                self._tokens[key] = token
        return f"Bearer {token.value}"

    def _key(self, host: str, challenge: Challenge, scopes: Sequence[str]) -> tuple[str, str, tuple[str, ...], str]:
        creds = self.credentials_for(host)
        return (challenge.realm, challenge.service, tuple(sorted(set(scopes))), creds.username if creds else "")

    async def _fetch_token(self, challenge: Challenge, scopes: Sequence[str], creds: Credentials | None) -> _Token:
        realm = challenge.realm
        if not realm:
            raise Unauthorized("unauthorized: bearer challenge without a realm")
        parts = urlsplit(realm)
        endpoint = Endpoint(parts.scheme, parts.netloc, verify_tls=not self._hosts.is_insecure(parts.netloc))
        ssl = self._hosts.ssl_context(endpoint)
        proxy = self._hosts.proxies.for_url(realm)
        self.token_requests += 1
        log.debug("token request to %s for scopes %s", realm, " ".join(scopes))
        try:
            if creds and creds.identity_token:
                form = {
                    "grant_type": "refresh_token",
                    "refresh_token": creds.identity_token,
                    "service": challenge.service,
                    "scope": " ".join(scopes),
                    "client_id": CLIENT_ID,
                }
                async with self._session.post(realm, data=form, ssl=ssl, proxy=proxy) as response:
                    body = await response.read()
                    status = response.status
            else:
                params: list[tuple[str, str]] = []
                if challenge.service:
                    params.append(("service", challenge.service))
                params.extend(("scope", scope) for scope in scopes)
                headers = {}
                if creds and creds.username:
                    params.append(("account", creds.username))
                    headers["Authorization"] = _basic(creds)
                async with self._session.get(
                    realm, params=params, headers=headers, ssl=ssl, proxy=proxy
                ) as response:
                    body = await response.read()
                    status = response.status
        except (aiohttp.ClientError, OSError) as exc:
            raise RegistryUnavailable(f'Get "{realm}": {exc}') from exc
        if status in (401, 403):
            raise Unauthorized(describe_error(status, body))
        if status != 200:
            raise Unauthorized(f"token server {realm} answered {status}: {describe_error(status, body)}")
        return self._parse_token(body, realm)

    def _parse_token(self, body: bytes, realm: str) -> _Token:
        try:
            document = json.loads(body)
        except ValueError as exc:
            raise Unauthorized(f"token server {realm}: invalid JSON: {exc}") from exc
        value = document.get("token") or document.get("access_token") if isinstance(document, dict) else None
        if not isinstance(value, str) or not value:
            raise Unauthorized(f"token server {realm}: answer has no token")
        lifetime = document.get("expires_in")
        if not isinstance(lifetime, int) or lifetime <= 0:
            lifetime = DEFAULT_TOKEN_LIFETIME
        # Renew a little early so a token does not expire between check and use.
        margin = min(10.0, lifetime / 10)
        return _Token(value, self._clock() + lifetime - margin)


def _basic(creds: Credentials) -> str:
    return "Basic " + base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
