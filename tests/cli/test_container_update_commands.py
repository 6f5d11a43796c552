"""`top`, `rename`, `update` (and their `container` forms): berth and the real docker CLI on one berthd."""

from __future__ import annotations

import json

import pytest

from tests.cli.conftest import Tools

pytestmark = pytest.mark.needs_root


def _same(tools: Tools, *args: str) -> str:
    ours, theirs = tools.berth(*args), tools.docker(*args)
    assert (ours.returncode, ours.stdout, ours.stderr) == (theirs.returncode, theirs.stdout, theirs.stderr), args
    return ours.stdout


@pytest.fixture(scope="module")
def sleeper(tools: Tools, busybox: str) -> str:
    tools.ok("docker", "run", "-d", "--network", "none", "--name", "upd-sleeper", busybox, "sleep", "300")
    return "upd-sleeper"


def test_top_prints_what_docker_prints(tools: Tools, sleeper: str) -> None:
    listed = _same(tools, "top", sleeper)
    assert listed.splitlines()[0].split()[:2] == ["UID", "PID"] and "sleep 300" in listed
    _same(tools, "container", "top", sleeper, "-o", "pid,comm")
    _same(tools, "top", "upd-none")


def test_rename_is_seen_by_docker(tools: Tools, busybox: str) -> None:
    tools.ok("docker", "create", "--name", "upd-old", busybox, "true")
    done = tools.berth("rename", "upd-old", "upd-new")
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert tools.ok("docker", "inspect", "-f", "{{.Name}}", "upd-new") == "/upd-new\n"
    for args in (["upd-gone", "x"], ["upd-new", "upd-sleeper"], ["upd-new", " "]):
        ours, theirs = tools.berth("rename", *args), tools.docker("rename", *args)
        assert (ours.returncode, ours.stderr) == (theirs.returncode, theirs.stderr), args
    tools.ok("docker", "rm", "upd-new")


def test_update_sets_what_docker_reads(tools: Tools, sleeper: str) -> None:
    done = tools.berth("update", "--memory", "64m", "--cpus", "0.5", "--pids-limit", "50", "--restart",
                       "on-failure:2", "--cpu-shares", "512", sleeper)
    assert (done.returncode, done.stdout) == (0, f"{sleeper}\n"), done.stderr
    host = json.loads(tools.ok("docker", "inspect", sleeper))[0]["HostConfig"]
    assert (host["Memory"], host["NanoCpus"], host["PidsLimit"], host["CpuShares"]) == (64 << 20, 5 * 10**8, 50, 512)
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    _same(tools, "update", sleeper)  # no flag: docker's usage line
    _same(tools, "update", "--memory", "32m", "upd-none")
    _same(tools, "container", "update", "--pids-limit", "60", sleeper, "upd-none")
