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
from pathlib import Path

import pytest

from installers.vm import job_guest
from vmbackend import qemu

REPO = Path(__file__).resolve().parents[3]
VM_CACHE = REPO / "build" / "vm"
SUITE = ["tests/runtime/cgroups/test_cgroup_suite.py", "tests/runtime/cgroups/test_cgroup_detection.py"]
IN_GUEST_ENV = "BERTH_TEST_IN_GUEST"
#: Bound on the whole guest run (boot + suite); a typical run is well under it.
GUEST_TIMEOUT_S = 600.0

#: Every v2 controller behaviour the suite has; each must have RUN and passed in the guest.
MUST_PASS_ON_V2 = [
    "test_memory_limit_oom_kills_and_is_counted",
    "test_memory_and_swap_can_be_raised_and_lowered",
    "test_pids_limit_stops_forks_with_eagain",
    "test_cpu_quota_is_written_and_throttling_is_reported",
    "test_cpu_weight_is_converted_from_shares",
    "test_cpuset_is_written_and_processes_still_join",
    "test_io_weight_is_converted_from_blkio_weight",
    "test_freeze_stops_a_busy_process_and_thaw_resumes_it",
    "test_kill_all_sigkill_kills_a_frozen_cgroup",
    "test_stats_are_populated_for_a_running_process",
    "test_device_deny_blocks_opening_dev_null",
    "test_dockers_default_device_list_allows_its_devices_only",
    "test_hugepage_limit_lands_in_the_hugetlb_controller",
    "test_nesting_under_a_caller_that_holds_processes",
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


@pytest.fixture(scope="session")
def guest_boot(tmp_path_factory: pytest.TempPathFactory) -> job_guest.GuestBoot:
    if os.environ.get(IN_GUEST_ENV):
        pytest.skip("already inside the test guest")
    try:
        qemu.qemu_binary()
    except qemu.QemuNotInstalled as e:
        _unavailable(f"{e} (installers/linux/host-deps.sh test installs it)")
    return job_guest.prepare(VM_CACHE, tmp_path_factory.mktemp("vm"))


def test_v2_cgroup_suite_runs_and_passes_in_a_pure_v2_guest(
    guest_boot: job_guest.GuestBoot, tmp_path: Path
) -> None:
    job_dir = tmp_path / "job"
    result = job_guest.run_job(
        guest_boot,
        job_dir,
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", "--color=no",
         f"--junitxml={job_guest.GUEST_JOB_DIR}/junit.xml", *SUITE],
        cwd=REPO,
        env={"PYTHONDONTWRITEBYTECODE": "1", IN_GUEST_ENV: "1"},
        timeout=GUEST_TIMEOUT_S,
    )  # fmt: skip
    tail = result.console[-6000:]
    print(f"guest boot {result.boot_s} s, suite {result.job_s} s, qemu process {result.qemu_s:.1f} s")
    print(result.console.partition("short test summary info")[2] or tail)  # the guest's skips, by reason
    assert result.failure is None, f"the guest's init gave up: {result.failure}\n{tail}"
    assert (job_dir / "junit.xml").is_file(), f"pytest wrote no report in the guest\n{tail}"
    seen = outcomes(job_dir / "junit.xml")
    v2 = {name.removesuffix("[v2]"): outcome for name, outcome in seen.items() if name.endswith("[v2]")}
    not_passed = {name: v2.get(name, "absent") for name in MUST_PASS_ON_V2 if v2.get(name) != "passed"}
    assert not not_passed, f"v2 tests that did not run and pass in the guest: {not_passed}\n{tail}"
    assert result.exit_status == 0, f"pytest exited {result.exit_status} in the guest\n{tail}"
