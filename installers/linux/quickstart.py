"""What `make run` does after set-up: start berthd natively, run hello-world
through the `berth` CLI, and say what to try next.

Each step reports what it did; the first step that cannot work yet stops the
run with a status line naming the step, never with made-up output.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from engine import paths

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"
SEED_IMAGES = ("busybox", "hello-world", "debian-bookworm-slim")


def _tool(name: str) -> str:
    found = VENV_BIN / name
    return str(found) if found.exists() else (shutil.which(name) or name)


def _engine_answers(sock: Path) -> bool:
    import socket

    if not sock.exists():
        return False
    with socket.socket(socket.AF_UNIX) as probe:
        probe.settimeout(2)
        try:
            probe.connect(str(sock))
            probe.sendall(b"GET /_ping HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\r\n")
            return probe.recv(64).startswith(b"HTTP/1.1 200")
        except OSError:
            return False


def _say(step: int, total: int, text: str) -> None:
    print(f"[{step}/{total}] {text}", flush=True)


def _stop(text: str) -> int:
    print(f"\nmake run: stopped — {text}", flush=True)
    return 1


def main() -> int:
    total = 4
    images = REPO / "build" / "images"
    missing = [n for n in SEED_IMAGES if not (images / f"{n}.tar").exists()]
    if missing:
        return _stop(f"seed image archives missing: {', '.join(missing)} (run `make images`)")
    _say(1, total, f"seed images ready in {images.relative_to(REPO)}/ ({', '.join(SEED_IMAGES)})")

    sock = paths.default_socket()
    sock.parent.mkdir(parents=True, exist_ok=True)
    log_path = paths.exec_root() / "berthd.log"
    if _engine_answers(sock):
        _say(2, total, f"berthd is already running (socket {sock}); using it")
        pid_text = "already running"
    else:
        _say(2, total, f"starting berthd (state in {paths.data_root()}, socket {sock}, log {log_path})")
        with open(log_path, "wb") as log:
            daemon = subprocess.Popen(
                [_tool("berthd"), "-H", f"unix://{sock}", "--data-root", str(paths.data_root()),
                 "--pidfile", str(paths.exec_root() / "berthd.pid"),
                 # Extra berthd flags, e.g. the tests' `--cgroup-parent <run tag>`.
                 *shlex.split(os.environ.get("BERTHD_EXTRA_ARGS", ""))],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and daemon.poll() is None and not _engine_answers(sock):
            time.sleep(0.05)
        if daemon.poll() is not None or not _engine_answers(sock):
            if daemon.poll() is None:
                daemon.terminate()
            reason = log_path.read_text(errors="replace").strip().splitlines()
            return _stop(f"berthd did not come up: {reason[-1] if reason else 'no output'}")
        pid_text = f"pid {daemon.pid}"

    env = dict(os.environ, DOCKER_HOST=f"unix://{sock}")
    berth = _tool("berth")
    _say(3, total, "loading seed images into berthd")
    for name in SEED_IMAGES:
        if subprocess.run([berth, "load", "-q", "-i", str(images / f"{name}.tar")], env=env).returncode:
            return _stop(f"`berth load` of {name} failed (berthd keeps running, {pid_text})")
    _say(4, total, "berth run --rm hello-world")
    if subprocess.run([berth, "run", "--rm", "hello-world"], env=env).returncode:
        return _stop(f"`berth run hello-world` failed (berthd keeps running, {pid_text})")
    print(
        f"\nBerth is running (berthd {pid_text}, log {log_path}). Try next:\n"
        "  .venv/bin/berth ps -a\n"
        "  .venv/bin/berth run -it --rm busybox sh\n"
        f"  DOCKER_HOST=unix://{sock} docker ps\n"
    )
    print(f"  stop it: kill $(cat {paths.exec_root() / 'berthd.pid'})   (containers keep running under their shims)")
    print("make run: ok — berthd is up and hello-world ran")
    return 0


if __name__ == "__main__":
    sys.exit(main())
