"""Driving any runc-compatible runtime binary the way runc's integration suite does.

runc's tests/integration take the binary from ``$RUNC``; here ``RUNTIME``
(a path) selects one, and by default every module using ``oci_runtimes()``
runs once against runc (the oracle) and once against berth-runtime.  Only
the CLI is used: what one runtime passes, the other must pass too.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

from engine.runtime.procinfo import reap_if_child
from tests.fixtures.cleanup import tag_of

_counter = itertools.count()


def berth_runtime_argv() -> list[str]:
    script = Path(sys.executable).parent / "berth-runtime"
    return [str(script)] if script.exists() else [sys.executable, "-m", "engine.runtime.cli"]


def oci_runtimes() -> list[Any]:
    """pytest params: ``$RUNTIME`` alone when set, else runc (if installed) and berth-runtime."""
    chosen = os.environ.get("RUNTIME")
    if chosen:
        name = os.path.basename(chosen)
        argv = berth_runtime_argv() if name == "berth-runtime" and not os.path.isabs(chosen) else [chosen]
        return [pytest.param(argv, id=name)]
    runc = shutil.which("runc")
    params = [pytest.param(berth_runtime_argv(), id="berth-runtime")]
    if runc is not None:
        params.insert(0, pytest.param([runc], id="runc"))
    return params


def give_tagged_cgroups_path(args: tuple[str, ...] | list[str]) -> None:
    """Before `create`/`run`: a bundle whose spec names no ``linux.cgroupsPath`` gets the container id.

    That is runc's own default (a cgroup named after the id, under the
    caller's); berth-runtime's default is ``berth/<id>``, whose parent
    ``berth`` carries no run tag and outlived the run.  Container ids here
    carry the run tag (``new_id``), so the cleanup guard sweeps the cgroup of a
    container a crashed test left behind.  Specs that set the field keep it.
    """
    verbs = [i for i, arg in enumerate(args) if arg in ("create", "run")]
    if not verbs or len(args) <= verbs[0] + 1 or tag_of(args[-1]) is None:
        return
    rest = list(args[verbs[0] + 1 :])
    bundle = "."
    for i, arg in enumerate(rest[:-1]):
        if arg in ("--bundle", "-b"):
            bundle = rest[i + 1]
        elif arg.startswith("--bundle="):
            bundle = arg.partition("=")[2]
    config = Path(bundle) / "config.json"
    try:
        spec = json.loads(config.read_text())
    except (OSError, ValueError):
        return  # a test of a missing or broken config: leave it as it is
    linux = spec.get("linux") if isinstance(spec, dict) else None
    if isinstance(linux, dict) and "cgroupsPath" not in linux:
        linux["cgroupsPath"] = args[-1]
        config.write_text(json.dumps(spec))


@dataclass
class OCIRuntime:
    """One runtime binary, one state root; remembers its containers so teardown can delete them."""

    argv: list[str]
    root: Path
    tag: str
    created: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return os.path.basename(self.argv[-1] if self.argv[0] == sys.executable else self.argv[0])

    @property
    def is_runc(self) -> bool:
        return self.name == "runc"

    @property
    def is_berth(self) -> bool:
        return self.name in ("berth-runtime", "engine.runtime.cli")

    def new_id(self, name: str = "c") -> str:
        container_id = f"{self.tag}-{name}{next(_counter)}"
        self.created.append(container_id)
        return container_id

    def __call__(self, *args: str, check: bool = True, stdout: IO[bytes] | None = None,
                 timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
        cmd = [*self.argv, "--root", str(self.root), *args]
        give_tagged_cgroups_path(args)
        # Files, not pipes: a container inherits the CLI's stdio and may outlive it;
        # a reader waiting for EOF on a pipe would wait for the container too.
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=stdout or out, stderr=err, timeout=timeout)
            out.seek(0)
            err.seek(0)
            result = subprocess.CompletedProcess(cmd, proc.returncode, out.read(), err.read())
        if check and result.returncode != 0:
            raise AssertionError(f"{cmd} exited {result.returncode}: {result.stderr.decode()}")
        return result

    def state(self, container_id: str) -> dict[str, Any]:
        state: dict[str, Any] = json.loads(self("state", container_id).stdout)
        return state

    def state_dir_exists(self, container_id: str) -> bool:
        return (self.root / container_id).exists()

    def delete_reaping(self, container_id: str, pid: int) -> None:
        """`delete --force` as the supervisor would: the pytest process (a subreaper) reaps the init."""
        proc = subprocess.Popen([*self.argv, "--root", str(self.root), "delete", "--force", container_id],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while proc.poll() is None:
            if pid:
                reap_if_child(pid)
            time.sleep(0.005)
        if pid:
            reap_if_child(pid)

    def cleanup(self) -> None:
        for container_id in self.created:
            if not self.state_dir_exists(container_id):
                continue
            result = self("state", container_id, check=False)
            pid = int(json.loads(result.stdout).get("pid", 0)) if result.returncode == 0 else 0
            self.delete_reaping(container_id, pid)


def wait_exit_status(pid: int, timeout: float = 30) -> int:
    """Reap our (re-parented) child ``pid``; its exit code, or -signal.  Fails instead of hanging."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    raise AssertionError(f"process {pid} did not exit within {timeout} s")


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    """Poll for a condition the test needs before acting (never to assert a duration)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def cgroup_dirs(cgroups_path: str) -> dict[str, Path]:
    """Every directory a relative ``linux.cgroupsPath`` names, per hierarchy, for this process's cgroups.

    v1 controllers: /sys/fs/cgroup/<controller>/<own>/<path>; the v2 tree is
    /sys/fs/cgroup/unified/<own>/<path> (hybrid) or, on a pure v2 host,
    /sys/fs/cgroup/<parent of own>/<path>: runc's fs2 driver nests beside the
    caller's cgroup, which holds processes (v2's "no internal processes" rule).
    """
    dirs: dict[str, Path] = {}
    unified = Path("/sys/fs/cgroup/unified")
    with open("/proc/self/cgroup", encoding="ascii") as f:
        for line in f:
            _, controllers, own = line.rstrip("\n").split(":", 2)
            rel = own.lstrip("/")
            if not controllers:
                if unified.is_dir():
                    dirs["unified"] = unified / rel / cgroups_path
                else:
                    dirs["unified"] = Path("/sys/fs/cgroup") / os.path.dirname("/" + rel).lstrip("/") / cgroups_path
                continue
            for ctrl in controllers.split(","):
                name = ctrl.removeprefix("name=")
                if (Path("/sys/fs/cgroup") / name).is_dir():
                    dirs[name] = Path("/sys/fs/cgroup") / name / rel / cgroups_path
    return dirs


def mounts_mentioning(path: Path) -> list[str]:
    """Lines of the host's mountinfo whose mount point or root lies under ``path``."""
    needle = str(path)
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        return [line for line in f if needle in line]


def children_of(pid: int) -> set[int]:
    """Live or zombie children of ``pid``: with pytest as subreaper, a leaked container init shows here."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as f:
                stat = f.read()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.add(int(entry))
    return found
