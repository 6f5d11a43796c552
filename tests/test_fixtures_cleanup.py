"""The cleanup guard removes every kind of tagged resource and nothing else.

Each test invents a run tag of its own (never the session's), creates real
resources with it plus a control resource without it, and runs the sweep
narrowed to names carrying its tag, so it cannot disturb other sessions."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures import capabilities
from tests.fixtures.cleanup import (
    RUNS_DIR_ENV,
    SWEEP_UNTAGGED_ENV,
    TAG_ENV,
    ProcessRecord,
    RunLease,
    SweepPolicy,
    SweepReport,
    cgroup_mountpoints,
    chain_name,
    forget_dead_runs,
    is_running,
    link_name,
    link_tag_of,
    new_run_tag,
    process_start_time,
    read_mountinfo,
    register_process,
    register_record,
    run_is_live,
    runs_dir,
    sweep,
    sweep_iptables,
    tag_hex,
    tag_of,
)

REPO_ROOT = Path(__file__).resolve().parents[1]


def _only(tag: str):
    hex_digits = tag_hex(tag)
    return lambda name: hex_digits in name.lower()


def _end_policy(tag: str) -> SweepPolicy:
    """The end-of-run sweep of `tag`, narrowed to its names."""
    return SweepPolicy(tag, include_own=True, name_filter=_only(tag))


@pytest.fixture
def fake_run() -> Iterator[str]:
    """A run tag held live by this test; whatever the test leaves is swept afterwards."""
    tag = new_run_tag()
    lease = RunLease(tag)
    try:
        yield tag
    finally:
        sweep(_end_policy(tag))
        lease.release()


@pytest.fixture
def control_name() -> str:
    """A name that carries no berthtest prefix: the sweep must never touch it."""
    return f"bertkeep-{secrets.token_hex(3)}"


def _sleeper(env_tag: str | None = None) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    if env_tag is not None:
        env[TAG_ENV] = env_tag
    return subprocess.Popen(["sleep", "1000"], env=env)


def _mountpoints() -> set[str]:
    return {m.mountpoint for m in read_mountinfo()}


def _sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


# ---------------------------------------------------------------- tags and leases


def test_run_tag_is_exported_and_live(run_tag, tmp_path):
    assert tag_of(run_tag) == run_tag
    assert os.environ[TAG_ENV] == run_tag
    assert run_is_live(run_tag)
    assert str(tmp_path).startswith(f"/tmp/{run_tag}/")


def test_resource_names_carry_the_tag():
    tag = "berthtest-0a1b2c3d"
    assert tag_of(f"/tmp/{tag}-x/mnt") == tag
    assert tag_of(chain_name(tag, "NAT")) == tag
    assert chain_name(tag, "NAT") == "BERTHTEST-0A1B2C3D-NAT"
    assert link_tag_of(link_name(tag, "br0")) == tag
    assert tag_of("berthtest-notatag") is None
    with pytest.raises(ValueError):
        link_name(tag, "toolong")


def test_released_lease_makes_the_run_dead():
    tag = new_run_tag()
    lease = RunLease(tag)
    assert run_is_live(tag)
    lease.release()
    assert not run_is_live(tag)


# ---------------------------------------------------------------- processes


def test_sweep_stops_registered_process(fake_run):
    proc = _sleeper()
    register_process(proc.pid, tag=fake_run)
    report = sweep(_end_policy(fake_run))
    assert proc.wait(timeout=30) == -signal.SIGTERM
    assert f"{proc.pid} of {fake_run}" in report.names("process")


def test_sweep_spares_a_pid_whose_start_time_differs(fake_run):
    # What a recycled pid looks like: same number, another start time.
    proc = _sleeper()
    try:
        start = process_start_time(proc.pid)
        assert start is not None
        register_record(ProcessRecord(proc.pid, start + 1), tag=fake_run)
        sweep(_end_policy(fake_run))
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


def test_sweep_stops_unregistered_process_that_inherited_the_tag(fake_run):
    proc = _sleeper(env_tag=fake_run)
    report = sweep(_end_policy(fake_run))
    assert proc.wait(timeout=30) == -signal.SIGTERM
    assert any(name.startswith(f"{proc.pid} ") for name in report.names("process"))


def test_sweep_spares_processes_of_a_live_run(fake_run):
    other = new_run_tag()
    proc = _sleeper(env_tag=fake_run)
    register_process(proc.pid, tag=fake_run)
    try:
        # Another run sweeps everything it may; fake_run's lease is held.
        policy = SweepPolicy(other, include_own=True, name_filter=_only(fake_run))
        sweep(policy)
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


# ---------------------------------------------------------------- files and mounts


def test_sweep_removes_tmp_dirs_and_files_of_the_run(fake_run, control_name):
    tagged_dir = Path(f"/tmp/{fake_run}-work")
    (tagged_dir / "sub").mkdir(parents=True)
    (tagged_dir / "sub" / "file").write_text("x")
    tagged_file = Path(f"/tmp/{fake_run}.sock")
    tagged_file.write_text("")
    control = Path(f"/tmp/{control_name}")
    control.mkdir()
    try:
        report = sweep(_end_policy(fake_run))
        assert not tagged_dir.exists()
        assert not tagged_file.exists()
        assert control.is_dir()
        assert str(tagged_dir) in report.names("tmp dir")
    finally:
        control.rmdir()


def test_start_sweep_removes_what_a_dead_run_left(run_tag):
    dead = new_run_tag()
    RunLease(dead).release()
    leftover = Path(f"/tmp/{dead}-leftover")
    leftover.mkdir()
    # The start sweep of this session would do the same, narrowed here to `dead`.
    sweep(SweepPolicy(run_tag, include_own=False, name_filter=_only(dead)))
    assert not leftover.exists()


def test_sweep_keeps_resources_of_a_live_run(fake_run):
    kept = Path(f"/tmp/{fake_run}-kept")
    kept.mkdir()
    sweep(SweepPolicy(new_run_tag(), include_own=False, name_filter=_only(fake_run)))
    assert kept.is_dir()


def test_untagged_names_are_kept_unless_asked_and_no_other_run_is_live(run_tag, monkeypatch):
    token = secrets.token_hex(4)
    untagged = Path(f"/tmp/berthtest-untagged-{token}")
    untagged.mkdir()

    def policy(**kwargs) -> SweepPolicy:
        return SweepPolicy(new_run_tag(), include_own=False, name_filter=lambda n: token in n, **kwargs)

    try:
        monkeypatch.delenv(SWEEP_UNTAGGED_ENV, raising=False)
        report = sweep(policy())
        assert untagged.is_dir()
        assert report.kept_untagged == [str(untagged)]
        # "auto": this session is live and is another run for the sweeping tag.
        monkeypatch.setenv(SWEEP_UNTAGGED_ENV, "1")
        assert policy().untagged == "auto"
        sweep(policy())
        assert untagged.is_dir()
        sweep(policy(untagged="remove"))
        assert not untagged.exists()
    finally:
        shutil.rmtree(untagged, ignore_errors=True)


@pytest.mark.needs_root
def test_sweep_unmounts_nested_mounts_deepest_first(fake_run, control_name):
    outer = Path(f"/tmp/{fake_run}-mnt/outer")
    outer.mkdir(parents=True)
    _sh("mount", "-t", "tmpfs", "berthtest", str(outer))
    (outer / "inner").mkdir()
    _sh("mount", "-t", "tmpfs", "berthtest", str(outer / "inner"))
    _sh("mount", "-t", "tmpfs", "berthtest", str(outer / "inner"))  # stacked on the same mountpoint
    control = Path(f"/tmp/{control_name}")
    control.mkdir()
    _sh("mount", "-t", "tmpfs", "bertkeep", str(control))
    try:
        report = sweep(_end_policy(fake_run))
        mounted = _mountpoints()
        assert str(outer) not in mounted
        assert str(outer / "inner") not in mounted
        assert str(control) in mounted
        assert report.names("mount")[:3] == [str(outer / "inner")] * 2 + [str(outer)]
        assert not outer.parent.exists()
    finally:
        _sh("umount", str(control))
        control.rmdir()


@pytest.mark.needs_root
def test_tmp_dir_with_a_mount_left_is_not_recursed(fake_run, control_name):
    # A bind mount of host files that could not be unmounted must never be emptied.
    host_dir = Path(f"/tmp/{control_name}")
    (host_dir / "precious").mkdir(parents=True)
    tagged = Path(f"/tmp/{fake_run}-bind")
    (tagged / "bound").mkdir(parents=True)
    _sh("mount", "--bind", str(host_dir), str(tagged / "bound"))
    try:
        # Narrow the sweep to tmp dirs only: the mount stays.
        from tests.fixtures.cleanup import sweep_tmp_dirs

        report = SweepReport()
        sweep_tmp_dirs(_end_policy(fake_run), report)
        assert (host_dir / "precious").is_dir()
        assert report.errors and report.errors[0][0] == "tmp dir"
    finally:
        _sh("umount", str(tagged / "bound"))
        shutil.rmtree(host_dir)


# ---------------------------------------------------------------- network


@pytest.mark.needs_root
def test_sweep_deletes_tagged_netns(fake_run, control_name):
    tagged = f"{fake_run}-ns"
    _sh("ip", "netns", "add", tagged)
    _sh("ip", "netns", "add", control_name)
    try:
        report = sweep(_end_policy(fake_run))
        names = set(os.listdir("/run/netns"))
        assert tagged not in names
        assert control_name in names
        assert tagged in report.names("netns")
    finally:
        _sh("ip", "netns", "del", control_name)


def _links() -> set[str]:
    return set(os.listdir("/sys/class/net"))


@pytest.mark.needs_root
def test_sweep_deletes_only_tagged_veth_and_bridge_links(fake_run):
    veth, peer = link_name(fake_run, "a"), link_name(fake_run, "b")
    bridge, ifb = link_name(fake_run, "br"), link_name(fake_run, "i")
    control, control_peer = f"bk{secrets.token_hex(3)}a", f"bk{secrets.token_hex(3)}b"
    _sh("ip", "link", "add", veth, "type", "veth", "peer", "name", peer)
    _sh("ip", "link", "add", bridge, "type", "bridge")
    _sh("ip", "link", "add", ifb, "type", "ifb")  # a tagged name but another kind of link
    _sh("ip", "link", "add", control, "type", "veth", "peer", "name", control_peer)
    try:
        sweep(_end_policy(fake_run))
        present = _links()
        assert not {veth, peer, bridge} & present
        assert {ifb, control, control_peer} <= present
    finally:
        for name in (ifb, control):
            subprocess.run(["ip", "link", "del", name], capture_output=True)


@pytest.mark.needs_root
def test_sweep_iptables_removes_tagged_chains_and_jumps_only(fake_run, control_name):
    if not capabilities.iptables().available:
        pytest.skip(capabilities.iptables().missing)
    # A netns of our own: the host's firewall is never touched.
    netns = f"{control_name}-ipt"
    _sh("ip", "netns", "add", netns)
    filter_chain, nat_chain = chain_name(fake_run, "F"), chain_name(fake_run, "N")
    keep_chain = f"BERTKEEP-{tag_hex(fake_run).upper()}"

    def ipt(*args: str) -> str:
        return subprocess.run(
            ["ip", "netns", "exec", netns, "iptables", *args], check=True, capture_output=True, text=True
        ).stdout

    try:
        ipt("-N", filter_chain)
        ipt("-A", filter_chain, "-p", "tcp", "--dport", "1", "-j", "ACCEPT")
        ipt("-N", keep_chain)
        ipt("-A", keep_chain, "-j", filter_chain)
        ipt("-A", keep_chain, "-p", "udp", "-j", "ACCEPT")
        ipt("-I", "INPUT", "1", "-m", "comment", "--comment", "berth test jump", "-j", filter_chain)
        ipt("-t", "nat", "-N", nat_chain)
        ipt("-t", "nat", "-A", "PREROUTING", "-j", nat_chain)
        report = SweepReport()
        sweep_iptables(_end_policy(fake_run), report, netns=netns)
        filter_rules, nat_rules = ipt("-S"), ipt("-t", "nat", "-S")
        assert filter_chain not in filter_rules
        assert nat_chain not in nat_rules
        assert f"-A {keep_chain} -p udp -j ACCEPT" in filter_rules
        assert report.errors == []
        assert len(report.names("iptables chain")) == 2
    finally:
        _sh("ip", "netns", "del", netns)


# ---------------------------------------------------------------- cgroups


@pytest.mark.needs_root
def test_sweep_removes_cgroups_in_every_hierarchy_and_kills_their_tasks(fake_run, control_name):
    hierarchies = [Path(m) for m in cgroup_mountpoints()]
    assert hierarchies, "no cgroup hierarchy mounted"
    tagged = [h / f"{fake_run}-cg" / "child" for h in hierarchies]
    for cg in tagged:
        cg.mkdir(parents=True)
    control = hierarchies[0] / control_name
    control.mkdir()
    proc = _sleeper()
    try:
        freezer = next((cg for cg in tagged if (cg / "freezer.state").exists()), None)
        joinable = freezer or next(cg for cg in tagged if (cg / "cgroup.procs").exists())
        (joinable / "cgroup.procs").write_text(str(proc.pid))
        if freezer is not None:
            # A frozen task ignores SIGKILL until thawed: the sweep must thaw first.
            (freezer.parent / "freezer.state").write_text("FROZEN")
        report = sweep(_end_policy(fake_run))
        assert proc.wait(timeout=30) == -signal.SIGKILL
        assert not any(cg.parent.exists() for cg in tagged)
        assert control.is_dir()
        assert len(report.names("cgroup")) == 2 * len(hierarchies)
    finally:
        proc.kill()
        proc.wait()
        control.rmdir()


# ---------------------------------------------------------------- the guard in a real session


def _nested_pytest(test_file: Path, runs_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != TAG_ENV} | runs_env
    return subprocess.run(
        [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest",
            "-c", str(REPO_ROOT / "pyproject.toml"), "--rootdir", str(REPO_ROOT), str(test_file),
        ],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


LEAKY_TEST = """
import os, signal, subprocess
from pathlib import Path
from tests.fixtures.cleanup import register_process

def test_leaks():
    tag = os.environ["BERTH_TEST_TAG"]
    out = Path(os.environ["LEAK_REPORT"])
    registered = subprocess.Popen(["sleep", "1000"])
    register_process(registered.pid)
    unregistered = subprocess.Popen(["sleep", "1000"], start_new_session=True)
    Path(f"/tmp/{tag}-leaked").mkdir()
    out.write_text(f"{tag} {registered.pid} {unregistered.pid}")
    if os.environ.get("LEAK_CRASH"):
        os.kill(os.getpid(), signal.SIGKILL)
"""


def _leak(tmp_path: Path, crash: bool) -> tuple[str, list[int], subprocess.CompletedProcess[str]]:
    test_file = tmp_path / "test_leaky.py"
    test_file.write_text(LEAKY_TEST)
    report = tmp_path / "leak-report"
    env = {"LEAK_REPORT": str(report)} | ({"LEAK_CRASH": "1"} if crash else {})
    result = _nested_pytest(test_file, env)
    tag, *pids = report.read_text().split()
    return tag, [int(p) for p in pids], result


def test_session_end_sweep_removes_what_a_test_leaked(tmp_path):
    tag, pids, result = _leak(tmp_path, crash=False)
    starts = {pid: process_start_time(pid) for pid in pids}
    assert result.returncode == 0, result.stdout + result.stderr
    assert "cleanup end sweep: removed" in result.stdout
    assert not Path(f"/tmp/{tag}-leaked").exists()
    assert not Path(f"/tmp/{tag}").exists()
    assert not any(is_running(pid, start) for pid, start in starts.items())


def test_next_session_start_sweep_removes_what_a_crashed_session_left(tmp_path):
    tag, pids, crashed = _leak(tmp_path, crash=True)
    assert crashed.returncode == -signal.SIGKILL
    assert not run_is_live(tag)
    starts = {pid: process_start_time(pid) for pid in pids}
    empty_test = tmp_path / "test_empty.py"
    empty_test.write_text("def test_nothing():\n    pass\n")
    # Any session's start sweep (this nested one, or a concurrent one) removes the leftovers.
    result = _nested_pytest(empty_test, {})
    assert result.returncode == 0, result.stdout + result.stderr
    assert not Path(f"/tmp/{tag}-leaked").exists()
    assert not any(is_running(pid, start) for pid, start in starts.items())


def test_forget_dead_runs_drops_only_unlocked_run_files(run_tag, tmp_path, monkeypatch):
    # A private runs dir: other sessions' sweeps cannot forget our dead run first.
    monkeypatch.setenv(RUNS_DIR_ENV, str(tmp_path / "runs"))
    own, live, dead = new_run_tag(), new_run_tag(), new_run_tag()
    own_lease, live_lease, dead_lease = RunLease(own), RunLease(live), RunLease(dead)
    register_process(os.getpid(), tag=dead)
    # A crashed session leaves its files behind without holding the lock.
    os.close(dead_lease._fd)  # type: ignore[arg-type]
    dead_lease._fd = None
    try:
        assert forget_dead_runs(own) == [dead]
        assert not (runs_dir() / f"{dead}.lock").exists()
        assert not (runs_dir() / f"{dead}.procs").exists()
        assert run_is_live(live) and run_is_live(own)
    finally:
        live_lease.release()
        own_lease.release()
