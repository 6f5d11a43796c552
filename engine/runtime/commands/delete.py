"""`delete`."""

from __future__ import annotations

from ..errors import ContainerNotFound
from ..lifecycle import delete_container
from ..state import StateStore

TYPE_CHECKING = False  # as typing's, without importing typing (~2 ms per berth-runtime call)
if TYPE_CHECKING:
    from typing import Any

if TYPE_CHECKING:  # argparse only for annotations: fastargs.py calls these without it
    import argparse


def register(sub: Any) -> None:
    p = sub.add_parser("delete", aliases=["rm"], help="delete any resources held by the container")
    p.add_argument("container_ids", nargs="+")
    p.add_argument("-f", "--force", action="store_true", help="kill the container if it still runs")
    p.set_defaults(handler=delete_command)


def delete_command(args: argparse.Namespace, store: StateStore) -> int:
    for container_id in args.container_ids:
        try:
            delete_container(store, container_id, force=args.force)
        except ContainerNotFound:
            if not args.force:  # runc: --force on a missing container is not an error
                raise
    return 0
