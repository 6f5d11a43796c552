"""Fixtures for the shared cgroup suite: one factory per implementation the
host can run, and children that act only once they are inside the cgroup.

Every cgroup is named ``<run tag>-...`` and nests under the test process's
own cgroup, so the session's cleanup guard sweeps whatever a crash leaves.
"""

from __future__ import annotations

import itertools
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from engine.runtime.cgroups import Cgroup, Hierarchies, V1Cgroup, V2Cgroup, detect, open_in
from engine.runtime.cgroups.base import wait_for
from tests.fixtures import cleanup

NO_V2_CONTROLLER = (
    "no {controller} controller on the v2 hierarchy of this {mode} host: on a hybrid host it is bound to its "
    "cgroup v1 hierarchy, and a controller serves one hierarchy at a time, so no cgroup2 mount here can get it "
    "(the v2 root offers only {offered}); test_cgroup_suite_in_vm.py runs the suite on a pure-v2 QEMU guest"
)

_counter = itertools.count()
# Bound on waiting for a child's answer: generous for a loaded machine, far below pytest's 300 s.
RESULT_TIMEOUT = 60.0


class Child:
    """A Python child that blocks until told to go, then runs ``code`` and prints its result.

    It is moved into the cgroup while it waits, so what ``code`` does happens
    inside: no sleeps, no races.
    """

    def __init__(self, code: str) -> None:
        script = "import sys\nsys.stdin.readline()\n" + code
        self.proc = subprocess.Popen(
            [sys.executable, "-c", script],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.pid = self.proc.pid
        cleanup.register_process(self.pid)

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def result(self, timeout: float = RESULT_TIMEOUT) -> str:
        """The child's next line.  Bounded: a child that never answers fails the test instead of
        hanging it (readline would also wait for EOF on a pipe some grandchild still holds)."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        line = b""
        deadline = time.monotonic() + timeout
        while not line.endswith(b"\n"):
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise AssertionError(f"child {self.pid} gave no result within {timeout} s (got {line!r})")
            chunk = os.read(fd, 1)  # unbuffered: nothing is read past the line
            if not chunk:
                break
            line += chunk
        return line.decode().strip()

    def wait(self, timeout: float = RESULT_TIMEOUT) -> int:
        rc = self.proc.wait(timeout)  # TimeoutExpired fails the test; cleanup's stop() kills it
        cleanup.unregister_process(self.pid)
        return rc

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.wait()


BUSY_LOOP = "while True:\n    pass\n"


@pytest.fixture(scope="session")
def hierarchies() -> Hierarchies:
    return detect()


def v2_only(h: Hierarchies) -> Hierarchies:
    """The host seen through its v2 mount only (on a hybrid host: the controller-less unified tree)."""
    return Hierarchies(mode="v2", v2=h.v2, own=h.own)


def build(kind: str, h: Hierarchies, cgroups_path: str | None, container_id: str) -> Cgroup:
    if kind == "v1":
        if not h.v1:
            pytest.skip("no cgroup v1 hierarchy on this host")
        return open_in(h, cgroups_path, container_id)
    if h.v2 is None:
        pytest.skip("no cgroup v2 hierarchy on this host")
    return open_in(v2_only(h), cgroups_path, container_id)


def require_controller(cg: Cgroup, controller: str) -> None:
    """Skip when ``cg`` cannot use ``controller`` on this host, with the reason.

    ``controller`` is the v1 name; v2 names differ only for block I/O (blkio → io).
    """
    if isinstance(cg, V1Cgroup):
        if controller not in cg.dirs:
            pytest.skip(f"no {controller} controller mounted on this v1 host")
        return
    assert isinstance(cg, V2Cgroup)
    name = "io" if controller == "blkio" else controller
    with open(os.path.join(cg.dir, "cgroup.controllers")) as f:
        if name in f.read().split():
            return
    with open(os.path.join(os.path.dirname(cg.dir), "cgroup.controllers")) as f:
        offered = name in f.read().split()
    if offered:
        pytest.skip(
            f"the {name} controller could not be enabled for the test cgroup: its parent holds "
            "processes (cgroup-v2 'no internal processes' rule)"
        )
    with open(os.path.join(cg.mount.mountpoint, "cgroup.controllers")) as f:
        on_root = " ".join(f.read().split()) or "nothing"
    pytest.skip(NO_V2_CONTROLLER.format(controller=name, mode=detect().mode, offered=on_root))


def _emptied(cg: Cgroup) -> Callable[[], bool]:
    return lambda: not cg.pids()


class CgroupMaker:
    """Makes cgroups of one implementation and children to put in them; cleans both up."""

    def __init__(self, kind: str, h: Hierarchies, run_tag: str) -> None:
        self.kind = kind
        self.hierarchies = h
        self.run_tag = run_tag
        self.made: list[Cgroup] = []
        self.children: list[Child] = []

    def __call__(self, name: str = "cg", create: bool = True) -> Cgroup:
        cg = build(self.kind, self.hierarchies, f"{self.run_tag}-{name}-{next(_counter)}", "unused")
        self.made.append(cg)
        if create:
            cg.create()
        return cg

    def spawn(self, code: str) -> Child:
        child = Child(code)
        self.children.append(child)
        return child

    def cleanup(self) -> None:
        for child in self.children:
            child.stop()
        for cg in reversed(self.made):
            if not cg.exists():
                continue
            if cg.is_frozen():
                cg.thaw()
            if cg.pids():  # grandchildren a failed test left behind
                cg.kill_all(signal.SIGKILL)
                wait_for(_emptied(cg), 10, "leftover processes to die")
            cg.destroy()


@pytest.fixture(params=["v1", "v2"])
def cgroups(request: pytest.FixtureRequest, hierarchies: Hierarchies, run_tag: str) -> Iterator[CgroupMaker]:
    """The shared suite's parameter: every test runs once per implementation."""
    maker = CgroupMaker(request.param, hierarchies, run_tag)
    yield maker
    maker.cleanup()
