"""A small Docker token server (distribution's "Token Authentication Specification")
for docker-registry's `auth.token` mode: it issues ES256 JWTs signed by a key whose
certificate chains to the registry's `rootcertbundle`.

Policy: valid basic credentials or a known refresh token get every action they ask
for; anonymous requests get `pull` only.  Every request is recorded for the tests.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from tests.images.registry.threaded_app import ThreadedApp


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TokenRequest:
    method: str
    scopes: list[str]
    service: str
    user: str | None
    grant_type: str | None = None


@dataclass
class TokenServer:
    signer_cert: Path
    signer_key: Path
    issuer: str
    service: str
    users: dict[str, str]
    refresh_tokens: set[str] = field(default_factory=set)
    expires_in: int = 300
    requests: list[TokenRequest] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        cert = x509.load_pem_x509_certificate(self.signer_cert.read_bytes())
        self._x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
        key = serialization.load_pem_private_key(self.signer_key.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        self._key = key
        self._server = ThreadedApp("berthtest-token-server")

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    # ------------------------------------------------------------ JWT

    def issue(self, subject: str, access: list[dict[str, object]]) -> str:
        header = {"typ": "JWT", "alg": "ES256", "x5c": [self._x5c]}
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "exp": now + self.expires_in,
            "nbf": now - 60,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        der = self._key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        # JWS ES256 signatures are r||s, 32 bytes each (RFC 7518 §3.4), not DER.
        return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    @staticmethod
    def _access(scopes: list[str], allow_push: bool) -> list[dict[str, object]]:
        access: list[dict[str, object]] = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            wanted = [a for a in actions.split(",") if a]
            granted = wanted if allow_push else [a for a in wanted if a == "pull"]
            access.append({"type": kind, "name": name, "actions": granted})
        return access

    # ------------------------------------------------------------ HTTP

    async def _get_token(self, request: web.Request) -> web.Response:
        scopes = request.query.getall("scope", [])
        user = self._basic_user(request)
        self.requests.append(TokenRequest("GET", scopes, request.query.get("service", ""), user))
        if user == "":
            return web.json_response({"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]}, status=401)
        token = self.issue(user or "anonymous", self._access(scopes, allow_push=user is not None))
        return web.json_response({"token": token, "expires_in": self.expires_in})

    async def _post_token(self, request: web.Request) -> web.Response:
        form = await request.post()
        scopes = str(form.get("scope", "")).split()
        self.requests.append(
            TokenRequest("POST", scopes, str(form.get("service", "")), None, str(form.get("grant_type")))
        )
        if form.get("grant_type") != "refresh_token" or form.get("refresh_token") not in self.refresh_tokens:
            return web.json_response({"error": "invalid_grant"}, status=401)
        token = self.issue("refresh-user", self._access(scopes, allow_push=True))
        return web.json_response({"access_token": token, "expires_in": self.expires_in})

    def _basic_user(self, request: web.Request) -> str | None:
        """None when anonymous, "" when the credentials are wrong, else the user name."""
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return user if self.users.get(user) == password else ""

    # ------------------------------------------------------------ life cycle

    def start(self) -> None:
        async def make_app() -> web.Application:
            app = web.Application()
            app.router.add_get("/token", self._get_token)
            app.router.add_post("/token", self._post_token)
            return app

        self.port = self._server.start(make_app)

    def stop(self) -> None:
        self._server.stop()
