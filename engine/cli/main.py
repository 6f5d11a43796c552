"""`berth`: Docker's command syntax over the Engine API.

Start-up cost matters (`berth ps` should feel as fast as `docker ps`), so this
module imports nothing heavy: it reads the global options and the command
name by hand and imports only the module of the command asked for.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from engine.cli.context import CLIContext, GlobalOptions, UsageError

# command -> (module under engine.cli.commands, function, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "version": ("system", "version", "Show the Berth version information"),
    "info": ("system", "info", "Display system-wide information"),
    "events": ("system", "events", "Get real time events from the engine"),
}
# `berth system info` == `berth info`, like docker's management commands.
GROUPS: dict[str, dict[str, str]] = {
    "system": {"info": "info", "events": "events"},
}

EXIT_USAGE = 125  # docker's exit status for bad flags / unknown commands


def _usage() -> str:
    lines = ["Usage:  berth [OPTIONS] COMMAND", "", "A Docker-compatible container engine you can read", "",
             "Commands:"]
    width = max(len(n) for n in COMMANDS)
    lines += [f"  {name:<{width}}  {help_}" for name, (_, _, help_) in sorted(COMMANDS.items())]
    lines += ["", "Management Commands:"]
    lines += [f"  {name}" for name in sorted(GROUPS)]
    lines += ["", "Global Options:",
              "  -H, --host string      Engine address (unix:///path or tcp://host:port); env BERTH_HOST, DOCKER_HOST",
              "  -D, --debug            Show tracebacks on errors",
              "", "Run 'berth COMMAND --help' for more information on a command."]
    return "\n".join(lines)


def split_globals(argv: Sequence[str]) -> tuple[GlobalOptions, list[str]]:
    options = GlobalOptions()
    args = list(argv)
    while args and args[0].startswith("-"):
        flag = args.pop(0)
        name, eq, value = flag.partition("=")
        if name in ("-H", "--host"):
            if not eq:
                if not args:
                    raise UsageError(f"flag needs an argument: {name}")
                value = args.pop(0)
            options.host = value
        elif name in ("-D", "--debug"):
            options.debug = True
        elif name in ("-h", "--help"):
            options.help = True
        elif name in ("-v", "--version"):
            options.show_version = True
        else:
            raise UsageError(f"unknown flag: {name}")
    return options, args


def resolve(args: list[str]) -> tuple[str, list[str]]:
    name = args[0]
    if name in GROUPS and len(args) > 1 and args[1] in GROUPS[name]:
        return GROUPS[name][args[1]], args[2:]
    if name in COMMANDS:
        return name, args[1:]
    import difflib

    known = list(COMMANDS) + list(GROUPS)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"\nDid you mean '{close[0]}'?" if close else ""
    raise UsageError(f"'{name}' is not a berth command.{hint}\nSee 'berth --help'")


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        options, rest = split_globals(argv)
        if options.show_version:
            from engine.version import BERTH_VERSION

            print(f"Berth version {BERTH_VERSION}")
            return 0
        if options.help or not rest:
            print(_usage())
            return 0 if options.help else 1
        command, command_args = resolve(rest)
    except UsageError as exc:
        print(f"berth: {exc}", file=sys.stderr)
        return EXIT_USAGE
    module_name, function, _ = COMMANDS[command]
    from importlib import import_module

    module = import_module(f"engine.cli.commands.{module_name}")
    ctx = CLIContext(options, os.environ)
    return ctx.run(getattr(module, function), command_args)


if __name__ == "__main__":
    sys.exit(main())
