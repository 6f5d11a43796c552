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
    "run": ("run", "run", "Create and run a new container from an image"),
    "create": ("containers", "create", "Create a new container"),
    "start": ("containers", "start", "Start one or more stopped containers"),
    "stop": ("containers", "stop", "Stop one or more running containers"),
    "restart": ("containers", "restart", "Restart one or more containers"),
    "kill": ("containers", "kill", "Kill one or more running containers"),
    "rm": ("containers", "rm", "Remove one or more containers"),
    "ps": ("containers", "ps", "List containers"),
    "logs": ("containers", "logs", "Fetch the logs of a container"),
    "attach": ("containers", "attach", "Attach local standard input, output, and error streams to a running container"),
    "wait": ("containers", "wait", "Block until one or more containers stop, then print their exit codes"),
    "pause": ("containers", "pause", "Pause all processes within one or more containers"),
    "unpause": ("containers", "unpause", "Unpause all processes within one or more containers"),
    "inspect": ("inspect", "inspect", "Return low-level information on Berth objects"),
    "images": ("images", "images", "List images"),
    "rmi": ("images", "rmi", "Remove one or more images"),
    "tag": ("images", "tag", "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE"),
    "save": ("images", "save", "Save one or more images to a tar archive (streamed to STDOUT by default)"),
    "load": ("images", "load", "Load an image from a tar archive or STDIN"),
    "history": ("images", "history", "Show the history of an image"),
    "version": ("system", "version", "Show the Berth version information"),
    "info": ("system", "info", "Display system-wide information"),
    "events": ("system", "events", "Get real time events from the engine"),
    "completion": ("completion", "completion", "Generate the autocompletion script for the specified shell"),
    "exec": ("execs", "exec_", "Execute a command in a running container"),
    "stats": ("stats", "stats", "Display a live stream of container(s) resource usage statistics"),
    "port": ("port", "port", "List port mappings or a specific mapping for the container"),
    "pull": ("registry", "pull", "Download an image from a registry"),
    "push": ("registry", "push", "Upload an image to a registry"),
    "login": ("registry", "login", "Authenticate to a registry"),
    "logout": ("registry", "logout", "Log out from a registry"),
    "search": ("registry", "search", "Search for images"),
    "build": ("build", "build", "Build an image from a Dockerfile"),
    "commit": ("build", "commit", "Create a new image from a container's changes"),
    "cp": ("container_fs", "cp", "Copy files/folders between a container and the local filesystem"),
    "export": ("container_fs", "export", "Export a container's filesystem as a tar archive"),
    "diff": ("container_fs", "diff", "Inspect changes to files or directories on a container's filesystem"),
    "top": ("containers", "top", "Display the running processes of a container"),
    "rename": ("containers", "rename", "Rename a container"),
    "import": ("images", "import_", "Import the contents from a tarball to create a filesystem image"),
    "update": ("containers", "update", "Update configuration of one or more containers"),
}
# Reached only through their management command (`berth image inspect`): not top-level names.
GROUP_ONLY: dict[str, tuple[str, str, str]] = {
    "container inspect": ("inspect", "container_inspect", "Display detailed information on containers"),
    "builder prune": ("build", "builder_prune", "Remove build cache"),
    "image inspect": ("images", "image_inspect", "Display detailed information on images"),
    "volume create": ("volumes", "create", "Create a volume"),
    "volume ls": ("volumes", "ls", "List volumes"),
    "volume inspect": ("volumes", "inspect", "Display detailed information on one or more volumes"),
    "volume rm": ("volumes", "rm", "Remove one or more volumes"),
    "volume prune": ("volumes", "prune", "Remove unused local volumes"),
    "network create": ("networks", "create", "Create a network"),
    "network ls": ("networks", "ls", "List networks"),
    "network inspect": ("networks", "inspect", "Display detailed information on one or more networks"),
    "network rm": ("networks", "rm", "Remove one or more networks"),
    "network connect": ("networks", "connect", "Connect a container to a network"),
    "network disconnect": ("networks", "disconnect", "Disconnect a container from a network"),
    "network prune": ("networks", "prune", "Remove all unused networks"),
    "context create": ("contexts", "create", "Create a context"),
    "context ls": ("contexts", "ls", "List contexts"),
    "context inspect": ("contexts", "inspect", "Display detailed information on one or more contexts"),
    "context rm": ("contexts", "rm", "Remove one or more contexts"),
    "context use": ("contexts", "use", "Set the current context"),
    "context show": ("contexts", "show", "Print the name of the current context"),
    "context export": ("contexts", "export", "Export a context to a tar archive FILE or a tar stream on STDOUT"),
    "context import": ("contexts", "import_", "Import a context from a tar or zip file"),
    "context update": ("contexts", "update", "Update a context"),
    "system df": ("disk", "df", "Show disk usage"),
    "system prune": ("disk", "system_prune", "Remove unused data"),
    "container prune": ("disk", "container_prune", "Remove all stopped containers"),
    "image prune": ("disk", "image_prune", "Remove unused images"),
    "system dial-stdio": ("system", "dial_stdio", "Proxy the stdio stream to the engine connection (what ssh:// "
                          "clients run on the remote)"),
    **{f"machine {sub}": ("machine", "machine", "Not available yet: there is no VM backend (berthd runs natively)")
       for sub in ("init", "start", "stop", "status", "ssh", "rm", "set", "logs", "ls", "inspect")},
}
# `berth system info` == `berth info`, like docker's management commands.
GROUPS: dict[str, dict[str, str]] = {
    "container": {
        "run": "run", "create": "create", "start": "start", "stop": "stop", "restart": "restart", "kill": "kill",
        "rm": "rm", "remove": "rm", "ls": "ps", "list": "ps", "ps": "ps", "logs": "logs", "attach": "attach",
        "wait": "wait", "pause": "pause", "unpause": "unpause", "inspect": "container inspect",
    },
    "image": {
        "ls": "images", "list": "images", "rm": "rmi", "remove": "rmi", "tag": "tag", "save": "save",
        "load": "load", "history": "history", "inspect": "image inspect", "pull": "pull", "push": "push",
    },
    "system": {"info": "info", "events": "events", "dial-stdio": "system dial-stdio", "df": "system df",
               "prune": "system prune"},
    "builder": {"build": "build", "prune": "builder prune"},
    "volume": {"create": "volume create", "ls": "volume ls", "list": "volume ls", "inspect": "volume inspect",
               "rm": "volume rm", "remove": "volume rm", "prune": "volume prune"},
    "network": {"create": "network create", "ls": "network ls", "list": "network ls", "inspect": "network inspect",
                "rm": "network rm", "remove": "network rm", "connect": "network connect",
                "disconnect": "network disconnect", "prune": "network prune"},
    "context": {"create": "context create", "ls": "context ls", "list": "context ls", "inspect": "context inspect",
                "rm": "context rm", "remove": "context rm", "use": "context use", "show": "context show",
                "export": "context export", "import": "context import", "update": "context update"},
    "machine": {sub: f"machine {sub}"
                for sub in ("init", "start", "stop", "status", "ssh", "rm", "set", "logs", "ls", "inspect")},
}
GROUPS["container"].update({"exec": "exec", "stats": "stats", "port": "port"})
GROUPS["container"].update({"cp": "cp", "export": "export", "diff": "diff"})
GROUPS["container"]["commit"] = "commit"
GROUPS["container"].update({"top": "top", "rename": "rename", "update": "update", "prune": "container prune"})
GROUPS["image"].update({"prune": "image prune", "import": "import"})
GROUPS["image"]["build"] = "build"

GLOBAL_FLAGS = ("--host", "--context", "--debug", "--help", "--version")
EXIT_USAGE = 125  # docker's exit status for bad flags / unknown commands


def _usage() -> str:
    lines = ["Usage:  berth [OPTIONS] COMMAND", "", "A Docker-compatible container engine you can read", "",
             "Commands:"]
    width = max(len(n) for n in COMMANDS)
    lines += [f"  {name:<{width}}  {help_}" for name, (_, _, help_) in sorted(COMMANDS.items())]
    lines += ["", "Management Commands:"]
    lines += [f"  {name}" for name in sorted(GROUPS)]
    lines += ["", "Global Options:",
              "  -H, --host string      Engine address (unix:///path, tcp://host:port, ssh://[user@]host[:port]); "
              "env BERTH_HOST, DOCKER_HOST",
              "  -c, --context string   Name of the context to use (overrides DOCKER_HOST; see 'berth context')",
              "  -D, --debug            Show tracebacks on errors",
              "", "Run 'berth COMMAND --help' for more information on a command."]
    return "\n".join(lines)


def _group_usage(group: str) -> str:
    """`berth volume` / `berth volume --help`: the management command's subcommands, like docker's."""
    subs = GROUPS[group]
    helps = {sub: (COMMANDS.get(target) or GROUP_ONLY[target])[2] for sub, target in subs.items()}
    primary = {target: sub for sub, target in reversed(list(subs.items()))}  # aliases (`list`) after the name
    width = max(len(sub) for sub in subs)
    lines = [f"Usage:  berth {group} COMMAND", "", f"Manage {group}s" if group != "system" else "Manage Berth", "",
             "Commands:"]
    lines += [f"  {sub:<{width}}  {helps[sub]}" for sub in sorted(subs) if primary.get(subs[sub]) == sub]
    lines += ["", f"Run 'berth {group} COMMAND --help' for more information on a command."]
    return "\n".join(lines)


def split_globals(argv: Sequence[str]) -> tuple[GlobalOptions, list[str]]:
    options = GlobalOptions()
    args = list(argv)
    while args and args[0].startswith("-"):
        flag = args.pop(0)
        name, eq, value = flag.partition("=")
        if name in ("-H", "--host", "-c", "--context"):
            if not eq:
                if not args:
                    raise UsageError(f"flag needs an argument: {name}")
                value = args.pop(0)
            if name in ("-H", "--host"):
                options.host = value
            else:
                options.context = value
        elif name in ("-D", "--debug"):
            options.debug = True
        elif name in ("-h", "--help"):
            options.help = True
        elif name in ("-v", "--version"):
            options.show_version = True
        else:
            import difflib

            close = difflib.get_close_matches(name, GLOBAL_FLAGS, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise UsageError(f"unknown flag: {name}.{hint} See 'berth --help'." if hint else f"unknown flag: {name}")
    return options, args


def resolve(args: list[str]) -> tuple[str, list[str]]:
    name = args[0]
    if name in GROUPS and len(args) > 1 and args[1] in GROUPS[name]:
        return GROUPS[name][args[1]], args[2:]
    if name in COMMANDS:
        return name, args[1:]
    import difflib

    if name in GROUPS:
        candidates, what = list(GROUPS[name]), f"berth {name}"
        typed = args[1] if len(args) > 1 else ""
        if not typed or typed in ("-h", "--help"):
            return "", [name]  # the group's usage (main prints it)
    else:
        candidates, what, typed = list(COMMANDS) + list(GROUPS), "berth", name
    close = difflib.get_close_matches(typed, candidates, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise UsageError(f"'{typed}' is not a {what} command.{hint} See '{what} --help'.")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        # `berth ... | head`: the reader left; exit quietly, and keep the interpreter's final flush from
        # raising again (Python's documented SIGPIPE recipe).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _main(argv: Sequence[str] | None) -> int:
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
        return exc.exit_code
    if not command:
        print(_group_usage(command_args[0]))
        return 0
    module_name, function, _ = COMMANDS.get(command) or GROUP_ONLY[command]
    from importlib import import_module

    module = import_module(f"engine.cli.commands.{module_name}")
    ctx = CLIContext(options, os.environ)
    return ctx.run(getattr(module, function), command_args)


if __name__ == "__main__":
    sys.exit(main())
