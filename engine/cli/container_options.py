"""`run`/`create` flags → the body of POST /containers/create (docker's cli/command/container/opts.go)."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.cli.context import ArgumentParser, UsageError

_RAM = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgtp]?)b?$", re.I)
_RAM_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}


def add_flags(p: ArgumentParser) -> None:
    """The flags `run` and `create` share."""
    add = p.add_argument
    add("--name", help="Assign a name to the container")
    add("-i", "--interactive", action="store_true", help="Keep STDIN open even if not attached")
    add("-t", "--tty", action="store_true", help="Allocate a pseudo-TTY")
    add("-e", "--env", action="append", default=[], help="Set environment variables")
    add("--env-file", action="append", default=[], help="Read in a file of environment variables")
    add("-w", "--workdir", help="Working directory inside the container")
    add("-u", "--user", help="Username or UID (format: <name|uid>[:<group|gid>])")
    add("--entrypoint", help="Overwrite the default ENTRYPOINT of the image")
    add("-h", "--hostname", help="Container host name")
    add("-l", "--label", action="append", default=[], help="Set meta data on a container")
    add("-v", "--volume", action="append", default=[], help="Bind mount a volume")
    add("--tmpfs", action="append", default=[], help="Mount a tmpfs directory")
    add("-m", "--memory", help="Memory limit")
    add("--cpus", help="Number of CPUs")
    add("--pids-limit", type=int, help="Tune container pids limit (set -1 for unlimited)")
    add("--cap-add", action="append", default=[], help="Add Linux capabilities")
    add("--cap-drop", action="append", default=[], help="Drop Linux capabilities")
    add("--privileged", action="store_true", help="Give extended privileges to this container")
    add("--read-only", action="store_true", help="Mount the container's root filesystem as read only")
    add("--restart", default="no", help="Restart policy to apply when a container exits")
    add("--network", "--net", help="Connect a container to a network")
    add("--init", action="store_true", help="Run an init inside the container")
    add("--platform", help="Set platform if server is multi-platform capable")
    add("--rm", action="store_true", help="Automatically remove the container when it exits")
    add("--stop-signal", help="Signal to stop the container")
    add("--stop-timeout", type=int, help="Timeout (in seconds) to stop a container")


@dataclass
class CreateRequest:
    name: str | None
    platform: str | None
    body: dict[str, Any]

    @property
    def image(self) -> str:
        return str(self.body["Image"])

    @property
    def query(self) -> dict[str, str | None]:
        return {"name": self.name, "platform": self.platform}


def ram_in_bytes(value: str) -> int:
    """docker's units.RAMInBytes: `512m`, `1g`, `1.5GB`, `1024` (binary multiples)."""
    match = _RAM.match(value.strip())
    if not match:
        raise UsageError(f"invalid size: '{value}'")
    return int(float(match.group(1)) * _RAM_UNITS[match.group(2).lower()])


def _env_value(item: str, environ: Mapping[str, str]) -> str:
    # `-e NAME` takes NAME's value from the CLI's environment when it is set (opts.ValidateEnv).
    if "=" in item or item not in environ:
        return item
    return f"{item}={environ[item]}"


def read_env_file(path: str, environ: Mapping[str, str]) -> list[str]:
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as exc:
        raise UsageError(f"open {path}: {exc.strerror or exc}") from exc
    return [_env_value(line.lstrip(), environ) for line in lines if line.strip() and not line.lstrip().startswith("#")]


def env_entries(env_files: list[str], items: list[str], environ: Mapping[str, str]) -> list[str]:
    """`--env-file` lines first, then `-e` items: the Env list run, create and exec send."""
    return [line for path in env_files for line in read_env_file(path, environ)] + [
        _env_value(item, environ) for item in items]


def normalize_caps(names: list[str]) -> list[str] | None:
    """`net_admin` → `CAP_NET_ADMIN`, `ALL` kept: the form the docker CLI (>= 23) sends."""
    out = []
    for name in names:
        upper = name.strip().upper()
        out.append(upper if upper == "ALL" or upper.startswith("CAP_") else "CAP_" + upper)
    return out or None


def _restart_policy(value: str) -> dict[str, Any]:
    name, _, count = value.partition(":")
    if name not in ("no", "always", "unless-stopped", "on-failure"):
        raise UsageError(f"invalid restart policy '{value}'")
    if count and name != "on-failure":
        raise UsageError(f"invalid restart policy format: maximum retry count cannot be used with '{name}'")
    try:
        return {"Name": name, "MaximumRetryCount": int(count or 0)}
    except ValueError:
        raise UsageError(f"invalid restart policy format: maximum retry count must be an integer: {value}") from None


def _volumes(values: list[str]) -> tuple[list[str], dict[str, dict[str, Any]]]:
    binds: list[str] = []
    anonymous: dict[str, dict[str, Any]] = {}
    for value in values:
        if ":" in value:
            source, _, rest = value.partition(":")
            if source.startswith((".", "~")):
                source = os.path.abspath(os.path.expanduser(source))
            binds.append(f"{source}:{rest}")
        else:
            anonymous[value] = {}
    return binds, anonymous


def build(opts: argparse.Namespace, image: str, command: list[str], environ: Mapping[str, str]) -> CreateRequest:
    env = env_entries(opts.env_file, opts.env, environ)
    labels = dict(item.partition("=")[::2] for item in opts.label)
    binds, anonymous = _volumes(opts.volume)
    host: dict[str, Any] = {
        "Binds": binds or None,
        "AutoRemove": opts.rm,
        "Privileged": opts.privileged,
        "ReadonlyRootfs": opts.read_only,
        "CapAdd": normalize_caps(opts.cap_add),
        "CapDrop": normalize_caps(opts.cap_drop),
        "RestartPolicy": _restart_policy(opts.restart),
        "NetworkMode": opts.network or "default",
        "Tmpfs": {d: o for d, _, o in (t.partition(":") for t in opts.tmpfs)} or None,
    }
    if opts.init:
        host["Init"] = True
    if opts.memory:
        host["Memory"] = ram_in_bytes(opts.memory)
    if opts.cpus:
        try:
            host["NanoCpus"] = round(float(opts.cpus) * 1e9)
        except ValueError:
            raise UsageError(f"invalid argument \"{opts.cpus}\" for \"--cpus\" flag") from None
    if opts.pids_limit is not None:
        host["PidsLimit"] = opts.pids_limit
    body: dict[str, Any] = {
        "Image": image,
        "Cmd": command or None,
        "Env": env or None,
        "Labels": labels,
        "Tty": opts.tty,
        "OpenStdin": opts.interactive,
        # As docker's opts.go: a created container is attachable on stdout/stderr (and stdin with -i);
        # `run -d` clears these.  StdinOnce: the container's stdin closes when the attached client's does.
        "StdinOnce": opts.interactive,
        "AttachStdin": opts.interactive,
        "AttachStdout": True,
        "AttachStderr": True,
        "Volumes": anonymous,
        "HostConfig": host,
    }
    if opts.hostname:
        body["Hostname"] = opts.hostname
    if opts.workdir:
        body["WorkingDir"] = opts.workdir
    if opts.user:
        body["User"] = opts.user
    if opts.entrypoint is not None:
        # `--entrypoint ""` resets the image's entrypoint: docker sends [""].
        body["Entrypoint"] = [opts.entrypoint]
    if opts.stop_signal:
        body["StopSignal"] = opts.stop_signal
    if opts.stop_timeout is not None:
        body["StopTimeout"] = opts.stop_timeout
    return CreateRequest(opts.name, opts.platform, body)
