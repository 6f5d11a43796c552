"""The bootstrap cloned straight into the container's PID namespace (launcher.can_clone_init).

Where nothing has to happen before the PID namespace exists, clone3(CLONE_NEWPID)
makes the init at once: no second fork, so the init is the creator's own child.
Everywhere else the two-fork path stays, and the init is orphaned by its bootstrap.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.runtime import init
from engine.runtime.create import CreateOptions, create_container
from engine.runtime.launcher import can_clone_init
from engine.runtime.lifecycle import delete_container
from engine.runtime.namespaces import plan_namespaces
from engine.runtime.state import StateStore
from engine.runtime.sync import Socket

from .conftest import Bundle
from .forked import run_in_child

_DOCKER_NAMESPACES = [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount", "cgroup")]


def _ctx(namespaces: list[dict[str, str]], joined: tuple[str, ...] = ()) -> init.InitContext:
    plan = plan_namespaces(namespaces)
    return init.InitContext(
        spec={}, bundle="/b", rootfs="/b/rootfs", plan=plan, sync_sock=Socket(),
        join_fds=[(ns_type, -1) for ns_type in joined],
    )


@pytest.mark.parametrize(
    ("namespaces", "joined", "expected"),
    [
        (_DOCKER_NAMESPACES, (), True),
        ([*_DOCKER_NAMESPACES[1:], {"type": "pid", "path": "/proc/1/ns/pid"}], ("pid",), False),
        ([*_DOCKER_NAMESPACES, {"type": "user"}], (), False),
        ([*_DOCKER_NAMESPACES, {"type": "user", "path": "/proc/1/ns/user"}], ("user",), False),
        ([*_DOCKER_NAMESPACES, {"type": "time"}], (), False),
        ([*_DOCKER_NAMESPACES, {"type": "time", "path": "/proc/1/ns/time"}], ("time",), False),
        ([{"type": "mount"}, {"type": "network"}], (), False),  # no new PID namespace: nothing to save
        ([ns for ns in _DOCKER_NAMESPACES if ns["type"] != "network"] + [{"type": "network", "path": "/run/netns/x"}],
         ("network",), True),
    ],
    ids=["docker-defaults", "joins-pid", "new-user", "joins-user", "new-time", "joins-time", "no-pid", "joins-net"],
)
def test_which_plans_clone_the_init_directly(
    namespaces: list[dict[str, str]], joined: tuple[str, ...], expected: bool
) -> None:
    ctx = _ctx(namespaces, joined)
    try:
        assert can_clone_init(ctx) is expected
    finally:
        ctx.sync_sock.close()


def test_a_docker_style_container_init_is_the_creators_own_child(
    bundle: Bundle, tmp_path: Path, run_tag: str
) -> None:
    """One fork, not two: the init's parent is the process that called create, and it is PID 1 inside."""
    container_id = f"{run_tag}-clone-init"
    bundle.set_process(["sleep", "30"])
    path = bundle.for_container(container_id)
    store_root = str(tmp_path / "state")

    def create_and_look() -> dict[str, object]:
        store = StateStore(store_root)
        devnull = os.open(os.devnull, os.O_RDWR)
        record = create_container(store, container_id, str(path), CreateOptions(stdio=(devnull, devnull, devnull)))
        try:
            status = _status_fields(record.pid)
            return {"creator": os.getpid(), "ppid": int(status["PPid"]), "nspid": status["NSpid"].split()}
        finally:
            delete_container(store, container_id, force=True)

    result, wait_status = run_in_child(create_and_look)
    assert wait_status == 0 and result is not None and "ok" in result, result
    seen = result["ok"]
    assert seen["ppid"] == seen["creator"]
    assert seen["nspid"][-1] == "1"
    assert not (tmp_path / "state" / container_id).exists()


def _status_fields(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status", encoding="utf-8") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
