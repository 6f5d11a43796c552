"""Shared bits for bench/ scripts: run commands side by side, report medians and ratios."""

from __future__ import annotations

import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass


@dataclass
class Sample:
    label: str
    seconds: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def p90(self) -> float:
        ordered = sorted(self.seconds)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]


def time_command(argv: Sequence[str], runs: int, env: Mapping[str, str] | None = None,
                 warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return times


def run_quiet(argv: Sequence[str], env: Mapping[str, str] | None = None, timeout: float = 60) -> None:
    """Run ``argv`` with stdio on /dev/null, wait for it exactly, fail on a non-zero exit.

    For timed calls that need a bound.  Not ``subprocess.run(timeout=...)``: with a timeout,
    Popen.wait polls with sleeps doubling from 0.5 ms to 50 ms, so every result lands on
    0.5*(2**k - 1) ms (7.5, 15.5, 31.5, 63.5, 113.5) and then on 50 ms steps: a 75 ms command
    measures 113.5 ms.  Here the wait blocks in waitpid and a timer kills a command that hangs.
    """
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        code = proc.wait()
    finally:
        timer.cancel()
    if timer.finished.is_set() and code < 0:
        raise subprocess.TimeoutExpired(list(argv), timeout)
    if code != 0:
        raise subprocess.CalledProcessError(code, list(argv))


def time_call(fn: Callable[[], object], runs: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def report(title: str, samples: Sequence[Sample], reference: str) -> str:
    """A table of medians with each row's ratio to the reference row (< 1.00 means faster)."""
    ref = next(s for s in samples if s.label == reference)
    width = max(len(s.label) for s in samples)
    lines = [title, f"{'':<{width}}  {'median':>10}  {'p90':>10}  {'runs':>5}  ratio vs {reference}"]
    for s in samples:
        lines.append(f"{s.label:<{width}}  {s.median * 1000:>8.1f}ms  {s.p90 * 1000:>8.1f}ms  {len(s.seconds):>5}  "
                     f"{s.median / ref.median:.2f}x")
    return "\n".join(lines)


def time_interleaved(calls: Mapping[str, Callable[[], object]], runs: int, warmup: int = 2) -> list[Sample]:
    """Times each call `runs` times, taking turns (a b c, b c a, ...) so that drift on a shared
    machine (another job starting, page cache warming) spreads over every row instead of one."""
    labels = list(calls)
    for _ in range(warmup):
        for label in labels:
            calls[label]()
    times: dict[str, list[float]] = {label: [] for label in labels}
    for round_no in range(runs):
        shift = round_no % len(labels)
        for label in labels[shift:] + labels[:shift]:
            start = time.perf_counter()
            calls[label]()
            times[label].append(time.perf_counter() - start)
    return [Sample(label, times[label]) for label in labels]
