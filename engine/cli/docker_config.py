"""Registry credentials in a Docker client config.json (`$DOCKER_CONFIG/config.json`,
else `~/.docker/config.json`), read and written the way the docker CLI does.

    {"auths": {"localhost:5000": {"auth": base64("user:password")}}}

Docker Hub's entry is keyed `https://index.docker.io/v1/`; any other registry by its
host[:port].  Other keys of the file are kept untouched; the file is replaced
atomically with mode 0600.  With a credential helper configured (`credHelpers` for
the registry, else `credsStore`), the secret goes to `docker-credential-<helper>`
(`store` / `get` / `erase`, JSON on stdin/stdout) and `auths` keeps an empty entry,
as the docker CLI does.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.cli.context import StatusError

HUB_KEY = "https://index.docker.io/v1/"
_HUB_NAMES = {"docker.io", "index.docker.io", "registry-1.docker.io", HUB_KEY, "https://index.docker.io"}


def config_path(environ: Mapping[str, str]) -> Path:
    directory = environ.get("DOCKER_CONFIG") or str(Path(environ.get("HOME") or Path.home()) / ".docker")
    return Path(directory) / "config.json"


def server_key(server: str | None) -> str:
    """`docker login` without a server, or with a Docker Hub name, is Hub's key; else host[:port]."""
    if not server or server in _HUB_NAMES:
        return HUB_KEY
    host = server.split("://", 1)[1] if "://" in server else server
    host = host.split("/", 1)[0]
    return HUB_KEY if host in _HUB_NAMES else host


def registry_of(image: str) -> str:
    """The registry an image name lives on, as a config key (`localhost:5000/x` → `localhost:5000`)."""
    first, slash, _ = image.partition("/")
    if slash and (first == "localhost" or "." in first or ":" in first):
        return server_key(first)
    return HUB_KEY


def _load(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise StatusError(f"Error loading config file {path}: {exc}", 1) from exc
    if not isinstance(document, dict):
        raise StatusError(f"Error loading config file {path}: not a JSON object", 1)
    return document


def save_config(path: Path, document: dict[str, Any]) -> None:
    """Replace config.json atomically, private to the user (0600 from mkstemp: it holds credentials)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".config.json.")
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(document, out, indent="\t")
            out.write("\n")
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _helper(document: dict[str, Any], key: str) -> str:
    helpers = document.get("credHelpers") or {}
    return str((helpers.get(key) if isinstance(helpers, dict) else None) or document.get("credsStore") or "")


def _run_helper(helper: str, action: str, payload: str) -> str:
    program = f"docker-credential-{helper}"
    path = shutil.which(program)
    if path is None:
        raise StatusError(f'error with credentials - exec: "{program}": executable file not found in $PATH', 1)
    result = subprocess.run([path, action], input=payload.encode(), capture_output=True, timeout=60, check=False)
    output = result.stdout.decode(errors="replace").strip()
    if result.returncode != 0:
        if action in ("get", "erase") and "credentials not found" in output.lower():
            return ""
        verb = {"get": "getting", "store": "storing", "erase": "erasing"}[action]
        raise StatusError(f"error {verb} credentials - {program}: {output or result.stderr.decode().strip()}", 1)
    return output


def credentials(environ: Mapping[str, str], key: str) -> tuple[str, str] | None:
    document = _load(config_path(environ))
    helper = _helper(document, key)
    if helper:
        answer = _run_helper(helper, "get", key)
        if answer:
            try:
                found = json.loads(answer)
                return str(found["Username"]), str(found["Secret"])
            except (ValueError, KeyError, TypeError) as exc:
                raise StatusError(f"docker-credential-{helper}: unexpected answer: {exc}", 1) from exc
    entry = (document.get("auths") or {}).get(key)
    if not isinstance(entry, dict) or not entry.get("auth"):
        return None
    try:
        username, sep, password = base64.b64decode(entry["auth"]).decode().partition(":")
    except (ValueError, UnicodeDecodeError) as exc:
        raise StatusError(f"{config_path(environ)}: invalid auth for {key}: {exc}", 1) from exc
    return (username, password) if sep else None


def store(environ: Mapping[str, str], key: str, username: str, password: str) -> Path | None:
    """Save the credentials; returns the file holding the secret (None: a helper holds it)."""
    path = config_path(environ)
    document = _load(path)
    auths = document.setdefault("auths", {})
    helper = _helper(document, key)
    if helper:
        _run_helper(helper, "store", json.dumps({"ServerURL": key, "Username": username, "Secret": password}))
        auths[key] = {}
        save_config(path, document)
        return None
    auths[key] = {"auth": base64.b64encode(f"{username}:{password}".encode()).decode()}
    save_config(path, document)
    return path


def remove(environ: Mapping[str, str], key: str) -> bool:
    path = config_path(environ)
    document = _load(path)
    auths = document.get("auths") or {}
    helper = _helper(document, key)
    if helper:
        _run_helper(helper, "erase", key)
    if key not in auths:
        return bool(helper)
    del auths[key]
    save_config(path, document)
    return True


def registry_auth_header(environ: Mapping[str, str], image: str) -> dict[str, str]:
    """The X-Registry-Auth header for a pull/push of `image` (docker sends `{}` when it has nothing)."""
    key = registry_of(image)
    found = credentials(environ, key)
    document: dict[str, str] = {}
    if found is not None:
        document = {"username": found[0], "password": found[1], "serveraddress": key}
    return {"X-Registry-Auth": base64.urlsafe_b64encode(json.dumps(document).encode()).decode()}
