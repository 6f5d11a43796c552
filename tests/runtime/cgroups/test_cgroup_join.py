"""A new child enters a cgroup without a migration (join_plan): cloned into its v2 directory, v1 by itself."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from engine.runtime import syscalls
from engine.runtime.cgroups import Cgroup, V1Cgroup, V2Cgroup
from engine.runtime.cgroups.base import join_v1_as_current_thread
from engine.runtime.cgroups.hierarchy import UNIFIED, parse_proc_cgroup
from tests.runtime.cgroups.conftest import CgroupMaker
from tests.runtime.conftest import Bundle
from tests.runtime.forked import run_in_child

pytestmark = pytest.mark.needs_root


def test_a_child_joined_by_the_plan_is_in_every_hierarchy_of_the_cgroup(cgroups: CgroupMaker) -> None:
    cg = cgroups("join")
    into, v1_dirs = cg.join_plan()
    assert into is not None or v1_dirs, "a plan that joins nothing"
    if isinstance(cg, V1Cgroup):
        assert into == cg.dirs.get(UNIFIED) and UNIFIED not in v1_dirs
        assert sorted(v1_dirs) == sorted({d for k, d in cg.dirs.items() if k != UNIFIED})
    go_r, go_w = os.pipe()
    fd = os.open(into, os.O_RDONLY | os.O_DIRECTORY) if into is not None else -1
    pid = syscalls.fork_into_cgroup(fd) if into is not None else os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(go_w)
            join_v1_as_current_thread(v1_dirs)
            os.read(go_r, 1)  # stay, a member, until the parent has looked
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    try:
        if fd >= 0:
            os.close(fd)
        os.close(go_r)
        members: list[int] = []
        for _ in range(1000):  # bounded: the child joins in well under a second
            members = cg.pids()
            if pid in members and _joined_everywhere(pid, cg):
                break
            os.sched_yield()
        assert pid in members
        assert _joined_everywhere(pid, cg)
    finally:
        os.close(go_w)  # the child reads EOF and leaves
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def _joined_everywhere(pid: int, cg: Cgroup) -> bool:
    with open(f"/proc/{pid}/cgroup") as f:
        own = parse_proc_cgroup(f.read())
    assert isinstance(cg, (V1Cgroup, V2Cgroup))
    paths = cg.paths if isinstance(cg, V1Cgroup) else {UNIFIED: "/" + cg.cgroup_path.strip("/")}
    return all(own.get(key) == paths[key] for key in cg.directories())


def test_a_refused_clone_raises_and_leaves_no_child() -> None:
    with pytest.raises(OSError):
        syscalls.fork_into_cgroup(os.open("/", os.O_RDONLY | os.O_DIRECTORY))  # not a cgroup directory


@pytest.mark.parametrize("clone3", ["used", "refused"])
def test_a_container_init_is_in_its_cgroup_either_way(
    clone3: str, bundle: Bundle, run_tag: str, tmp_path: Path
) -> None:
    """Cloned into its cgroup, or (where the kernel refuses clone3) forked and migrated by the parent as before."""
    cid = f"{run_tag}-join-{clone3}"
    bundle.set_process(["sleep", "30"])
    path = bundle.for_container(cid)

    def create_and_look() -> dict[str, object]:
        from engine.runtime import create, lifecycle, state
        from engine.runtime.cgroups import open_cgroup
        from engine.runtime.foreground import become_subreaper

        if clone3 == "refused":

            def refuse(cgroup_dir_fd: int) -> int:
                raise OSError(errno.ENOSYS, "clone3 refused by the test")

            syscalls.fork_into_cgroup = refuse
        become_subreaper()
        store = state.StateStore(str(tmp_path / "state"))
        devnull = os.open(os.devnull, os.O_RDWR)
        record = create.create_container(store, cid, str(path), create.CreateOptions(stdio=(devnull,) * 3))
        try:
            with open(f"/proc/{record.pid}/cgroup") as f:
                seen = parse_proc_cgroup(f.read())
            cg = open_cgroup(record.cgroup_path, cid)
            assert isinstance(cg, (V1Cgroup, V2Cgroup))
            wanted = cg.paths if isinstance(cg, V1Cgroup) else {UNIFIED: "/" + cg.cgroup_path.strip("/")}
            joined = {k: seen.get(k) == wanted[k] for k in cg.directories()}
            return {"joined": joined, "listed": record.pid in cg.pids()}
        finally:
            lifecycle.delete_container(store, cid, force=True)

    result, status = run_in_child(create_and_look)
    assert status == 0 and result is not None and "ok" in result, result
    assert result["ok"]["listed"]
    assert result["ok"]["joined"] and all(result["ok"]["joined"].values()), result["ok"]["joined"]
