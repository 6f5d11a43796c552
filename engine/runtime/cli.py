"""`berth-runtime`: a runc-compatible command line over the runtime library.

Global flags and messages follow runc (main.go): --root (state directory),
--log/--log-format json, --debug; errors go to stderr (and the log) as
``level=error msg="..."`` with exit status 1.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys

from . import fastargs, lazylog
from .abcs import Sequence
from .errors import RuntimeFailure
from .state import DEFAULT_ROOT, StateStore

TYPE_CHECKING = False  # as typing's, without importing typing (~2 ms per berth-runtime call)
if TYPE_CHECKING:
    from typing import NoReturn

if TYPE_CHECKING:  # argparse is imported by build_parser: the plain lifecycle calls never need it
    import argparse

log = lazylog.getLogger("engine.runtime")

VERSION = "0.1.0"


# Modules under commands/, in help order, and the verbs (with aliases) each registers.
_COMMAND_MODULES = ("create", "start", "state", "kill", "delete", "ps", "exec_", "pause", "update", "events", "spec")
_MODULE_OF_VERB = {
    "create": "create", "run": "create", "start": "start", "state": "state", "list": "state", "ls": "state",
    "kill": "kill", "delete": "delete", "rm": "delete", "ps": "ps", "exec": "exec_", "pause": "pause",
    "resume": "pause", "update": "update", "events": "events", "spec": "spec", "features": "spec",
}
_GLOBAL_FLAGS = {"--debug", "--systemd-cgroup"}
_GLOBAL_OPTIONS = {"--root", "--log", "--log-format", "--rootless"}  # take a value


def _verb_module(argv: Sequence[str]) -> str | None:
    """The one commands/ module the verb in ``argv`` needs, or None when unsure (then all are registered).

    Importing and registering only that module saves a few ms per call; anything unusual before the
    verb (an abbreviated option, --help, --version) falls back to the full parser, so parsing and
    messages stay argparse's.
    """
    args = iter(argv)
    for arg in args:
        if arg in _GLOBAL_FLAGS or ("=" in arg and arg.split("=", 1)[0] in _GLOBAL_OPTIONS):
            continue
        if arg in _GLOBAL_OPTIONS:
            next(args, None)
            continue
        return _MODULE_OF_VERB.get(arg)
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    import importlib  # with argparse: the plain lifecycle calls never come here

    from ..helpformat import QuickArgumentParser

    parser = QuickArgumentParser(prog="berth-runtime", description="Berth's OCI runtime (runc-compatible)")
    parser.add_argument("--root", default=DEFAULT_ROOT, help="root directory for storage of container state")
    parser.add_argument("--log", default=None, help="set the log file to write runtime logs to")
    parser.add_argument("--log-format", default="text", choices=("text", "json"))
    parser.add_argument("--debug", action="store_true", help="enable debug logging")
    parser.add_argument("--systemd-cgroup", action="store_true", help="accepted for runc compatibility; ignored")
    parser.add_argument("--rootless", default="auto", help="accepted for runc compatibility")
    parser.add_argument("-v", "--version", action="version", version=f"berth-runtime version {VERSION}\nspec: 1.2.0")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=QuickArgumentParser)
    sub.required = True
    needed = _verb_module(argv) if argv is not None else None
    for name in (needed,) if needed else _COMMAND_MODULES:
        importlib.import_module(f"{__package__}.commands.{name}").register(sub)
    return parser


def _setup_logging(args: argparse.Namespace | fastargs.ParsedArgs) -> None:
    """runc's logging: errors on stderr; with --log, info and up (debug with --debug) in the file too.

    Without --log or --debug only an error would show, and a call that goes well has none: then
    `logging` (~4 ms) is imported, and the handlers made, only for the first error (lazylog.py).
    """
    def configure() -> None:
        from .cli_log import setup_logging

        setup_logging(args.debug, args.log, args.log_format)

    if args.debug or args.log:
        lazylog.keep_from(0)
        configure()
    else:
        lazylog.keep_from(lazylog.ERROR, configure)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit status.  Without ``argv`` (the launcher's call) the process leaves here."""
    if argv is None:
        _leave(_run(sys.argv[1:]))
    return _run(argv)


def _run(argv: Sequence[str]) -> int:
    args: argparse.Namespace | fastargs.ParsedArgs | None = fastargs.parse(argv)
    if args is None:
        # Not a plain lifecycle call (events, update, exec...): it may live long, so the collector the
        # launcher turned off for the ~20 ms ones runs again (installers/launchers.py GC_OFF_AT_START).
        gc.enable()
        args = build_parser(argv).parse_args(argv)
    _setup_logging(args)
    store = StateStore(args.root)
    try:
        code: int = args.handler(args, store)
    except RuntimeFailure as exc:
        log.error("%s", exc)
        return 1
    except (OSError, ValueError) as exc:
        log.error("%s", exc)
        if args.debug:
            log.exception("details")
        return 1
    finally:
        lazylog.keep_from(0)  # a caller that goes on in this process logs as before
    return code


def _leave(code: int) -> NoReturn:
    """Exit the way runc does, without CPython's finalization (2-7 ms here of freeing every module
    and object just before the kernel frees the whole process): the atexit callbacks run (logging's
    flushes and closes a --log file), stdout and stderr are flushed, then _exit(2)."""
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed or broken stream: nothing more can be said on it
            pass
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
