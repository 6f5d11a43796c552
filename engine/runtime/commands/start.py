"""`start`."""

from __future__ import annotations

from ..lifecycle import start_container
from ..state import StateStore

TYPE_CHECKING = False  # as typing's, without importing typing (~2 ms per berth-runtime call)
if TYPE_CHECKING:
    from typing import Any

if TYPE_CHECKING:  # argparse only for annotations: fastargs.py calls these without it
    import argparse


def register(sub: Any) -> None:
    p = sub.add_parser("start", help="execute the user-defined process in a created container")
    p.add_argument("container_id")
    p.set_defaults(handler=start_command)


def start_command(args: argparse.Namespace, store: StateStore) -> int:
    start_container(store, args.container_id)
    return 0
