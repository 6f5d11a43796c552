"""OCI runtimes side by side: create -> start -> wait -> delete of /bin/true in a busybox bundle.

Rows: `berth-runtime run` (the CLI, one Python start per container), the bare
interpreter start under it (`python -I -S -c pass`: the floor of any Python CLI), Berth's
fork server (the library fast path berthd can use: no interpreter start per
container), `runc run`, `crun run`.  crun 1.8 refuses this host's hybrid
cgroups unless /sys/fs/cgroup/unified is unmounted in a private mount
namespace (MACHINE-NOTES), so its row runs inside `unshare -m`; the wrapper's
own cost is a separate row so it can be subtracted.  Calls take turns so
machine noise spreads over all rows.

Run: .venv/bin/python -m bench.runtime_run [--runs 100] [--no-crun]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from bench.busybox_bundle import make_rootfs, write_bundle
from bench.cgroup_cleanup import remove_cgroups
from bench.timing import report, run_quiet, time_interleaved
from engine.runtime.forkserver import ForkServerClient, spawn_fork_server

REPO = Path(__file__).resolve().parents[1]
BERTH_RUNTIME = str(REPO / ".venv" / "bin" / "berth-runtime")
VENV_PYTHON = str(REPO / ".venv" / "bin" / "python")
_UNSHARE_PREFIX = "umount /sys/fs/cgroup/unified && exec "


def _quiet(make_argv: Callable[[], list[str]]) -> Callable[[], object]:
    """A timed call that runs a fresh argv (a new container id each time), output discarded."""
    def run() -> None:
        run_quiet(make_argv())  # waits exactly: subprocess.run(timeout=) would round times up (timing.py)
    return run


def _probe(label: str, call: Callable[[], object]) -> str | None:
    """One run before timing: a runtime that cannot run here is skipped with the reason, not timed."""
    try:
        call()
    except subprocess.CalledProcessError as exc:
        err = exc.stderr.decode(errors="replace").strip() if exc.stderr else ""
        return f"{label}: exit {exc.returncode} {err}"
    except Exception as exc:  # any failure means "skip this row", printed
        return f"{label}: {type(exc).__name__}: {exc}"
    return None


def _why_failing(argv: list[str]) -> str:
    result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    return f"exit {result.returncode}: {result.stderr.decode(errors='replace').strip()[-300:]}"


@contextlib.contextmanager
def _fork_server(tmp: Path) -> Iterator[ForkServerClient]:
    sock = str(tmp / "fs.sock")
    # The server logs a line per container to the stderr it inherits: send that to a file.
    log_fd = os.open(tmp / "forkserver.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    saved_stderr = os.dup(2)
    os.dup2(log_fd, 2)
    try:
        proc = spawn_fork_server(sock, str(tmp / "state-forkserver"))
    finally:
        os.dup2(saved_stderr, 2)
        os.close(saved_stderr)
        os.close(log_fd)
    try:
        yield ForkServerClient(sock)
    finally:
        proc.terminate()
        proc.wait(10)


def _fork_server_cycle(client: ForkServerClient, bundle: Path, counter: Iterator[int]) -> Callable[[], object]:
    devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)

    def run() -> None:
        cid = f"fs{next(counter)}"
        pid = client.create(cid, str(bundle), stdio=(devnull, devnull, devnull))
        client.start(cid)
        code = client.wait(pid)
        client.delete(cid)
        if code != 0:
            raise RuntimeError(f"/bin/true exited {code} under the fork server")
    return run


def _ids(prefix: str) -> Iterator[str]:
    n = 0
    while True:
        n += 1
        yield f"{prefix}{n}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--no-crun", action="store_true",
                        help="leave out the crun rows: each `unshare -m` leaves the kernel a mount namespace to tear "
                             "down in the background, which slows whichever row runs next on a 2-CPU machine")
    opts = parser.parse_args()
    runs = max(1, min(opts.runs, 2000))  # bounded loop
    with tempfile.TemporaryDirectory(prefix="berthtest-bench-") as tmp_name:
        tmp = Path(tmp_name)
        cgroup_name = tmp.name  # unique per run, so cleanup touches only ours
        try:
            return _bench(tmp, cgroup_name, runs, with_crun=not opts.no_crun)
        finally:
            for leak in remove_cgroups(cgroup_name):
                print(f"warning: cgroup left behind: {leak}", file=sys.stderr)


def _bench(tmp: Path, cgroup_name: str, runs: int, with_crun: bool = True) -> int:
    rootfs = make_rootfs(tmp / "rootfs")

    def bundle(name: str) -> Path:
        return write_bundle(tmp / f"bundle-{name}", rootfs, ["/bin/true"], f"/{cgroup_name}/{name}")

    runc_ids, crun_ids, berth_ids = _ids("r"), _ids("c"), _ids("b")
    calls: dict[str, Callable[[], object]] = {}
    skipped: list[str] = []
    berth_bundle = bundle("berth")
    argv_berth = [BERTH_RUNTIME, "--root", str(tmp / "state-berth"), "run", "--bundle", str(berth_bundle)]
    calls["berth-runtime run (CLI)"] = _quiet(lambda: [*argv_berth, next(berth_ids)])
    # The floor under any Python CLI: the interpreter alone, started the way berth-runtime's launcher starts it.
    calls["python -I -S -c pass (floor)"] = _quiet(lambda: [VENV_PYTHON, "-I", "-S", "-c", "pass"])
    with contextlib.ExitStack() as stack:
        fs_bundle = bundle("forkserver")
        try:
            client = stack.enter_context(_fork_server(tmp))
            calls["berth fork server"] = _fork_server_cycle(client, fs_bundle, iter(range(1, 1 << 30)))
        except Exception as exc:  # printed, row skipped
            skipped.append(f"berth fork server: cannot start it: {exc}")
        if shutil.which("runc"):
            argv_runc = ["runc", "--root", str(tmp / "state-runc"), "run", "--bundle", str(bundle("runc"))]
            calls["runc run"] = _quiet(lambda: [*argv_runc, next(runc_ids)])
        else:
            skipped.append("runc run: runc is not installed (apt-get install runc)")
        if not with_crun:
            skipped.append("crun run: left out (--no-crun)")
        elif shutil.which("crun") and shutil.which("unshare"):
            crun_cmd = f"crun --root {tmp / 'state-crun'} run --bundle {bundle('crun')}"
            calls["crun run (in unshare -m)"] = _quiet(
                lambda: ["unshare", "-m", "sh", "-c", f"{_UNSHARE_PREFIX}{crun_cmd} {next(crun_ids)}"])
            calls["unshare -m wrapper alone"] = _quiet(
                lambda: ["unshare", "-m", "sh", "-c", f"{_UNSHARE_PREFIX}true"])
        else:
            skipped.append("crun run: crun or unshare is not installed (apt-get install crun)")
        for label in list(calls):
            reason = _probe(label, calls[label])
            if reason is not None:
                if label == "berth-runtime run (CLI)":
                    reason += " " + _why_failing([*argv_berth, "probe"])
                skipped.append(reason)
                del calls[label]
        for reason in skipped:
            print(f"skipped {reason}")
        if not calls:
            return 1
        samples = time_interleaved(calls, runs, warmup=3)
    reference = "runc run" if "runc run" in calls else samples[0].label
    print(report(f"OCI runtime: create+start+wait+delete of /bin/true, busybox bundle ({runs} runs each, "
                 f"interleaved)", samples, reference))
    by_label = {s.label: s for s in samples}
    crun = by_label.get("crun run (in unshare -m)")
    wrapper = by_label.get("unshare -m wrapper alone")
    fork_server = by_label.get("berth fork server")
    cli, runc = by_label.get("berth-runtime run (CLI)"), by_label.get("runc run")
    # The two expectations, as ratios: the library path against crun's row, the CLI against runc's.
    if fork_server and crun:
        print(f"berth fork server / crun run (in unshare -m): {fork_server.median / crun.median:.2f}x")
    if cli and runc:
        print(f"berth-runtime run (CLI) / runc run: {cli.median / runc.median:.2f}x")
    if crun and wrapper:
        print(f"crun minus its unshare wrapper (median difference): {(crun.median - wrapper.median) * 1000:.1f}ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
