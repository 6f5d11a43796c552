"""Metadata instructions → the image's runtime config (the ``config`` member), as the classic builder does.

Instructions arrive substituted (engine.build.stages).  Shell forms go
through the stage's SHELL (default ``/bin/sh -c``); ENTRYPOINT drops a CMD
that was inherited rather than set in this stage (moby dispatchers.go,
dispatchEntrypoint); EXPOSE expands port ranges; WORKDIR is relative to the
previous one.
"""

from __future__ import annotations

import posixpath
from typing import Any

from engine.build import instructions as ins
from engine.build.errors import DockerfileError

DEFAULT_SHELL = ("/bin/sh", "-c")


def shell_of(config: dict[str, Any]) -> list[str]:
    return list(config.get("Shell") or DEFAULT_SHELL)


def command_argv(config: dict[str, Any], instruction: ins.CommandInstruction) -> list[str]:
    if instruction.json_form:
        return list(instruction.command)
    return [*shell_of(config), " ".join(instruction.command)]


def set_env(config: dict[str, Any], key: str, value: str) -> None:
    env = [item for item in config.get("Env") or [] if item.split("=", 1)[0] != key]
    config["Env"] = [*env, f"{key}={value}"]


def env_map(config: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in config.get("Env") or []:
        key, _, value = str(item).partition("=")
        out[key] = value
    return out


def _ports(text: str, line: int) -> list[str]:
    number, _, proto = text.partition("/")
    proto = (proto or "tcp").lower()
    low, _, high = number.partition("-")
    if not low.isdigit() or (high and not high.isdigit()):
        raise DockerfileError(f"invalid containerPort: {text}", line)
    first, last = int(low), int(high or low)
    if not 0 < first <= last <= 65535 or proto not in ("tcp", "udp", "sctp"):
        raise DockerfileError(f"invalid port in EXPOSE: {text}", line)
    return [f"{port}/{proto}" for port in range(first, last + 1)]


def _healthcheck(instruction: ins.Healthcheck) -> dict[str, Any]:
    check: dict[str, Any] = {"Test": list(instruction.test)}
    for key, value in (("Interval", instruction.interval_ns), ("Timeout", instruction.timeout_ns),
                       ("StartPeriod", instruction.start_period_ns),
                       ("StartInterval", instruction.start_interval_ns), ("Retries", instruction.retries)):
        if value:
            check[key] = value
    return check


def apply(config: dict[str, Any], instruction: ins.Instruction, cmd_set: bool) -> dict[str, Any]:
    """A copy of ``config`` with ``instruction`` applied (RUN/COPY/ADD/ARG/FROM leave it unchanged)."""
    out = dict(config)
    if isinstance(instruction, ins.Env):
        for pair in instruction.pairs:
            set_env(out, pair.key, pair.value)
    elif isinstance(instruction, ins.Label):
        labels = dict(out.get("Labels") or {})
        labels.update((pair.key, pair.value) for pair in instruction.pairs)
        out["Labels"] = labels
    elif isinstance(instruction, ins.Workdir):
        out["WorkingDir"] = posixpath.normpath(posixpath.join(out.get("WorkingDir") or "/", instruction.path))
    elif isinstance(instruction, ins.User):
        out["User"] = instruction.user
    elif isinstance(instruction, ins.Expose):
        ports = dict(out.get("ExposedPorts") or {})
        for text in instruction.ports:
            ports.update({port: {} for port in _ports(text, instruction.line)})
        out["ExposedPorts"] = ports
    elif isinstance(instruction, ins.Volume):
        volumes = dict(out.get("Volumes") or {})
        for path in instruction.paths:
            if not path.strip():
                raise DockerfileError("VOLUME specified can not be an empty string", instruction.line)
            volumes[path] = {}
        out["Volumes"] = volumes
    elif isinstance(instruction, ins.StopSignal):
        out["StopSignal"] = instruction.signal
    elif isinstance(instruction, ins.Healthcheck):
        out["Healthcheck"] = _healthcheck(instruction)
    elif isinstance(instruction, ins.Shell):
        out["Shell"] = list(instruction.shell)
    elif isinstance(instruction, ins.Onbuild):
        out["OnBuild"] = [*(out.get("OnBuild") or []), instruction.expression]
    elif isinstance(instruction, ins.Cmd):
        out["Cmd"] = command_argv(out, instruction)
    elif isinstance(instruction, ins.Entrypoint):
        out["Entrypoint"] = command_argv(out, instruction)
        if not cmd_set:
            out["Cmd"] = None
    return {key: value for key, value in out.items() if value is not None}
