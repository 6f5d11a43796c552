"""`update`: change a running container's cgroup limits (runc update)."""

from __future__ import annotations

import argparse
import json
import sys

from ..lifecycle import update_container
from ..state import StateStore

TYPE_CHECKING = False  # as typing's, without importing typing (~2 ms per berth-runtime call)
if TYPE_CHECKING:
    from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("update", help="update container resource constraints")
    p.add_argument("container_id")
    p.add_argument("-r", "--resources", default=None, help="path to a linux.resources JSON file ('-' = stdin)")
    p.add_argument("--memory", type=int, default=None, help="memory limit in bytes")
    p.add_argument("--memory-swap", type=int, default=None)
    p.add_argument("--cpu-quota", type=int, default=None)
    p.add_argument("--cpu-period", type=int, default=None)
    p.add_argument("--cpu-shares", type=int, default=None)
    p.add_argument("--cpuset-cpus", default=None)
    p.add_argument("--cpuset-mems", default=None)
    p.add_argument("--pids-limit", type=int, default=None)
    p.set_defaults(handler=update_command)


def resources_from_args(args: argparse.Namespace) -> dict[str, Any]:
    if args.resources:
        if args.resources == "-":
            loaded: dict[str, Any] = json.load(sys.stdin)
        else:
            with open(args.resources, encoding="utf-8") as f:
                loaded = json.load(f)
        return loaded
    resources: dict[str, Any] = {}
    memory = {k: v for k, v in (("limit", args.memory), ("swap", args.memory_swap)) if v is not None}
    cpu = {k: v for k, v in (("quota", args.cpu_quota), ("period", args.cpu_period), ("shares", args.cpu_shares),
                             ("cpus", args.cpuset_cpus), ("mems", args.cpuset_mems)) if v is not None}
    if memory:
        resources["memory"] = memory
    if cpu:
        resources["cpu"] = cpu
    if args.pids_limit is not None:
        resources["pids"] = {"limit": args.pids_limit}
    return resources


def update_command(args: argparse.Namespace, store: StateStore) -> int:
    update_container(store, args.container_id, resources_from_args(args))
    return 0
