"""`exec`: run a new process inside a container (module name avoids the builtin)."""

from __future__ import annotations

import argparse
import contextlib
import json

from ..errors import InvalidSpec
from ..state import StateStore

TYPE_CHECKING = False  # as typing's, without importing typing (~2 ms per berth-runtime call)
if TYPE_CHECKING:
    from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("exec", help="execute new process inside the container")
    p.add_argument("container_id")
    p.add_argument("command", nargs=argparse.REMAINDER)
    p.add_argument("-p", "--process", default=None, help="path to a process.json")
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("--console-socket", default=None)
    p.add_argument("--cwd", default=None)
    p.add_argument("-e", "--env", action="append", default=[])
    p.add_argument("-u", "--user", default=None, help="UID[:GID]")
    p.add_argument("--additional-gids", "-g", action="append", type=int, default=[])
    p.add_argument("--no-new-privs", action="store_true")
    p.add_argument("--pid-file", default=None)
    p.add_argument("--preserve-fds", type=int, default=0)
    p.set_defaults(handler=exec_command)


def build_process(args: argparse.Namespace, base: dict[str, Any]) -> dict[str, Any]:
    """process.json if given, else the container's process with runc's flag overrides."""
    if args.process:
        with open(args.process, encoding="utf-8") as f:
            loaded: dict[str, Any] = json.load(f)
            return loaded
    if not args.command:
        raise InvalidSpec("exec needs a command or --process")
    process = dict(base)
    process["args"] = list(args.command)
    process["terminal"] = bool(args.tty)
    process.pop("consoleSize", None)
    if args.cwd:
        process["cwd"] = args.cwd
    if args.env:
        process["env"] = list(process.get("env", [])) + list(args.env)
    if args.user:
        uid, _, gid = args.user.partition(":")
        process["user"] = {"uid": int(uid), "gid": int(gid or 0)}
    if args.additional_gids:
        process.setdefault("user", {})["additionalGids"] = list(args.additional_gids)
    if args.no_new_privs:
        process["noNewPrivileges"] = True
    return process


def exec_command(args: argparse.Namespace, store: StateStore) -> int:
    from ..exec import exec_process
    from ..foreground import accept_master, become_subreaper, console_listener, wait_forwarding_signals

    if args.command and args.command[0] == "--":
        args.command = args.command[1:]
    base = dict(store.load_config(args.container_id).get("process", {}))
    process = build_process(args, base)
    if not args.detach:
        become_subreaper()
    with contextlib.ExitStack() as stack:
        listener = None
        console_path = args.console_socket
        if process.get("terminal") and not console_path and not args.detach:
            console_path, listener = stack.enter_context(console_listener(store.container_dir(args.container_id)))
        pid = exec_process(store, args.container_id, process, console_socket=console_path,
                           preserve_fds=args.preserve_fds)
        if args.pid_file:
            with open(args.pid_file, "w", encoding="ascii") as f:
                f.write(str(pid))
        if args.detach:
            return 0
        master = accept_master(listener) if listener is not None else None
        return wait_forwarding_signals(pid, master)
    return 0

