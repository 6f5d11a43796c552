"""Where Berth keeps things on a host, shared by the daemon and every client.

Docker keeps state in /var/lib/docker and its socket at /var/run/docker.sock,
for the whole machine.  Berth is per user, like Docker Desktop and Colima: the
state lives in the user's data dir and the socket in the user's runtime dir,
so two users never share (or fight over) one engine.
"""

from __future__ import annotations

import os
from pathlib import Path


def data_root() -> Path:
    """Persistent state: images, containers, volumes, the metadata database."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "berth"


def exec_root() -> Path:
    """Runtime state that dies with the machine: sockets, pid files, runtime state dirs."""
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
    if runtime_dir and os.path.isdir(runtime_dir):
        return Path(runtime_dir) / "berth"
    return Path(f"/tmp/berth-{os.getuid()}")


def default_socket() -> Path:
    """The engine's API socket, what `DOCKER_HOST=unix://...` points at."""
    return exec_root() / "berth.sock"
