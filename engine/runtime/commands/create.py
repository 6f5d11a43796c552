"""`create` and `run`."""

from __future__ import annotations

import os

from ..state import StateStore

TYPE_CHECKING = False  # as typing's, without importing typing (~2 ms per berth-runtime call)
if TYPE_CHECKING:
    from typing import Any

# The container machinery is imported by the handlers, not here: `berth-runtime state`
# or `list` should not pay for it (CLI start-up time is most of a verb's cost).
if TYPE_CHECKING:
    import argparse
    import socket

    from ..create import CreateOptions
    from ..spec import Spec


def register(sub: Any) -> None:
    for name in ("create", "run"):
        p = sub.add_parser(name, help=f"{name} a container")
        p.add_argument("container_id")
        p.add_argument("-b", "--bundle", default=".", help="path to the root of the bundle directory")
        p.add_argument("--console-socket", default=None, help="unix socket receiving the pty master")
        p.add_argument("--pid-file", default=None)
        p.add_argument("--preserve-fds", type=int, default=0)
        p.add_argument("--no-pivot", action="store_true", help="use MS_MOVE + chroot instead of pivot_root")
        p.add_argument("--no-new-keyring", action="store_true", help="accepted for runc compatibility")
        if name == "run":
            p.add_argument("-d", "--detach", action="store_true")
            p.add_argument("--keep", action="store_true", help="do not delete the container after it exits")
        p.set_defaults(handler=run_command if name == "run" else create_command)


def create_command(args: argparse.Namespace, store: StateStore) -> int:
    from ..create import create_container
    from ..foreground import become_subreaper

    # While we live, the init is our child: a failed setup is reaped here, not left as a zombie
    # holding the cgroup.  Once we exit it passes to the next subreaper up (the supervisor).
    become_subreaper()
    create_container(store, args.container_id, args.bundle, _options(args))
    return 0


def _options(args: argparse.Namespace, console_socket: str | None = None, spec: Spec | None = None) -> CreateOptions:
    from ..create import CreateOptions

    return CreateOptions(
        console_socket=console_socket or args.console_socket,
        pid_file=os.path.abspath(args.pid_file) if args.pid_file else None,
        preserve_fds=args.preserve_fds,
        no_pivot=args.no_pivot,
        spec=spec,
    )


def run_command(args: argparse.Namespace, store: StateStore) -> int:
    """create + start; in the foreground, wait and return the container's exit status (runc run)."""
    from ..create import create_container
    from ..foreground import become_subreaper, console_listener
    from ..lifecycle import start_container
    from ..spec import load_spec

    if args.detach:
        become_subreaper()
        create_container(store, args.container_id, args.bundle, _options(args))
        start_container(store, args.container_id)
        return 0
    become_subreaper()
    spec = load_spec(os.path.abspath(args.bundle))  # read once: for process.terminal here, then by create
    terminal = bool(spec.get("process", {}).get("terminal"))
    os.makedirs(store.root, mode=0o711, exist_ok=True)
    if terminal and not args.console_socket:
        with console_listener(store.root) as (console_path, listener):
            return _run_in_foreground(store, args, spec, console_path, listener)
    return _run_in_foreground(store, args, spec, args.console_socket, None)


def _run_in_foreground(
    store: StateStore, args: argparse.Namespace, spec: Spec, console_path: str | None, listener: socket.socket | None
) -> int:
    from ..create import create_container
    from ..foreground import accept_master, forwarding_signals, wait_for_child
    from ..lifecycle import delete_container, start_container

    record = create_container(store, args.container_id, args.bundle, _options(args, console_path, spec))
    try:
        master = accept_master(listener) if listener is not None else None
        with forwarding_signals(record.pid):
            start_container(store, args.container_id)
            return wait_for_child(record.pid, master)
    finally:
        if not args.keep:
            delete_container(store, args.container_id, force=True)
