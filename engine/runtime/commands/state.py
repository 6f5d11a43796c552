"""`state` and `list`."""

from __future__ import annotations

import json
import sys

from ..state import StateStore
from ..status import container_status, oci_state

TYPE_CHECKING = False  # as typing's, without importing typing (~2 ms per berth-runtime call)
if TYPE_CHECKING:
    from typing import Any

if TYPE_CHECKING:  # argparse only for annotations: fastargs.py calls these without it
    import argparse


def register(sub: Any) -> None:
    p = sub.add_parser("state", help="output the state of a container")
    p.add_argument("container_id")
    p.set_defaults(handler=state_command)
    p = sub.add_parser("list", aliases=["ls"], help="list containers started with the given root")
    p.add_argument("-f", "--format", default="table", choices=("table", "json"))
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(handler=list_command)


def state_command(args: argparse.Namespace, store: StateStore) -> int:
    record = store.load(args.container_id)
    print(json.dumps(oci_state(record, container_status(store, record)), indent=2))
    return 0


def list_command(args: argparse.Namespace, store: StateStore) -> int:
    rows = []
    for container_id in store.list_ids():
        record = store.load(container_id)
        status = container_status(store, record)
        rows.append({
            "ociVersion": record.oci_version, "id": record.id,
            "pid": record.pid if status != "stopped" else 0, "status": status, "bundle": record.bundle,
            "rootfs": record.rootfs, "created": record.created, "owner": record.owner,
            "annotations": record.annotations,
        })
    if args.quiet:
        for row in rows:
            print(row["id"])
    elif args.format == "json":
        json.dump(rows, sys.stdout)
        print()
    else:
        print(f"{'ID':<20}{'PID':<10}{'STATUS':<10}{'BUNDLE':<40}{'CREATED':<32}OWNER")
        for row in rows:
            print(f"{row['id']:<20}{row['pid']:<10}{row['status']:<10}{row['bundle']:<40}{row['created']:<32}"
                  f"{row['owner']}")
    return 0
