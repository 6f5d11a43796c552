"""`ps`: the container's processes (runc ps prints `ps -ef` rows; `--format json` the pids)."""

from __future__ import annotations

import argparse
import json

from ..lifecycle import container_pids
from ..state import StateStore

TYPE_CHECKING = False  # as typing's, without importing typing (~2 ms per berth-runtime call)
if TYPE_CHECKING:
    from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("ps", help="list processes running inside a container")
    p.add_argument("container_id")
    p.add_argument("-f", "--format", default="table", choices=("table", "json"))
    p.add_argument("ps_args", nargs="*")
    p.set_defaults(handler=ps_command)


def ps_command(args: argparse.Namespace, store: StateStore) -> int:
    pids = container_pids(store, args.container_id)
    if args.format == "json":
        print(json.dumps(pids))
        return 0
    import subprocess  # here, not at the top: every berth-runtime verb imports this module

    ps_args = args.ps_args or ["-ef"]
    out = subprocess.run(["ps", *ps_args], capture_output=True, text=True, check=True).stdout.splitlines()
    header, rows = out[0], out[1:]
    pid_column = header.split().index("PID")
    print(header)
    wanted = set(pids)
    for row in rows:
        fields = row.split()
        if len(fields) > pid_column and fields[pid_column].isdigit() and int(fields[pid_column]) in wanted:
            print(row)
    return 0
