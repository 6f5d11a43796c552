"""The shared cgroup suite on a pure cgroup v2 host: a QEMU guest (installers/vm/job_guest.py).

This host is hybrid, so the suite's v2 controller tests skip here.  This test
boots a guest whose root is this host's filesystem (read-only 9p) and whose
/sys/fs/cgroup is a pure cgroup2 hierarchy with every controller, runs the
suite there with this checkout's own venv, and asserts from the junit report
that the v2 tests ran (not skipped) and passed.  QEMU runs under TCG when no
usable hardware accelerator exists (vmbackend.qemu probes).
"""

from __future__ import annotations

import os
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

from installers.vm import job_guest
from vmbackend import qemu

REPO = Path(__file__).resolve().parents[3]
VM_CACHE = REPO / "build" / "vm"
IN_GUEST_ENV = "BERTH_TEST_IN_GUEST"
#: Bound on the whole guest run (boot + tests); a typical run under TCG takes 2-3 minutes.
GUEST_TIMEOUT_S = 600.0

CGROUP_SUITE = ["tests/runtime/cgroups/test_cgroup_suite.py", "tests/runtime/cgroups/test_cgroup_detection.py"]
#: The runtime's own cgroup behaviour, through berth-runtime and runc (the oracle) on the same bundles.
RUNTIME_TESTS = {
    "tests/runtime/test_runtime_contract.py": [
        "test_memory_hog_is_oom_killed_at_the_limit",
        "test_fork_bomb_stops_at_pids_max",
        "test_cpu_quota_is_written_and_throttling_counters_move",
        "test_delete_leaves_no_mount_cgroup_or_process",
        "test_mount_table_has_the_spec_mounts_and_nothing_from_the_host",
    ],
    "tests/runtime/test_lifecycle.py": [
        "test_pause_and_resume_freeze_the_container",
        "test_kill_all_of_a_paused_container_stops_it",
        "test_a_paused_created_container_refuses_start_until_resumed",
        "test_container_without_a_pid_namespace_is_deleted_cleanly",  # kills every process of the cgroup
    ],
    "tests/runtime/test_cli_options.py": [
        "test_update_changes_the_memory_limit_seen_inside",
        "test_events_stats_reports_the_containers_usage",
    ],
    # The init cloned straight into its v2 cgroup (clone3 CLONE_INTO_CGROUP), and the fork+migrate fallback.
    "tests/runtime/cgroups/test_cgroup_join.py": ["test_a_container_init_is_in_its_cgroup_either_way"],
    # Everything a process sees, berth-runtime vs runc on one bundle (cgroup namespace included).
    "tests/runtime/test_runtime_vs_runc.py": ["test_same_bundle_same_container_under_runc"],
}

#: Every v2 controller behaviour the suite has; each must have RUN and passed in the guest.
MUST_PASS_ON_V2 = [
    "test_memory_limit_oom_kills_and_is_counted",
    "test_memory_and_swap_can_be_raised_and_lowered",
    "test_pids_limit_stops_forks_with_eagain",
    "test_cpu_quota_is_written_and_throttling_is_reported",
    "test_cpu_weight_is_converted_from_shares",
    "test_cpuset_is_written_and_processes_still_join",
    "test_io_weight_is_converted_from_blkio_weight",
    "test_block_io_throttle_is_applied_and_bytes_are_counted",
    "test_freeze_stops_a_busy_process_and_thaw_resumes_it",
    "test_kill_all_sigkill_kills_a_frozen_cgroup",
    "test_stats_are_populated_for_a_running_process",
    "test_device_deny_blocks_opening_dev_null",
    "test_dockers_default_device_list_allows_its_devices_only",
    "test_hugepage_limit_lands_in_the_hugetlb_controller",
    "test_nesting_under_a_caller_that_holds_processes",
    "test_a_child_joined_by_the_plan_is_in_every_hierarchy_of_the_cgroup",
]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(GUEST_TIMEOUT_S + 120)]


def _unavailable(why: str) -> None:
    """Skip with the reason on a developer's machine; in CI a missing tool must fail, not hide."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true: {why}")
    pytest.skip(why)


def outcomes(junit_xml: Path) -> dict[str, str]:
    """Test id (``name[param]``) → passed / skipped / failed, from pytest's junit report."""
    found: dict[str, str] = {}
    for case in ET.parse(junit_xml).getroot().iter("testcase"):
        kinds = {child.tag for child in case}
        outcome = "failed" if kinds & {"failure", "error"} else "skipped" if "skipped" in kinds else "passed"
        found[case.attrib["name"]] = outcome
    return found


@dataclass(frozen=True)
class GuestRun:
    result: job_guest.JobResult
    outcomes: dict[str, str]  # from the guest's junit report

    @property
    def tail(self) -> str:
        return self.result.console[-6000:]


@pytest.fixture(scope="module")
def guest_run(tmp_path_factory: pytest.TempPathFactory) -> GuestRun:
    """One guest boot for the module: the cgroup suite and the runtime's cgroup tests in one pytest run."""
    if os.environ.get(IN_GUEST_ENV):
        pytest.skip("already inside the test guest")
    try:
        qemu.qemu_binary()
    except qemu.QemuNotInstalled as e:
        _unavailable(f"{e} (installers/linux/host-deps.sh test installs it)")
    work = tmp_path_factory.mktemp("vm")
    boot = job_guest.prepare(VM_CACHE, work)
    selection = " or ".join(name for names in RUNTIME_TESTS.values() for name in names)
    result = job_guest.run_job(
        boot,
        work / "job",
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", "--color=no",
         f"--junitxml={job_guest.GUEST_JOB_DIR}/junit.xml",
         *CGROUP_SUITE, *RUNTIME_TESTS, "-k", f"cgroup or {selection}"],
        cwd=REPO,
        env={"PYTHONDONTWRITEBYTECODE": "1", IN_GUEST_ENV: "1"},
        timeout=GUEST_TIMEOUT_S,
    )  # fmt: skip
    print(f"guest boot {result.boot_s} s, tests {result.job_s or 0:.1f} s, qemu process {result.qemu_s:.1f} s")
    print(result.console.partition("short test summary info")[2] or result.console[-6000:])
    assert result.failure is None, f"the guest's init gave up: {result.failure}\n{result.console[-6000:]}"
    junit = work / "job" / "junit.xml"
    assert junit.is_file(), f"pytest wrote no report in the guest\n{result.console[-6000:]}"
    return GuestRun(result, outcomes(junit))


def test_v2_cgroup_suite_runs_and_passes_in_a_pure_v2_guest(guest_run: GuestRun) -> None:
    v2 = {name.removesuffix("[v2]"): outcome for name, outcome in guest_run.outcomes.items() if name.endswith("[v2]")}
    not_passed = {name: v2.get(name, "absent") for name in MUST_PASS_ON_V2 if v2.get(name) != "passed"}
    assert not not_passed, f"v2 tests that did not run and pass in the guest: {not_passed}\n{guest_run.tail}"


def test_runtime_cgroup_limits_hold_on_a_pure_v2_host(guest_run: GuestRun) -> None:
    # Each runs against berth-runtime (and, for the contract tests, runc as the oracle).
    wanted = [name for names in RUNTIME_TESTS.values() for name in names]
    ran = {name: outcome for name, outcome in guest_run.outcomes.items() if name.split("[")[0] in wanted}
    missing = [name for name in wanted if not any(n.split("[")[0] == name for n in ran)]
    assert not missing, f"runtime tests that did not run in the guest: {missing}\n{guest_run.tail}"
    not_passed = {name: outcome for name, outcome in ran.items() if outcome != "passed"}
    assert not not_passed, f"runtime tests that did not pass in the guest: {not_passed}\n{guest_run.tail}"


def test_guest_pytest_run_exits_zero(guest_run: GuestRun) -> None:
    assert guest_run.result.exit_status == 0, (
        f"pytest exited {guest_run.result.exit_status} in the guest\n{guest_run.tail}"
    )


def test_a_missing_qemu_fails_in_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true: no qemu"):
        _unavailable("no qemu")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="no qemu"):
        _unavailable("no qemu")
