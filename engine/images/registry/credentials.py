"""Where registry credentials come from: Docker's config.json, credential helpers,
and the X-Registry-Auth header the Engine API receives with pull/push requests.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from engine.images.reference import DEFAULT_DOMAIN as DOCKER_HUB

from .errors import CredentialsError
from .hosts import DOCKER_HUB_ENDPOINT

log = logging.getLogger(__name__)

# The key Docker stores Docker Hub credentials under in config.json.
DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/"
_HUB_ALIASES = {DOCKER_HUB, DOCKER_HUB_ENDPOINT, "index.docker.io", DOCKER_HUB_AUTH_KEY}


@dataclass(frozen=True)
class Credentials:
    """A username/password pair, or an identity (refresh) token, or a ready bearer token."""

    username: str = ""
    password: str = ""
    identity_token: str = ""
    registry_token: str = ""

    def __bool__(self) -> bool:
        return bool(self.username or self.password or self.identity_token or self.registry_token)

    def __repr__(self) -> str:  # never print secrets into logs
        return f"Credentials(username={self.username!r}, ...)"


class CredentialStore(Protocol):
    """Anything that answers "which credentials for this registry host?"."""

    def get(self, host: str) -> Credentials | None: ...


def normalize_host(server: str) -> str:
    """"https://host:port/v1/" → "host:port"; Docker Hub's names all become docker.io."""
    if server in _HUB_ALIASES:
        return DOCKER_HUB
    host = urlsplit(server).netloc if "://" in server else server.split("/", 1)[0]
    return DOCKER_HUB if host in _HUB_ALIASES else host


class StaticCredentials:
    """Credentials given explicitly, e.g. decoded from an X-Registry-Auth header."""

    def __init__(self, entries: Mapping[str, Credentials] | None = None) -> None:
        self._entries = {normalize_host(host): creds for host, creds in (entries or {}).items()}

    def get(self, host: str) -> Credentials | None:
        return self._entries.get(normalize_host(host))


class ChainedCredentials:
    """Ask several stores in turn; the first answer wins."""

    def __init__(self, *stores: CredentialStore) -> None:
        self._stores = stores

    def get(self, host: str) -> Credentials | None:
        for store in self._stores:
            found = store.get(host)
            if found:
                return found
        return None


class DockerConfigCredentials:
    """Credentials from a Docker client config.json (`auths`, `credsStore`, `credHelpers`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            document = json.loads(path.read_text()) if path.exists() else {}
        except (OSError, ValueError) as exc:
            raise CredentialsError(f"cannot read {path}: {exc}") from exc
        if not isinstance(document, dict):
            raise CredentialsError(f"{path}: not a JSON object")
        self._auths: dict[str, dict[str, Any]] = {
            normalize_host(key): value
            for key, value in (document.get("auths") or {}).items()
            if isinstance(value, dict)
        }
        self._creds_store: str = document.get("credsStore") or ""
        self._helpers: dict[str, str] = {
            normalize_host(key): value for key, value in (document.get("credHelpers") or {}).items()
        }

    @classmethod
    def default(cls) -> DockerConfigCredentials:
        """$DOCKER_CONFIG/config.json or ~/.docker/config.json, as the Docker CLI reads."""
        directory = os.environ.get("DOCKER_CONFIG") or str(Path.home() / ".docker")
        return cls(Path(directory) / "config.json")

    def get(self, host: str) -> Credentials | None:
        key = normalize_host(host)
        helper = self._helpers.get(key) or self._creds_store
        if helper:
            found = run_credential_helper(helper, DOCKER_HUB_AUTH_KEY if key == DOCKER_HUB else key)
            if found:
                return found
        entry = self._auths.get(key)
        return _from_auth_entry(entry, self.path) if entry else None


def _from_auth_entry(entry: Mapping[str, Any], source: Path | str) -> Credentials | None:
    username = entry.get("username") or ""
    password = entry.get("password") or ""
    if entry.get("auth"):
        try:
            decoded = base64.b64decode(entry["auth"]).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise CredentialsError(f"{source}: invalid auth value: {exc}") from exc
        username, sep, password = decoded.partition(":")
        if not sep:
            raise CredentialsError(f"{source}: invalid auth value: no ':' between user and password")
    creds = Credentials(
        username=username,
        password=password,
        identity_token=entry.get("identitytoken") or "",
        registry_token=entry.get("registrytoken") or "",
    )
    return creds or None


def run_credential_helper(helper: str, server: str) -> Credentials | None:
    """Ask `docker-credential-<helper> get` (docker-credential-helpers protocol)."""
    program = f"docker-credential-{helper}"
    path = shutil.which(program)
    if path is None:
        raise CredentialsError(
            f"error getting credentials - err: exec: \"{program}\": executable file not found in $PATH"
        )
    result = subprocess.run([path, "get"], input=server.encode(), capture_output=True, check=False, timeout=60)
    output = result.stdout.decode(errors="replace").strip()
    if result.returncode != 0:
        # "credentials not found in native keychain" is the helpers' way to say "none".
        if "credentials not found" in output.lower():
            return None
        raise CredentialsError(f"error getting credentials - {program}: {output or result.stderr.decode()}")
    try:
        answer = json.loads(output)
        username, secret = answer["Username"], answer["Secret"]
    except (ValueError, KeyError, TypeError) as exc:
        raise CredentialsError(f"{program}: unexpected answer: {exc}") from exc
    log.debug("credentials for %s from %s", server, program)
    # Username "<token>" marks an identity token (docker/cli credentials/native_store.go).
    if username == "<token>":
        return Credentials(identity_token=secret)
    return Credentials(username=username, password=secret)


def decode_registry_auth_header(value: str) -> tuple[str, Credentials] | None:
    """Decode an X-Registry-Auth value: base64url JSON {username, password, serveraddress, ...}.

    Returns (server address, credentials), or None for an empty value or "{}" (what the
    CLI sends when it has nothing).  Docker accepts both URL-safe and standard base64,
    padded or not.
    """
    value = value.strip()
    if not value:
        return None
    padded = value + "=" * (-len(value) % 4)
    try:
        raw = base64.urlsafe_b64decode(padded.replace("+", "-").replace("/", "_"))
        document = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise CredentialsError(f"invalid X-Registry-Auth header: {exc}") from exc
    if not isinstance(document, dict):
        raise CredentialsError("invalid X-Registry-Auth header: not a JSON object")
    creds = _from_auth_entry(document, "X-Registry-Auth")
    if creds is None:
        return None
    return normalize_host(document.get("serveraddress") or DOCKER_HUB), creds


class RequestCredentials:
    """The credentials of one Engine API request, for whichever registry it targets.

    dockerd uses an X-Registry-Auth value for the registry of the pull/push it comes
    with, whatever its `serveraddress` says: the CLI already chose the right entry.
    """

    def __init__(self, credentials: Credentials | None) -> None:
        self._credentials = credentials

    def get(self, host: str) -> Credentials | None:
        return self._credentials


def credentials_from_registry_auth_header(value: str) -> RequestCredentials:
    """A credential store holding just what an X-Registry-Auth header carries."""
    decoded = decode_registry_auth_header(value)
    return RequestCredentials(decoded[1] if decoded else None)
