"""OCI runtimes berthd can drive: Berth's own (the library, `berth`) or an external binary with runc's CLI.

`--runtime NAME` / daemon.json `default-runtime` pick the default; daemon.json
`runtimes: {"name": {"path": ..., "runtimeArgs": [...]}}` adds runtimes, like
dockerd; `runc` and `crun` are known by name when they are on PATH.  A
container records its runtime's name in HostConfig.Runtime at create and uses
it for its whole life: the shim creates, execs and deletes through it, the
daemon starts, signals, pauses, updates and lists its processes through it.
Each external runtime keeps its state under its own `--root` in the exec root.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.containers.errors import InvalidConfig

BERTH = "berth"
_ON_PATH = ("runc", "crun")


class RuntimeConfigError(Exception):
    """A runtimes / default-runtime setting berthd cannot use (refused at start, like dockerd)."""


class RuntimeFailed(Exception):
    """An external runtime's command failed; the message is the runtime's own."""


@dataclass(frozen=True)
class RuntimeSpec:
    name: str
    path: str
    args: tuple[str, ...] = ()

    def info(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path}
        if self.args:
            out["runtimeArgs"] = list(self.args)
        return out


@dataclass
class Runtimes:
    """The configured runtimes, by name, and the default."""

    default: str = BERTH
    external: dict[str, RuntimeSpec] = field(default_factory=dict)

    @classmethod
    def from_config(cls, default: str, configured: dict[str, Any]) -> Runtimes:
        if not isinstance(configured, dict):
            raise RuntimeConfigError("runtimes: must be an object of name -> {\"path\": ..., \"runtimeArgs\": [...]}")
        external: dict[str, RuntimeSpec] = {}
        for name in _ON_PATH:
            found = shutil.which(name)
            if found:
                external[name] = RuntimeSpec(name, found)
        for name, entry in configured.items():
            if name == BERTH:
                raise RuntimeConfigError(f"runtimes: {name!r} is Berth's built-in runtime and cannot be redefined")
            if not isinstance(entry, dict) or not isinstance(entry.get("path"), str) or not entry["path"]:
                raise RuntimeConfigError(f"runtimes: {name!r} needs a \"path\" string")
            args = entry.get("runtimeArgs") or []
            if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
                raise RuntimeConfigError(f"runtimes: {name!r}: \"runtimeArgs\" must be a list of strings")
            path = shutil.which(entry["path"]) or entry["path"]
            if not Path(path).is_file():
                raise RuntimeConfigError(f"runtimes: {name!r}: {entry['path']} not found")
            external[name] = RuntimeSpec(name, path, tuple(args))
        runtimes = cls(default or BERTH, external)
        if runtimes.default != BERTH and runtimes.default not in external:
            raise RuntimeConfigError(f"default-runtime: unknown runtime {runtimes.default!r} (known: "
                                     f"{', '.join(runtimes.names())})")
        return runtimes

    def names(self) -> list[str]:
        return [BERTH, *sorted(self.external)]

    def resolve(self, name: str | None) -> str:
        """A container's runtime name (HostConfig.Runtime; empty: the default), checked like dockerd."""
        chosen = name or self.default
        if chosen != BERTH and chosen not in self.external:
            raise InvalidConfig(f"unknown or invalid runtime name: {chosen}")
        return chosen

    def info(self) -> dict[str, Any]:
        """/info's Runtimes and DefaultRuntime."""
        listed = {BERTH: {"path": "berth-runtime"}}
        listed.update({name: spec.info() for name, spec in sorted(self.external.items())})
        return {"Runtimes": listed, "DefaultRuntime": self.default}


@dataclass
class CreatedProcess:
    """What a create (or exec) through an external runtime gives the shim (shim.py's `Created` shape)."""

    pid: int
    cgroup_path: str | None = None


class OCIRuntime:
    """An external runtime binary driven through runc's command line."""

    def __init__(self, path: str, args: list[str] | tuple[str, ...], root: Path) -> None:
        self.path = path
        self.args = list(args)
        self.root = root

    @classmethod
    def of(cls, spec: RuntimeSpec, root: Path) -> OCIRuntime:
        return cls(spec.path, spec.args, root)

    def command(self, *argv: str) -> list[str]:
        return [self.path, *self.args, "--root", str(self.root), *argv]

    def run(self, *argv: str, stdin: bytes | None = None) -> bytes:
        """Run one verb; its stdio is not the container's (create and exec below give theirs)."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        done = subprocess.run(self.command(*argv), input=stdin, capture_output=True, check=False,
                              stdin=None if stdin is not None else subprocess.DEVNULL)
        if done.returncode != 0:
            raise RuntimeFailed(error_text(done.stderr, f"{Path(self.path).name} {argv[0]} failed"))
        return done.stdout

    def _with_log(self, log: Path, argv: list[str], stdio: tuple[int, int, int] | None) -> None:
        """A verb whose stdio the container's process inherits: the runtime's own errors go to `log`."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        cmd = [self.path, *self.args, "--root", str(self.root), "--log", str(log), "--log-format", "json", *argv]
        if stdio is None:
            done = subprocess.run(cmd, check=False)
        else:
            done = subprocess.run(cmd, stdin=stdio[0], stdout=stdio[1], stderr=stdio[2], check=False)
        if done.returncode != 0:
            try:
                raw = log.read_bytes()
            except FileNotFoundError:
                raw = b""
            raise RuntimeFailed(error_text(raw, f"{Path(self.path).name} {argv[0]} exited with {done.returncode}"))

    def create(self, container_id: str, bundle: str, workdir: Path, console_socket: str | None) -> CreatedProcess:
        """`create`: the init waits for `start`; the caller's fds 0-2 become its stdio (no terminal).

        The runtime exits once the init is set up: the init is reparented to the shim, a subreaper.
        """
        from engine.runtime.cgroups import open_cgroup

        pid_file = workdir / "init.pid"
        argv = ["create", "--bundle", bundle, "--pid-file", str(pid_file)]
        if console_socket:
            argv += ["--console-socket", console_socket]
        self._with_log(workdir / "runtime.log", [*argv, container_id], None)
        spec = json.loads((Path(bundle) / "config.json").read_text())
        cgroups_path = (spec.get("linux") or {}).get("cgroupsPath")
        return CreatedProcess(int(pid_file.read_text()), open_cgroup(cgroups_path, container_id).path)

    def exec(self, container_id: str, process: dict[str, Any], workdir: Path, console_socket: str | None,
             stdio: tuple[int, int, int] | None) -> int:
        """`exec --detach`: the process's pid; it is reparented to the shim like the init."""
        tag = f"exec-{os.getpid()}"
        process_file, pid_file = workdir / f"{tag}.json", workdir / f"{tag}.pid"
        process_file.write_text(json.dumps(process))
        argv = ["exec", "--process", str(process_file), "--detach", "--pid-file", str(pid_file)]
        if console_socket:
            argv += ["--console-socket", console_socket]
        try:
            self._with_log(workdir / f"{tag}.log", [*argv, container_id], stdio)
            return int(pid_file.read_text())
        finally:
            for path in (process_file, pid_file, workdir / f"{tag}.log"):
                path.unlink(missing_ok=True)

    def start(self, container_id: str) -> None:
        self.run("start", container_id)

    def kill(self, container_id: str, sig: int) -> None:
        self.run("kill", container_id, str(sig))

    def delete(self, container_id: str) -> None:
        """`delete --force`; a container the runtime does not know (already deleted) is not an error."""
        try:
            self.run("delete", "--force", container_id)
        except RuntimeFailed as exc:
            if "does not exist" not in str(exc) and "not found" not in str(exc):
                raise

    def pause(self, container_id: str) -> None:
        self.run("pause", container_id)

    def resume(self, container_id: str) -> None:
        self.run("resume", container_id)

    def update(self, container_id: str, resources: dict[str, Any]) -> None:
        self.run("update", "--resources", "-", container_id, stdin=json.dumps(resources).encode())

    def pids(self, container_id: str) -> list[int]:
        return [int(p) for p in json.loads(self.run("ps", "--format", "json", container_id) or b"[]") or []]


def error_text(raw: bytes, fallback: str) -> str:
    """The runtime's error from its stderr or its --log file: runc logs JSON lines with a "msg"."""
    lines = [line.strip() for line in raw.decode(errors="replace").splitlines() if line.strip()]
    for line in reversed(lines):
        try:
            entry = json.loads(line)
        except ValueError:
            return line
        if isinstance(entry, dict) and entry.get("level") in ("error", "fatal") and entry.get("msg"):
            return str(entry["msg"])
    return fallback
