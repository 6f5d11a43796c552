"""`kill`."""

from __future__ import annotations

from ..lifecycle import kill_container, parse_signal
from ..state import StateStore

TYPE_CHECKING = False  # as typing's, without importing typing (~2 ms per berth-runtime call)
if TYPE_CHECKING:
    from typing import Any

if TYPE_CHECKING:  # argparse only for annotations: fastargs.py calls these without it
    import argparse


def register(sub: Any) -> None:
    p = sub.add_parser("kill", help="send a signal to the container's init process")
    p.add_argument("container_id")
    p.add_argument("signal", nargs="?", default="SIGTERM")
    p.add_argument("-a", "--all", action="store_true", help="send the signal to all processes in the container")
    p.set_defaults(handler=kill_command)


def kill_command(args: argparse.Namespace, store: StateStore) -> int:
    kill_container(store, args.container_id, parse_signal(args.signal), all_processes=args.all)
    return 0
