"""`--change` instructions of `docker import` / `docker commit`, applied to an image config.

Docker allows CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, ONBUILD,
STOPSIGNAL, USER, VOLUME and WORKDIR there (builder/dockerfile
`validCommitCommands`); each edits the `config` member of the image config
exactly as the Dockerfile instruction would.
"""

from __future__ import annotations

import json
import posixpath
import shlex
from typing import Any

from engine.images.errors import InvalidParameter

ALLOWED = (
    "CMD", "ENTRYPOINT", "ENV", "EXPOSE", "HEALTHCHECK", "LABEL",
    "ONBUILD", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
)


def _json_array(text: str) -> list[str] | None:
    """The Dockerfile "exec form": a JSON array of strings, or None for shell form."""
    if not text.startswith("["):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    return None


def _command(text: str) -> list[str]:
    exec_form = _json_array(text)
    return exec_form if exec_form is not None else ["/bin/sh", "-c", text]


def _pairs(instruction: str, text: str) -> list[tuple[str, str]]:
    """ENV/LABEL arguments: `k=v k2="v 2"`, or the legacy single `k v`."""
    try:
        words = shlex.split(text)
    except ValueError as err:
        raise InvalidParameter(f"{instruction}: {err}") from err
    if not words:
        raise InvalidParameter(f"{instruction} requires at least one argument")
    if "=" not in words[0]:
        key, _, value = text.strip().partition(" ")
        if not value.strip():
            raise InvalidParameter(f"{instruction} {key}: missing value")
        return [(key, value.strip())]
    pairs = []
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise InvalidParameter(f"{instruction}: {word!r} is not key=value")
        pairs.append((key, value))
    return pairs


def apply_changes(config: dict[str, Any], changes: list[str]) -> dict[str, Any]:
    """A copy of the runtime `config` (the `config` member) with `changes` applied."""
    result: dict[str, Any] = json.loads(json.dumps(config))
    for line in changes:
        keyword, _, rest = line.strip().partition(" ")
        instruction, rest = keyword.upper(), rest.strip()
        if instruction not in ALLOWED:
            raise InvalidParameter(f"{keyword} is not a valid change command")
        _apply(result, instruction, rest)
    return result


def _apply(config: dict[str, Any], instruction: str, rest: str) -> None:
    if instruction in ("CMD", "ENTRYPOINT"):
        config["Cmd" if instruction == "CMD" else "Entrypoint"] = _command(rest)
    elif instruction == "ENV":
        env = list(config.get("Env") or [])
        for key, value in _pairs(instruction, rest):
            env = [item for item in env if item.split("=", 1)[0] != key] + [f"{key}={value}"]
        config["Env"] = env
    elif instruction == "LABEL":
        labels = dict(config.get("Labels") or {})
        labels.update(_pairs(instruction, rest))
        config["Labels"] = labels
    elif instruction == "EXPOSE":
        ports = dict(config.get("ExposedPorts") or {})
        for port in rest.split():
            number, _, proto = port.partition("/")
            if not number.replace("-", "").isdigit():
                raise InvalidParameter(f"invalid port in EXPOSE: {port}")
            ports[f"{number}/{(proto or 'tcp').lower()}"] = {}
        config["ExposedPorts"] = ports
    elif instruction == "VOLUME":
        paths = _json_array(rest) or rest.split()
        if not paths:
            raise InvalidParameter("VOLUME requires at least one argument")
        volumes = dict(config.get("Volumes") or {})
        volumes.update({path: {} for path in paths})
        config["Volumes"] = volumes
    elif instruction == "WORKDIR":
        if not rest:
            raise InvalidParameter("WORKDIR requires exactly one argument")
        config["WorkingDir"] = posixpath.join("/", config.get("WorkingDir") or "/", rest)
    elif instruction in ("USER", "STOPSIGNAL"):
        if not rest:
            raise InvalidParameter(f"{instruction} requires exactly one argument")
        config["User" if instruction == "USER" else "StopSignal"] = rest
    elif instruction == "ONBUILD":
        config["OnBuild"] = [*(config.get("OnBuild") or []), rest]
    elif instruction == "HEALTHCHECK":
        config["Healthcheck"] = _healthcheck(rest)


def _healthcheck(rest: str) -> dict[str, Any]:
    if rest.upper() == "NONE":
        return {"Test": ["NONE"]}
    keyword, _, command = rest.partition(" ")
    if keyword.upper() != "CMD" or not command.strip():
        raise InvalidParameter("HEALTHCHECK must be NONE or CMD <command> (options are not supported here)")
    exec_form = _json_array(command.strip())
    return {"Test": ["CMD", *exec_form] if exec_form is not None else ["CMD-SHELL", command.strip()]}
