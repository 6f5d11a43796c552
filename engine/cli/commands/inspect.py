"""`berth inspect` (containers or images, like docker's object lookup) and `container/image inspect`."""

from __future__ import annotations

from typing import Any

from engine.cli.context import CLIContext, StatusError

# docker's object lookup order for a bare `inspect NAME` (cli/command/system/inspect.go).
_PATHS = {"container": "/containers/{}/json", "image": "/images/{}/json", "network": "/networks/{}",
          "volume": "/volumes/{}"}


def inspect(ctx: CLIContext, args: list[str]) -> int:
    return inspect_objects(ctx, "inspect", args)


def container_inspect(ctx: CLIContext, args: list[str]) -> int:
    return inspect_objects(ctx, "container inspect", args, fixed_type="container")


def _find(ctx: CLIContext, name: str, types: list[str]) -> Any:
    from engine.client.errors import NotFound

    for kind in types:
        try:
            return ctx.client.get(_PATHS[kind].format(name))
        except NotFound as exc:
            last = exc
    if len(types) == 1:
        raise last
    raise StatusError(f"Error: No such object: {name}", 1)


def inspect_objects(ctx: CLIContext, command: str, args: list[str], fixed_type: str | None = None) -> int:
    p = ctx.parser(command, "Return low-level information on objects")
    p.add_argument("-f", "--format", help="Format output using a Go template or 'json'")
    p.add_argument("-s", "--size", action="store_true", help="Display total file sizes if the type is container")
    if fixed_type is None:
        p.add_argument("--type", choices=sorted(_PATHS), help="Only inspect objects of the given type")
    p.add_argument("names", nargs="+", metavar="NAME|ID")
    opts = p.parse_args(args)
    types = [fixed_type] if fixed_type else [opts.type] if opts.type else list(_PATHS)
    from engine.client.errors import APIError

    found: list[Any] = []
    failed = False
    for name in opts.names:
        try:
            found.append(_find(ctx, name, types))
        except (APIError, StatusError) as exc:
            message = str(exc)
            if isinstance(exc, APIError) and fixed_type is None:
                message = f"Error: No such object: {name}" if exc.status == 404 else message
            ctx.warn(message)
            failed = True
    from engine.cli.objects import print_inspected

    print_inspected(ctx, found, opts.format)
    return 1 if failed else 0
