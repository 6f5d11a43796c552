"""What a process sees inside a Berth container (runc's libcontainer/SPEC.md checklist)."""

from __future__ import annotations

import os
from collections.abc import Callable
from subprocess import CompletedProcess

import pytest

from .conftest import Bundle, RuntimeCLI

pytestmark = pytest.mark.needs_root
Run = Callable[..., CompletedProcess[bytes]]


def output(result: CompletedProcess[bytes]) -> str:
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def test_hostname_and_pid_1_are_the_containers_own(bundle: Bundle, run_container: Run) -> None:
    bundle.spec["hostname"] = "berth-box"
    out = output(run_container(["sh", "-c", "hostname; echo $$"]))
    assert out.split() == ["berth-box", "1"]
    assert os.uname().nodename != "berth-box"


def test_mount_table_is_private_and_host_paths_are_gone(bundle: Bundle, run_container: Run) -> None:
    out = output(run_container(["sh", "-c", "cat /proc/self/mountinfo; ls /"]))
    mountpoints = [line.split()[4] for line in out.splitlines() if " - " in line]
    assert mountpoints[0] == "/"
    assert {"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys"} <= set(mountpoints)
    # pivot_root: nothing of the host's tree (e.g. /work, /usr) is visible or mounted.
    assert not any(m.startswith(("/work", "/usr", "/tmp/")) for m in mountpoints)
    assert "work" not in out.split() and "usr" not in out.split()


def test_dev_has_the_default_devices_and_nothing_else_from_the_host(run_container: Run) -> None:
    out = output(run_container(["sh", "-c", "ls -1 /dev; ls -l /dev/null /dev/ptmx /dev/fd"]))
    lines = out.splitlines()
    names = set(lines[: lines.index(next(x for x in lines if x.startswith(("c", "l"))))])
    assert names == {"fd", "full", "mqueue", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin", "stdout",
                     "tty", "urandom", "zero"}
    assert any(line.startswith("crw-rw-rw-") and line.endswith("/dev/null") for line in lines)
    assert any("/dev/ptmx -> pts/ptmx" in line for line in lines)
    assert any("/dev/fd -> /proc/self/fd" in line for line in lines)


def test_devices_work(run_container: Run) -> None:
    out = output(run_container(["sh", "-c", "echo x > /dev/null && head -c 4 /dev/zero | od -An -tx1"]))
    assert out.split() == ["00", "00", "00", "00"]


def test_masked_paths_are_unreadable(bundle: Bundle, run_container: Run) -> None:
    assert os.path.getsize("/proc/keys") == 0 and os.listdir("/sys/firmware")  # what the host shows
    with open("/proc/keys") as f:
        assert f.read()  # the host's /proc/keys has content: masking must hide it
    out = output(run_container(["sh", "-c", "wc -c < /proc/keys; ls -A /sys/firmware | wc -l"]))
    assert out.split() == ["0", "0"]


def test_readonly_paths_refuse_writes(run_container: Run) -> None:
    result = run_container(["sh", "-c", "echo 1 > /proc/sys/kernel/domainname"])
    assert result.returncode != 0 and b"Read-only file system" in result.stderr


def test_readonly_rootfs_refuses_writes(bundle: Bundle, run_container: Run) -> None:
    result = run_container(["sh", "-c", "touch /newfile"])
    assert result.returncode != 0 and b"Read-only file system" in result.stderr
    bundle.spec["root"]["readonly"] = False
    assert run_container(["sh", "-c", "touch /newfile"]).returncode == 0
    assert (bundle.rootfs / "newfile").exists()


def test_bind_mounts_are_read_only_or_writable_as_asked(
    bundle: Bundle, run_container: Run, tmp_path: os.PathLike[str]
) -> None:
    ro_dir = os.path.join(tmp_path, "ro")
    rw_dir = os.path.join(tmp_path, "rw")
    os.mkdir(ro_dir)
    os.mkdir(rw_dir)
    with open(os.path.join(ro_dir, "hello"), "w") as f:
        f.write("from host\n")
    bundle.spec["mounts"] += [
        {"destination": "/ro", "type": "bind", "source": ro_dir, "options": ["bind", "ro"]},
        {"destination": "/rw", "type": "bind", "source": rw_dir, "options": ["rbind", "rw", "nosuid"]},
    ]
    result = run_container(["sh", "-c", "cat /ro/hello; echo new > /rw/file; touch /ro/x"])
    assert result.stdout == b"from host\n"
    assert b"Read-only file system" in result.stderr and result.returncode != 0
    with open(os.path.join(rw_dir, "file")) as f:
        assert f.read() == "new\n"
    assert not os.path.exists(os.path.join(ro_dir, "x"))
    # The host's own mount table is untouched by the container's mounts.
    with open("/proc/self/mountinfo") as f:
        assert ro_dir not in f.read()


def test_user_group_cwd_env_umask_and_rlimits_are_applied(bundle: Bundle, run_container: Run) -> None:
    out = output(run_container(
        ["sh", "-c", "id -u; id -g; id -G; pwd; echo $GREETING; umask; ulimit -n; ulimit -Hn; "
         "cat /proc/self/oom_score_adj"],
        user={"uid": 1000, "gid": 1001, "additionalGids": [1002, 1003], "umask": 0o027},
        cwd="/tmp",
        env=["PATH=/bin", "GREETING=hello"],
        rlimits=[{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 800}],
        oomScoreAdj=123,
    ))
    assert out.split() == ["1000", "1001", "1001", "1002", "1003", "/tmp", "hello", "0027", "512", "800", "123"]


def test_no_new_privileges_is_set(run_container: Run) -> None:
    out = output(run_container(["sh", "-c", "grep NoNewPrivs /proc/self/status"], noNewPrivileges=True))
    assert out.split() == ["NoNewPrivs:", "1"]
    out = output(run_container(["sh", "-c", "grep NoNewPrivs /proc/self/status"], noNewPrivileges=False))
    assert out.split() == ["NoNewPrivs:", "0"]


def test_docker_default_capabilities_are_applied(run_container: Run) -> None:
    out = output(run_container(["sh", "-c", "grep CapEff /proc/self/status"]))
    assert out.split() == ["CapEff:", "00000000a80425fb"]


def test_sysctl_is_written_in_the_containers_namespace(bundle: Bundle, run_container: Run) -> None:
    bundle.spec["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    bundle.spec["linux"]["readonlyPaths"] = []
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        host_before = f.read()
    out = output(run_container(["cat", "/proc/sys/net/ipv4/ip_forward"]))
    assert out == "1\n"
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        assert f.read() == host_before


def test_user_namespace_maps_root_to_an_unprivileged_host_uid(
    bundle: Bundle, run_container: Run, tmp_path: os.PathLike[str]
) -> None:
    shared = os.path.join(tmp_path, "shared")
    os.mkdir(shared)
    os.chmod(shared, 0o777)
    linux = bundle.spec["linux"]
    linux["namespaces"].append({"type": "user"})
    linux["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    linux["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    bundle.spec["mounts"].append({"destination": "/shared", "type": "bind", "source": shared, "options": ["rbind"]})
    os.chown(bundle.rootfs, 100000, 100000)
    # The mapped root (host uid 100000) must be able to reach the rootfs, as with runc:
    # open up pytest's 0700 temporary directories on the way.
    path = os.path.dirname(bundle.rootfs)
    while path.startswith("/tmp/") and len(path) > len("/tmp/"):
        os.chmod(path, os.stat(path).st_mode | 0o111)
        path = os.path.dirname(path)
    out = output(run_container(["sh", "-c", "id -u; cat /proc/self/uid_map; touch /shared/made; ls /dev"]))
    lines = out.split("\n")
    assert lines[0] == "0"
    assert lines[1].split() == ["0", "100000", "65536"]
    assert os.stat(os.path.join(shared, "made")).st_uid == 100000
    assert {"null", "zero", "tty", "urandom"} <= set(lines[2:])


def test_joining_an_existing_network_namespace_by_path(bundle: Bundle, run_container: Run, run_tag: str) -> None:
    import subprocess

    name = f"{run_tag}-net"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        path = f"/run/netns/{name}"
        bundle.spec["linux"]["namespaces"] = [
            ns if ns["type"] != "network" else {"type": "network", "path": path}
            for ns in bundle.spec["linux"]["namespaces"]
        ]
        out = output(run_container(["readlink", "/proc/self/ns/net"]))
        assert out.strip() == f"net:[{os.stat(path).st_ino}]"
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=True)


@pytest.mark.parametrize("propagation", ["rshared", "rslave", "rprivate", "shared"])
def test_rootfs_propagation_modes_start(bundle: Bundle, run_container: Run, propagation: str) -> None:
    bundle.spec["linux"]["rootfsPropagation"] = propagation
    out = output(run_container(["sh", "-c", "awk '$5 == \"/\" {print $7}' /proc/self/mountinfo"]))
    optional_fields = out.strip()
    # A peer-group tag (mountinfo(5) optional fields) only when asked for shared propagation.
    if not propagation.endswith("shared"):
        assert not optional_fields.startswith("shared:"), optional_fields


def test_spec_devices_are_created_with_their_mode_and_owner(bundle: Bundle, run_container: Run) -> None:
    bundle.spec["linux"]["devices"] = [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229,
                                        "fileMode": 0o640, "uid": 7, "gid": 8}]
    out = output(run_container(["stat", "-c", "%A %u %g %t:%T", "/dev/fuse"]))
    assert out.split() == ["crw-r-----", "7", "8", "a:e5"]


def test_default_seccomp_profile_is_enforced(bundle: Bundle, run_container: Run) -> None:
    from engine.runtime.capabilities import DEFAULT_CAPABILITIES
    from engine.runtime.seccomp import default_seccomp

    bundle.spec["linux"]["seccomp"] = default_seccomp(list(DEFAULT_CAPABILITIES))
    script = "grep '^Seccomp:' /proc/self/status; unshare -U true 2>/dev/null; echo unshare=$?"
    for nnp in (True, False):  # loaded late under no_new_privs, early while privileged otherwise
        out = output(run_container(["sh", "-c", script], noNewPrivileges=nnp))
        assert out.split() == ["Seccomp:", "2", "unshare=1"], nnp
    bundle.spec["linux"].pop("seccomp")
    assert output(run_container(["sh", "-c", script])).split() == ["Seccomp:", "0", "unshare=0"]


def test_cgroup_namespace_shows_the_container_cgroup_as_root(run_container: Run) -> None:
    out = output(run_container(["cat", "/proc/self/cgroup"]))
    paths = {line.split(":", 2)[2] for line in out.splitlines()}
    assert paths == {"/"}, out


def test_exec_into_a_user_namespace_container(bundle: Bundle, runtime: RuntimeCLI) -> None:
    linux = bundle.spec["linux"]
    linux["namespaces"].append({"type": "user"})
    linux["uidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    linux["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    os.chown(bundle.rootfs, 200000, 200000)
    path = os.path.dirname(bundle.rootfs)
    while path.startswith("/tmp/") and len(path) > len("/tmp/"):
        os.chmod(path, os.stat(path).st_mode | 0o111)
        path = os.path.dirname(path)
    bundle.set_process(["sleep", "1000"])
    cid = runtime.new_id()
    runtime("run", "--detach", "--bundle", str(bundle.path), cid)
    pid = runtime.state(cid)["pid"]
    out = runtime("exec", cid, "sh", "-c", "id -u; cat /proc/self/uid_map; readlink /proc/self/ns/user").stdout
    lines = out.decode().splitlines()
    assert lines[0] == "0" and lines[1].split() == ["0", "200000", "65536"]
    assert lines[2] == os.readlink(f"/proc/{pid}/ns/user")


def test_no_pivot_moves_the_root_and_chroots(bundle: Bundle, runtime: RuntimeCLI) -> None:
    bundle.set_process(["sh", "-c", "ls /; awk '$5 == \"/\"' /proc/self/mountinfo | wc -l"])
    result = runtime("run", "--no-pivot", "--bundle", str(bundle.path), runtime.new_id())
    names = result.stdout.decode().split()
    assert "busybox" not in names and "bin" in names and "work" not in names
    assert names[-1] == "1"  # the rootfs is the mount at "/"
