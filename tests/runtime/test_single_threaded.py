"""The single-threaded guard of container setup counts the kernel's threads, not Python's bookkeeping."""

from __future__ import annotations

import threading
import time

import pytest

from engine.runtime.errors import RuntimeFailure
from engine.runtime.launcher import check_single_threaded, other_threads
from tests.runtime.forked import run_in_child


def test_a_live_thread_is_refused_and_its_end_allows_setup_again() -> None:
    release = threading.Event()
    worker = threading.Thread(target=release.wait)
    baseline = other_threads()
    worker.start()
    try:
        assert other_threads() == baseline + 1
        with pytest.raises(RuntimeFailure, match="single-threaded"):
            check_single_threaded()
    finally:
        release.set()
        worker.join()
    # join() returns once Python is done with the thread; the kernel task goes a moment later.
    deadline = time.monotonic() + 10
    while other_threads() > baseline and time.monotonic() < deadline:
        time.sleep(0.001)
    assert other_threads() == baseline
    if baseline == 0:
        check_single_threaded()


def test_a_child_forked_from_a_threaded_process_may_set_up_containers() -> None:
    release = threading.Event()
    worker = threading.Thread(target=release.wait)
    worker.start()  # the parent is threaded; the forked child has one thread only
    try:
        result, status = run_in_child(_count_then_check)
    finally:
        release.set()
        worker.join()
    assert status == 0 and result == {"ok": 0}, result


def _count_then_check() -> int:
    check_single_threaded()
    return other_threads()
