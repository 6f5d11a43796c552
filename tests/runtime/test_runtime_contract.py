"""The runtime contract, in the style of runc's integration suite: the same tests, any runtime binary.

Every test runs against runc (the oracle) and berth-runtime unless
``RUNTIME=/path/to/binary`` picks one.  Each one reads what a container
sees (runtime-spec config.md / config-linux.md, runc's libcontainer/SPEC.md)
or what the host sees around it, through the runtime's CLI only.

    .venv/bin/pytest tests/runtime/test_runtime_contract.py              # runc and berth-runtime
    RUNTIME=/usr/sbin/runc .venv/bin/pytest tests/runtime/test_runtime_contract.py   # one binary
"""

from __future__ import annotations

import errno
import os
import signal
import tempfile
from pathlib import Path
from typing import Any

import pytest

from engine.runtime.capabilities import DEFAULT_CAPABILITIES
from engine.runtime.default_spec import MASKED_PATHS, READONLY_PATHS
from engine.runtime.seccomp import default_seccomp

from .conftest import Bundle
from .oci_runtime import (
    OCIRuntime,
    cgroup_dirs,
    mounts_mentioning,
    wait_exit_status,
    wait_until,
)

pytestmark = pytest.mark.needs_root

MIB = 1024 * 1024


def run(oci: OCIRuntime, bundle: Bundle, args: list[str], name: str = "c", **process: Any) -> tuple[int, str, str]:
    """`run` in the foreground: (exit status, stdout, stderr); the runtime deletes the container."""
    bundle.spec["linux"]["cgroupsPath"] = cid = oci.new_id(name)
    bundle.set_process(args, **process)
    result = oci("run", "--bundle", str(bundle.path), cid, check=False)
    return result.returncode, result.stdout.decode(), result.stderr.decode()


def create(oci: OCIRuntime, bundle: Bundle, args: list[str], out: Any = None, name: str = "c") -> tuple[str, int]:
    """`create` a container running ``args`` (cgroupsPath = its id); returns (id, init pid)."""
    bundle.spec["linux"]["cgroupsPath"] = cid = oci.new_id(name)
    bundle.set_process(args)
    oci("create", "--bundle", str(bundle.path), cid, stdout=out)
    return cid, int(oci.state(cid)["pid"])


def status_field(text: str, name: str) -> str:
    return next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith(f"{name}:"))


# --- what the process sees --------------------------------------------------------------


def test_process_is_pid_1_of_its_namespace(oci: OCIRuntime, bundle: Bundle) -> None:
    code, out, err = run(oci, bundle, ["sh", "-c", "echo $$; readlink /proc/self"])
    assert code == 0, err
    assert out.split() == ["1", "1"]


def test_hostname_is_the_spec_hostname(oci: OCIRuntime, bundle: Bundle) -> None:
    bundle.spec["hostname"] = "contract-host"
    code, out, err = run(oci, bundle, ["hostname"])
    assert code == 0, err
    assert out == "contract-host\n"
    assert os.uname().nodename != "contract-host"  # the host's name is untouched


def _mountinfo(text: str) -> dict[str, tuple[str, set[str]]]:
    """mount point -> (fs type, per-mount options) from /proc/self/mountinfo (last mount wins)."""
    table = {}
    for line in text.splitlines():
        fields = line.split()
        sep = fields.index("-")
        table[fields[4]] = (fields[sep + 1], set(fields[5].split(",")))
    return table


def test_mount_table_has_the_spec_mounts_and_nothing_from_the_host(oci: OCIRuntime, bundle: Bundle) -> None:
    code, out, err = run(oci, bundle, ["cat", "/proc/self/mountinfo"])
    assert code == 0, err
    table = _mountinfo(out)
    # Per-controller mounts under the cgroup tmpfs follow the host's hierarchies: checked by type only.
    cgroup_subs = {p: t for p, (t, _) in table.items() if p.startswith("/sys/fs/cgroup/")}
    assert set(cgroup_subs.values()) <= {"cgroup", "cgroup2"}
    points = set(table) - set(cgroup_subs)
    expected = {"/"} | {m["destination"] for m in bundle.spec["mounts"]}
    expected |= {p for p in READONLY_PATHS if os.path.exists(p)}
    expected |= {p for p in MASKED_PATHS if os.path.exists(p)}
    assert points == expected
    for m in bundle.spec["mounts"]:
        fstype = table[m["destination"]][0]
        if m["type"] == "cgroup":  # v1: a tmpfs of per-controller mounts; pure v2: the cgroup2 tree itself
            assert fstype == ("tmpfs" if cgroup_subs else "cgroup2"), m
        else:
            assert fstype == m["type"], m
    assert "ro" in table["/"][1]  # root.readonly
    assert "ro" in table["/sys"][1] and {"nosuid", "nodev", "noexec"} <= table["/sys"][1]
    for path in READONLY_PATHS:
        if path in table:
            assert table[path][0] == "proc" and "ro" in table[path][1], path


def test_masked_and_readonly_proc_paths(oci: OCIRuntime, bundle: Bundle) -> None:
    # /proc/kcore is the classic example, but kernels without CONFIG_PROC_KCORE (this one) lack it:
    # every masked file the host kernel has must read as /dev/null.
    masked_files = [p for p in MASKED_PATHS if os.path.isfile(p)]
    assert masked_files
    script = (f"for f in {' '.join(masked_files)}; do echo $f $(wc -c < $f) $(stat -c '%t:%T' $f); done; "
              "echo x > /proc/sys/kernel/domainname; echo write=$?; ls -A /proc/acpi | wc -l")
    code, out, err = run(oci, bundle, ["sh", "-c", script])
    assert code == 0, err
    *masked, write, acpi = out.splitlines()
    assert masked == [f"{p} 0 1:3" for p in masked_files]  # /dev/null bound over each
    assert write == "write=1" and "Read-only file system" in err
    assert acpi == "0"  # an empty tmpfs over a masked directory


def test_capabilities_are_the_spec_sets(oci: OCIRuntime, bundle: Bundle) -> None:
    code, out, err = run(oci, bundle, ["cat", "/proc/self/status"])
    assert code == 0, err
    assert status_field(out, "CapEff") == "00000000a80425fb"  # Docker's default set
    assert status_field(out, "CapBnd") == "00000000a80425fb"
    assert status_field(out, "CapAmb") == "0000000000000000"
    assert status_field(out, "NoNewPrivs") == "1"

    caps = {k: ["CAP_KILL"] for k in ("bounding", "effective", "permitted")}
    code, out, err = run(oci, bundle, ["cat", "/proc/self/status"], capabilities=caps)
    assert code == 0, err
    assert status_field(out, "CapEff") == status_field(out, "CapBnd") == "0000000000000020"


PROBE_USERNS = "unshare -U true 2>&1; echo unshare=$?; grep Seccomp: /proc/self/status"


def test_seccomp_filter_denies_with_eperm(oci: OCIRuntime, bundle: Bundle) -> None:
    # Without a filter, creating a user namespace needs no capability: the probe succeeds.
    code, out, err = run(oci, bundle, ["sh", "-c", PROBE_USERNS])
    assert code == 0, err
    assert "unshare=0" in out and "Seccomp:\t0" in out

    # Docker's profile allows unshare(CLONE_NEWUSER) only with CAP_SYS_ADMIN: EPERM here.
    bundle.spec["linux"]["seccomp"] = default_seccomp(list(DEFAULT_CAPABILITIES))
    code, out, err = run(oci, bundle, ["sh", "-c", PROBE_USERNS])
    assert code == 0, err
    assert "unshare=1" in out and os.strerror(errno.EPERM) in out
    assert "Seccomp:\t2" in out


def test_user_and_groups(oci: OCIRuntime, bundle: Bundle) -> None:
    user = {"uid": 1000, "gid": 1001, "additionalGids": [5, 44]}
    code, out, err = run(oci, bundle, ["sh", "-c", "id -u; id -g; id -G"], user=user)
    assert code == 0, err
    uid, gid, groups = out.splitlines()
    assert (uid, gid) == ("1000", "1001")
    assert set(groups.split()) == {"1001", "5", "44"}


def test_rlimits(oci: OCIRuntime, bundle: Bundle) -> None:
    rlimits = [{"type": "RLIMIT_NOFILE", "soft": 333, "hard": 444}, {"type": "RLIMIT_NPROC", "soft": 77, "hard": 88}]
    code, out, err = run(oci, bundle, ["sh", "-c", "ulimit -n; ulimit -Hn; ulimit -u; ulimit -Hu"], rlimits=rlimits)
    assert code == 0, err
    assert out.split() == ["333", "444", "77", "88"]


# --- cgroup limits in effect ------------------------------------------------------------


def _read(path: Path) -> str:
    return path.read_text().strip()


def _oom_kills(dirs: dict[str, Path]) -> int:
    if "memory" in dirs:
        control = dict(line.split() for line in _read(dirs["memory"] / "memory.oom_control").splitlines())
        return int(control["oom_kill"])
    events = dict(line.split() for line in _read(dirs["unified"] / "memory.events").splitlines())
    return int(events["oom_kill"])


def test_memory_hog_is_oom_killed_at_the_limit(oci: OCIRuntime, bundle: Bundle, tmp_path: Path) -> None:
    bundle.spec["linux"]["resources"]["memory"] = {"limit": 32 * MIB}
    out_path = tmp_path / "hog.out"
    with open(out_path, "wb") as out:
        # `tail` keeps the last 10 lines; /dev/zero has no newline, so the "line" grows without end.
        cid, pid = create(oci, bundle, ["sh", "-c", "tail /dev/zero; echo tail=$?"], out=out, name="oom")
    dirs = cgroup_dirs(cid)
    limit_file = dirs["memory"] / "memory.limit_in_bytes" if "memory" in dirs else dirs["unified"] / "memory.max"
    assert _read(limit_file) == str(32 * MIB)
    oci("start", cid)
    assert wait_exit_status(pid) == 0
    assert out_path.read_text() == f"tail={128 + signal.SIGKILL}\n"
    assert _oom_kills(dirs) >= 1


def test_fork_bomb_stops_at_pids_max(oci: OCIRuntime, bundle: Bundle) -> None:
    bundle.spec["linux"]["resources"]["pids"] = {"limit": 10}
    # The bomb runs in a subshell; when fork fails it exits and PID 1 counts the survivors
    # with builtins only (no fork left to spend).  10 = sh + subshell + 8 sleeps at the peak.
    script = ("(while :; do sleep 1000 & done) 2>/dev/shm/err; "
              "n=0; for p in /proc/[0-9]*; do n=$((n+1)); done; echo procs=$n; read e < /dev/shm/err; echo \"$e\"")
    code, out, err = run(oci, bundle, ["sh", "-c", script], name="pids")
    assert code == 0, err
    procs, message = out.splitlines()
    assert procs == "procs=9"  # sh + 8 sleeps once the subshell has gone
    assert os.strerror(errno.EAGAIN) in message


def test_cpu_quota_is_written_and_throttling_counters_move(oci: OCIRuntime, bundle: Bundle) -> None:
    bundle.spec["linux"]["resources"]["cpu"] = {"quota": 20000, "period": 100000}
    cid, pid = create(oci, bundle, ["sh", "-c", "while :; do :; done"], name="cpu")
    dirs = cgroup_dirs(cid)
    if "cpu" in dirs:
        assert _read(dirs["cpu"] / "cpu.cfs_quota_us") == "20000"
        assert _read(dirs["cpu"] / "cpu.cfs_period_us") == "100000"
        stat_file = dirs["cpu"] / "cpu.stat"
    else:
        assert _read(dirs["unified"] / "cpu.max") == "20000 100000"
        stat_file = dirs["unified"] / "cpu.stat"

    def throttled() -> int:
        return int(dict(line.split() for line in _read(stat_file).splitlines())["nr_throttled"])

    # Not necessarily 0 yet: the runtime's own init (runc's Go, or Python) ran in the cgroup during
    # `create` and can exceed 20 ms of a period on a slow machine (seen under QEMU TCG).
    before = throttled()
    oci("start", cid)
    wait_until(lambda: throttled() > before, 30, "the busy loop to be throttled")
    oci("kill", cid, "KILL")
    assert wait_exit_status(pid) == -signal.SIGKILL


# --- lifecycle through the CLI ----------------------------------------------------------


def test_kill_delivers_the_signal(oci: OCIRuntime, bundle: Bundle) -> None:
    ready = bundle.rootfs / "tmp" / "ready"
    bundle.spec["root"]["readonly"] = False
    # `wait` returns early when a trapped signal arrives (a foreground `sleep` would delay the trap).
    script = "trap 'echo usr1 > /tmp/got; exit 3' USR1; echo > /tmp/ready; while :; do sleep 1000 & wait; done"
    cid, pid = create(oci, bundle, ["sh", "-c", script], name="kill")
    oci("start", cid)
    wait_until(ready.exists, 30, "the trap to be installed")
    oci("kill", cid, "USR1")
    assert wait_exit_status(pid) == 3
    assert (bundle.rootfs / "tmp" / "got").read_text() == "usr1\n"


def test_state_goes_created_running_stopped(oci: OCIRuntime, bundle: Bundle) -> None:
    cid, pid = create(oci, bundle, ["sleep", "1000"], name="state")
    created = oci.state(cid)
    assert (created["status"], created["id"], created["pid"]) == ("created", cid, pid)
    assert created["bundle"] == str(bundle.path)
    oci("start", cid)
    assert oci.state(cid)["status"] == "running"
    # SIGKILL: a PID 1 without a handler ignores SIGTERM, even from the parent namespace.
    oci("kill", cid, "KILL")
    assert wait_exit_status(pid) == -signal.SIGKILL
    assert oci.state(cid)["status"] == "stopped"
    oci("delete", cid)
    gone = oci("state", cid, check=False)
    assert gone.returncode == 1 and "container does not exist" in gone.stderr.decode()


def test_delete_leaves_no_mount_cgroup_or_process(oci: OCIRuntime, bundle: Bundle) -> None:
    bundle.spec["linux"]["resources"].update({"memory": {"limit": 64 * MIB}, "pids": {"limit": 50}})
    with tempfile.TemporaryFile() as out:
        cid, pid = create(oci, bundle, ["sh", "-c", "sleep 1000 & sleep 1000"], out=out, name="delete")
    dirs = cgroup_dirs(cid)
    oci("start", cid)
    procs_file = dirs["pids"] / "cgroup.procs" if "pids" in dirs else dirs["unified"] / "cgroup.procs"
    # Two processes: busybox sh execs its last command, so PID 1 becomes the second sleep.
    wait_until(lambda: len(procs_file.read_text().split()) == 2, 30, "both sleeps to run")
    members = [int(p) for p in procs_file.read_text().split()]
    mount_ns = os.readlink(f"/proc/{pid}/ns/mnt")
    assert mount_ns != os.readlink("/proc/self/ns/mnt")
    assert mounts_mentioning(bundle.path) == []  # the container's mounts never reach the host
    oci.delete_reaping(cid, pid)
    assert not oci.state_dir_exists(cid)
    assert [p for p in members if os.path.exists(f"/proc/{p}")] == []
    assert [d for d in dirs.values() if d.exists()] == []
    assert mounts_mentioning(bundle.path) == []
    # No process is left in the container's mount namespace: its mounts went with it.  runc's delete
    # returns once SIGKILL is sent, so a killed process may still be exiting: wait for that, bounded.
    wait_until(lambda: not any(_mount_ns_of(entry) == mount_ns for entry in os.listdir("/proc") if entry.isdigit()),
               30, "the container's mount namespace to have no process")


def _mount_ns_of(pid: str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None
