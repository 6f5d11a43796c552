"""create / start / state / kill / delete / list / ps / pause / run, through the real CLI."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from engine.runtime.lifecycle import wait_for_exit
from engine.runtime.procinfo import reap_if_child

from .conftest import Bundle, RuntimeCLI
from .oci_schemas import validate

pytestmark = pytest.mark.needs_root


def assert_valid_state(state: dict[str, object]) -> None:
    validate(state, "state-schema.json")


def test_create_start_kill_delete_walks_through_the_statuses(bundle: Bundle, runtime: RuntimeCLI) -> None:
    bundle.set_process(["sleep", "1000"])
    cid = runtime.new_id()
    runtime("create", "--bundle", str(bundle.path), cid)
    created = runtime.state(cid)
    assert created["status"] == "created" and created["id"] == cid
    assert created["bundle"] == str(bundle.path) and isinstance(created["pid"], int)
    assert_valid_state(created)
    # Before start the init has not exec'd the user process yet.
    assert Path(f"/proc/{created['pid']}/cmdline").read_bytes().split(b"\0")[0] != b"sleep"

    runtime("start", cid)
    running = runtime.state(cid)
    assert running["status"] == "running" and running["pid"] == created["pid"]
    assert_valid_state(running)
    assert Path(f"/proc/{running['pid']}/cmdline").read_bytes().split(b"\0")[:2] == [b"sleep", b"1000"]

    runtime("kill", cid, "KILL")
    reap_if_child(int(created["pid"]))  # we are the subreaper: collect it like a supervisor would
    stopped = runtime.state(cid)
    assert stopped["status"] == "stopped"
    assert_valid_state(stopped)

    runtime("delete", cid)
    gone = runtime("state", cid, check=False)
    assert gone.returncode == 1 and b"container does not exist" in gone.stderr


def test_start_of_a_running_container_is_refused(bundle: Bundle, runtime: RuntimeCLI) -> None:
    bundle.set_process(["sleep", "1000"])
    cid = runtime.new_id()
    runtime("run", "--detach", "--bundle", str(bundle.path), cid)
    again = runtime("start", cid, check=False)
    assert again.returncode == 1 and b"running" in again.stderr


def test_delete_of_a_running_container_needs_force(bundle: Bundle, runtime: RuntimeCLI) -> None:
    bundle.set_process(["sleep", "1000"])
    cid = runtime.new_id()
    runtime("run", "--detach", "--bundle", str(bundle.path), cid)
    pid = runtime.state(cid)["pid"]
    refused = runtime("delete", cid, check=False)
    assert refused.returncode == 1 and b"not stopped" in refused.stderr
    assert runtime.delete_reaping(cid, int(pid)) == 0
    assert not Path(f"/proc/{pid}").exists() or Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    assert not (runtime.root / cid).exists()


def test_create_with_a_missing_executable_fails_and_leaves_nothing(bundle: Bundle, runtime: RuntimeCLI) -> None:
    bundle.set_process(["no-such-binary"])
    cid = runtime.new_id()
    failed = runtime("create", "--bundle", str(bundle.path), cid, check=False)
    assert failed.returncode == 1 and b"executable file not found" in failed.stderr
    assert not (runtime.root / cid).exists()


def test_run_returns_the_exit_status_of_the_process(bundle: Bundle, runtime: RuntimeCLI) -> None:
    bundle.set_process(["sh", "-c", "echo out; echo err >&2; exit 7"])
    result = runtime("run", "--bundle", str(bundle.path), runtime.new_id(), check=False)
    assert result.returncode == 7
    assert result.stdout == b"out\n" and result.stderr == b"err\n"


def test_run_reports_death_by_signal_as_128_plus_signal(bundle: Bundle, runtime: RuntimeCLI) -> None:
    bundle.set_process(["sh", "-c", "kill -SEGV $$"])
    # PID 1 ignores signals it has no handler for; run the shell as a child of PID 1.
    bundle.set_process(["sh", "-c", "sh -c 'kill -USR1 $$'; exit $?"])
    result = runtime("run", "--bundle", str(bundle.path), runtime.new_id(), check=False)
    assert result.returncode == 128 + signal.SIGUSR1


def test_list_and_ps_show_the_container(bundle: Bundle, runtime: RuntimeCLI) -> None:
    bundle.set_process(["sleep", "1000"])
    cid = runtime.new_id()
    runtime("run", "--detach", "--bundle", str(bundle.path), cid)
    pid = runtime.state(cid)["pid"]
    listed = json.loads(runtime("list", "--format", "json").stdout)
    assert [(c["id"], c["status"], c["pid"]) for c in listed] == [(cid, "running", pid)]
    assert cid in runtime("list").stdout.decode()
    assert json.loads(runtime("ps", "--format", "json", cid).stdout) == [pid]


def test_pause_and_resume_freeze_the_container(bundle: Bundle, runtime: RuntimeCLI) -> None:
    bundle.set_process(["sleep", "1000"])
    cid = runtime.new_id()
    runtime("run", "--detach", "--bundle", str(bundle.path), cid)
    pid = runtime.state(cid)["pid"]
    runtime("pause", cid)
    assert runtime.state(cid)["status"] == "paused"
    # A frozen task sleeps in the freezer's refrigerator ("D" on v1, "S" with cgroup.freeze on v2).
    runtime("resume", cid)
    assert runtime.state(cid)["status"] == "running"
    assert Path(f"/proc/{pid}/stat").read_text().split()[2] in ("S", "R")


def test_kill_all_signals_every_process(bundle: Bundle, runtime: RuntimeCLI) -> None:
    bundle.set_process(["sh", "-c", "sleep 1000 & sleep 1000 & wait"])
    cid = runtime.new_id()
    runtime("run", "--detach", "--bundle", str(bundle.path), cid)
    pids = json.loads(runtime("ps", "--format", "json", cid).stdout)
    assert len(pids) == 3
    runtime("kill", "--all", cid, "KILL")
    for pid in pids:
        reap_if_child(pid)
    assert runtime.state(cid)["status"] == "stopped"


def test_kill_all_of_a_paused_container_stops_it(bundle: Bundle, runtime: RuntimeCLI) -> None:
    bundle.set_process(["sleep", "1000"])
    cid = runtime.new_id()
    runtime("run", "--detach", "--bundle", str(bundle.path), cid)
    pid = int(runtime.state(cid)["pid"])
    runtime("pause", cid)
    runtime("kill", "--all", cid, "KILL")
    wait_for_exit(pid, None)
    reap_if_child(pid)
    assert runtime.state(cid)["status"] == "stopped"


def test_container_without_a_pid_namespace_is_deleted_cleanly(bundle: Bundle, runtime: RuntimeCLI) -> None:
    bundle.spec["linux"]["namespaces"] = [ns for ns in bundle.spec["linux"]["namespaces"] if ns["type"] != "pid"]
    bundle.set_process(["sh", "-c", "sleep 1000 & exec sleep 1001"])
    cid = runtime.new_id()
    runtime("run", "--detach", "--bundle", str(bundle.path), cid)
    pid = int(runtime.state(cid)["pid"])
    pids = json.loads(runtime("ps", "--format", "json", cid).stdout)
    assert pid in pids and len(pids) == 2 and pid != 1
    assert runtime.delete_reaping(cid, pid) == 0
    for other in pids:
        reap_if_child(other)
        assert not Path(f"/proc/{other}").exists() or Path(f"/proc/{other}/stat").read_text().split()[2] == "Z"


def test_a_paused_created_container_refuses_start_until_resumed(bundle: Bundle, runtime: RuntimeCLI) -> None:
    bundle.set_process(["true"])
    cid = runtime.new_id()
    runtime("create", "--bundle", str(bundle.path), cid)
    runtime("pause", cid)
    assert runtime.state(cid)["status"] == "paused"
    refused = runtime("start", cid, check=False)
    assert refused.returncode == 1 and b"paused" in refused.stderr
    runtime("resume", cid)
    assert runtime.state(cid)["status"] == "created"
    runtime("start", cid)
