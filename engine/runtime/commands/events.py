"""`events`: container statistics, once (--stats) or every --interval until it stops."""

from __future__ import annotations

import argparse
import json
import time

from ..errors import InvalidState
from ..events import container_stats
from ..state import StateStore

TYPE_CHECKING = False  # as typing's, without importing typing (~2 ms per berth-runtime call)
if TYPE_CHECKING:
    from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("events", help="display container events such as resource usage")
    p.add_argument("container_id")
    p.add_argument("--stats", action="store_true", help="display the container's stats then exit")
    p.add_argument("--interval", type=float, default=5.0, help="seconds between stats")
    p.set_defaults(handler=events_command)


def events_command(args: argparse.Namespace, store: StateStore) -> int:
    if args.stats:
        print(json.dumps(container_stats(store, args.container_id)))
        return 0
    while True:
        try:
            print(json.dumps(container_stats(store, args.container_id)), flush=True)
        except InvalidState:
            return 0  # the container stopped: the stream ends, like runc's
        time.sleep(args.interval)
