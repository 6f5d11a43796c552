"""`python -m installers.vm pytest [PYTEST ARGS...]`: run this checkout's tests in the pure cgroup-v2 guest.

    .venv/bin/python -m installers.vm pytest tests/runtime/test_lifecycle.py -k pause

The guest (job_guest.py) sees the host's files read-only and runs pytest with
this checkout's venv; its console is printed, its pytest exit status is ours.
`python -m installers.vm fetch` only downloads and unpacks the kernel (cached in build/vm).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from installers.images.errors import SeedImageError
from installers.vm import job_guest, kernel
from vmbackend import qemu

REPO = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m installers.vm", description=__doc__)
    parser.add_argument("--cache", type=Path, default=REPO / "build" / "vm", help="kernel cache directory")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds before QEMU is killed")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("fetch", help="download and unpack the guest kernel")
    sub.add_parser("pytest", help="run pytest with the arguments that follow in the guest")
    argv = sys.argv[1:] if argv is None else argv
    # Everything after "pytest" is pytest's, options included (argparse would claim them).
    split = argv.index("pytest") + 1 if "pytest" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    pytest_args = argv[split:]
    try:
        if args.command == "fetch":
            print(kernel.fetch(args.cache).vmlinuz)
            return 0
        with tempfile.TemporaryDirectory(prefix="berth-vm-") as work:
            boot = job_guest.prepare(args.cache, Path(work))
            result = job_guest.run_job(
                boot,
                Path(work) / "job",
                [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--color=no", *pytest_args],
                cwd=REPO,
                env={"PYTHONDONTWRITEBYTECODE": "1", "BERTH_TEST_IN_GUEST": "1"},
                timeout=args.timeout,
            )
    except (SeedImageError, qemu.QemuError) as e:
        print(f"installers.vm: {e}", file=sys.stderr)
        return 2
    print(result.console)
    print(f"guest boot {result.boot_s} s, job {result.job_s or 0:.1f} s, qemu {result.qemu_s:.1f} s", file=sys.stderr)
    if result.failure:
        print(f"installers.vm: the guest's init gave up: {result.failure}", file=sys.stderr)
    return 2 if result.exit_status is None else result.exit_status


if __name__ == "__main__":
    sys.exit(main())
