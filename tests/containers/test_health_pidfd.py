"""The health-check kill's pidfd: taken only for a live process in the container's pid namespace."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from engine.containers.health import probe_pidfd
from engine.runtime.procinfo import parent_pid


def test_the_pidfd_kills_the_probe_it_was_taken_for() -> None:
    probe = subprocess.Popen(["sleep", "300"])
    try:
        pidfd = probe_pidfd(probe.pid, os.getpid())  # same pid namespace as "the container's init"
        assert pidfd is not None
        try:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        finally:
            os.close(pidfd)
        assert probe.wait() == -signal.SIGKILL
    finally:
        probe.kill()
        probe.wait()


def test_no_pidfd_for_a_process_that_is_gone() -> None:
    probe = subprocess.Popen(["true"])
    probe.wait()  # reaped: the number is free for anyone
    assert probe_pidfd(probe.pid, os.getpid()) is None


@pytest.mark.needs_root
def test_no_pidfd_for_a_process_outside_the_containers_pid_namespace() -> None:
    # `unshare --fork` makes the sleep its child, in a new pid namespace: not "the container's".
    outer = subprocess.Popen(["unshare", "--pid", "--fork", "--kill-child", "sleep", "300"])
    inner = 0
    try:
        while not inner:  # the fork happens right away; its child is found by parent pid
            assert outer.poll() is None, "unshare ended"
            for entry in os.listdir("/proc"):
                if entry.isdigit() and parent_pid(int(entry)) == outer.pid:
                    inner = int(entry)
        assert probe_pidfd(inner, os.getpid()) is None
        pidfd = probe_pidfd(inner, inner)  # with its own namespace as the container's, it is the probe
        assert pidfd is not None
        os.close(pidfd)
    finally:
        if inner:
            os.kill(inner, signal.SIGKILL)  # our own child's child, by pid
        outer.kill()
        outer.wait()
