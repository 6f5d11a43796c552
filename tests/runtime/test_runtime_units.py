"""Pure parts of the runtime (no root): option parsing, path resolution, plans, state store."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import pytest

from engine.runtime import syscalls as sc
from engine.runtime.devices import resources_with_default_devices
from engine.runtime.errors import ContainerExists, ContainerNotFound, InvalidSpec
from engine.runtime.foreground import SUN_PATH_MAX, console_listener
from engine.runtime.lifecycle import parse_signal
from engine.runtime.mount_options import parse_mount_options, remount_flags
from engine.runtime.namespaces import format_id_map, plan_namespaces
from engine.runtime.paths_in_root import resolve_in_root
from engine.runtime.process import environment, find_executable
from engine.runtime.spec import check_container_id, validate_spec
from engine.runtime.state import ContainerRecord, StateStore


def test_bind_ro_needs_a_remount_with_the_flags() -> None:
    opts = parse_mount_options(["rbind", "ro", "nosuid", "rprivate", "size=10"])
    assert opts.is_bind and opts.needs_remount
    assert opts.flags & sc.MS_REC and opts.propagation == [sc.MS_PRIVATE | sc.MS_REC]
    assert opts.data_string == "size=10"
    assert remount_flags(opts) == sc.MS_REMOUNT | sc.MS_BIND | sc.MS_RDONLY | sc.MS_NOSUID


def test_rw_clears_ro_and_plain_bind_needs_no_remount() -> None:
    opts = parse_mount_options(["ro", "rw"], "bind")
    assert opts.is_bind and not opts.needs_remount


def test_symlinks_cannot_escape_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "abs").symlink_to("/etc")
    (root / "up").symlink_to("../../../..")
    assert resolve_in_root(str(root), "/abs/passwd") == str(root / "etc" / "passwd")
    assert resolve_in_root(str(root), "/up/etc") == str(root / "etc")
    assert resolve_in_root(str(root), "/../../x") == str(root / "x")
    (root / "loop").symlink_to("loop")
    with pytest.raises(OSError):
        resolve_in_root(str(root), "/loop/x")


def test_namespace_plan_separates_new_joined_and_user() -> None:
    plan = plan_namespaces([{"type": "pid"}, {"type": "mount"}, {"type": "network", "path": "/run/netns/x"},
                            {"type": "user"}])
    assert plan.new_user and plan.new_flags == sc.CLONE_NEWPID | sc.CLONE_NEWNS
    assert plan.join == [("network", "/run/netns/x")]
    with pytest.raises(InvalidSpec):
        plan_namespaces([{"type": "pid"}, {"type": "pid"}])


def test_id_map_text() -> None:
    maps = [{"containerID": 0, "hostID": 1000, "size": 1}, {"containerID": 1, "hostID": 100000, "size": 65536}]
    assert format_id_map(maps) == "0 1000 1\n1 100000 65536\n"


def test_signal_names_and_numbers() -> None:
    assert parse_signal("KILL") == parse_signal("SIGKILL") == parse_signal("9") == signal.SIGKILL
    with pytest.raises(ValueError):
        parse_signal("NOPE")


def test_spec_validation_rejects_what_the_runtime_cannot_run() -> None:
    good = {"ociVersion": "1.0.2", "root": {"path": "rootfs"}, "process": {"args": ["sh"], "cwd": "/"}}
    validate_spec(good)
    for broken in ({**good, "ociVersion": "2.0"}, {**good, "process": {"args": []}},
                   {**good, "mounts": [{"destination": "relative"}]}, {**good, "root": {}}):
        with pytest.raises(InvalidSpec):
            validate_spec(broken)
    for bad_id in ("", "..", "a/b", "x y"):
        with pytest.raises(InvalidSpec):
            check_container_id(bad_id)


def test_environment_and_path_lookup(tmp_path: Path) -> None:
    assert environment(["A=1", "B=x=y", "A=2"]) == {"A": "2", "B": "x=y"}
    exe = tmp_path / "tool"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    assert find_executable("tool", {"PATH": f"/nonexistent:{tmp_path}"}, "/") == str(exe)


def test_default_device_rules_come_after_the_specs_own() -> None:
    resources = resources_with_default_devices({"devices": [{"allow": False, "access": "rwm"}]},
                                               [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}])
    rules = resources["devices"]
    assert rules[0] == {"allow": False, "access": "rwm"}
    assert {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rwm"} in rules[1:]
    assert {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"} in rules


def test_state_store_reserves_ids_and_writes_atomically(tmp_path: Path) -> None:
    store = StateStore(str(tmp_path / "root"))
    store.reserve("berthtest-a")
    with pytest.raises(ContainerExists):
        store.reserve("berthtest-a")
    record = ContainerRecord(id="berthtest-a", bundle="/b", rootfs="/b/rootfs", pid=12, annotations={"k": "v"})
    store.save(record)
    assert store.load("berthtest-a") == record
    assert store.list_ids() == ["berthtest-a"]
    assert not [n for n in os.listdir(store.container_dir("berthtest-a")) if ".tmp" in n]
    store.remove("berthtest-a")
    with pytest.raises(ContainerNotFound):
        store.load("berthtest-a")


def test_plan_of_a_read_only_bind_mount_is_bind_then_remount_then_propagation() -> None:
    from engine.runtime.mount_options import MountCall, plan_mount

    entry = {"destination": "/data", "type": "bind", "source": "data", "options": ["rbind", "ro", "nosuid", "rslave"]}
    plan = plan_mount(entry, "/root/rootfs/data", "/bundles/b1")
    assert plan.kind == "bind" and plan.source == "/bundles/b1/data"  # relative to the bundle
    assert plan.calls == [
        MountCall("/bundles/b1/data", "/root/rootfs/data", None, sc.MS_BIND | sc.MS_REC),
        MountCall(None, "/root/rootfs/data", None, sc.MS_REMOUNT | sc.MS_BIND | sc.MS_RDONLY | sc.MS_NOSUID,
                  keep_locked=True),
    ]
    assert plan.propagation == [MountCall(None, "/root/rootfs/data", None, sc.MS_SLAVE | sc.MS_REC)]


def test_plan_of_a_tmpfs_passes_its_data_and_flags_in_one_call() -> None:
    from engine.runtime.mount_options import MountCall, plan_mount

    entry = {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}
    plan = plan_mount(entry, "/r/dev/shm", "/b")
    assert plan.kind == "filesystem" and plan.propagation == []
    assert plan.calls == [MountCall("shm", "/r/dev/shm", "tmpfs", sc.MS_NOSUID | sc.MS_NOEXEC | sc.MS_NODEV,
                                    "mode=1777,size=65536k")]


def test_console_listener_fits_a_deep_state_directory(tmp_path: Path) -> None:
    # `exec -t` without --console-socket listens in the container's state dir; a deep --root
    # must not make it fail with "AF_UNIX path too long".
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    with console_listener(str(deep)) as (path, listener):
        assert len(os.fsencode(path)) < SUN_PATH_MAX
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.connect(path)
            accepted, _ = listener.accept()
            accepted.close()
    assert not os.path.exists(path) and not os.path.exists(os.path.dirname(path))
    with console_listener(str(tmp_path)) as (short_path, _):
        assert os.path.dirname(short_path) == str(tmp_path)  # a short one stays in the state dir
