"""What the object commands (`inspect`, `volume ...`, `network ...`) share: print inspected objects,
act on several names reporting each failure, ask before a prune."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from engine.cli.gojson import dumps, go_json

if TYPE_CHECKING:
    from engine.cli.context import CLIContext


def print_inspected(ctx: CLIContext, found: Sequence[Any], fmt: str | None) -> None:
    """docker's inspect output: a 4-space-indented JSON array, `json` on one line, or a template per object."""
    if fmt and fmt != "json":
        from engine.cli.context import StatusError
        from engine.cli.gotemplate import Template, TemplateError
        from engine.cli.output import EXIT_TEMPLATE_PARSE

        try:
            # docker runs the template on raw JSON with missingkey=error (its inspect's fallback).
            template = Template(fmt, missing_key_error=True)
        except TemplateError as exc:
            raise StatusError(str(exc), EXIT_TEMPLATE_PARSE) from exc
        rendered, failed = [], False
        for item in found:
            try:
                rendered.append(template.render(item) + "\n")
            except TemplateError as exc:
                # docker reports each object's failure and goes on to the next.
                ctx.warn(f"template parsing error: {exc}")
                failed = True
        # docker writes its buffer at the end: an empty line when nothing rendered.
        ctx.out.write("".join(rendered) or "\n")
        if failed:
            raise StatusError("", 1)
    elif fmt == "json":
        ctx.print(go_json(dumps(list(found))))
    else:
        # docker prints the array with 4-space indentation, even when nothing was found.
        ctx.print(go_json(dumps(list(found), indent=4, ensure_ascii=False)))


def inspect_each(ctx: CLIContext, names: Sequence[str], fetch: Callable[[str], Any], fmt: str | None) -> int:
    """Inspect every name; the ones not found are reported on stderr and make the exit status 1."""
    from engine.client.errors import APIError

    found, failed = [], False
    for name in names:
        try:
            found.append(fetch(name))
        except APIError as exc:
            ctx.warn(str(exc))  # docker prints the engine's own words here (not "No such object")
            failed = True
    print_inspected(ctx, found, fmt)
    return 1 if failed else 0


def each(ctx: CLIContext, names: Sequence[str], action: Callable[[str], Any]) -> int:
    """docker's multi-object verbs (`volume rm a b`): print each name done, report failures, exit 1 if any."""
    from engine.client.errors import APIError

    failed = False
    for name in names:
        try:
            action(name)
        except APIError as exc:
            ctx.warn(str(exc))
            failed = True
            continue
        ctx.print(name)
    return 1 if failed else 0


def confirm(ctx: CLIContext, warning: str, force: bool) -> bool:
    """The prune prompt: `WARNING! ...` then `Are you sure you want to continue? [y/N]` unless --force."""
    if force:
        return True
    ctx.out.write(f"{warning}\nAre you sure you want to continue? [y/N] ")
    ctx.out.flush()
    answer = sys.stdin.readline().strip().lower()
    return answer in ("y", "yes")


def parse_key_values(items: Sequence[str]) -> dict[str, str]:
    """`--label a=b`, `-o type=tmpfs`: a key without `=` gets an empty value, as in docker's ListOpts."""
    return dict(item.partition("=")[::2] for item in items)
