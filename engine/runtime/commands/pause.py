"""`pause` and `resume` (the cgroup freezer)."""

from __future__ import annotations

import argparse

from ..lifecycle import pause_container, resume_container
from ..state import StateStore

TYPE_CHECKING = False  # as typing's, without importing typing (~2 ms per berth-runtime call)
if TYPE_CHECKING:
    from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("pause", help="suspend all processes inside the container")
    p.add_argument("container_id")
    p.set_defaults(handler=lambda a, s: _do(pause_container, a, s))
    p = sub.add_parser("resume", help="resume all processes that have been previously paused")
    p.add_argument("container_id")
    p.set_defaults(handler=lambda a, s: _do(resume_container, a, s))


def _do(verb: Any, args: argparse.Namespace, store: StateStore) -> int:
    verb(store, args.container_id)
    return 0
