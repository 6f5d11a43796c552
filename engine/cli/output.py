"""How the CLI prints: --format, aligned tables, human sizes and times, flag values."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from engine.cli.listing import parse_filter_flags
from engine.humanize import human_duration, human_size

if TYPE_CHECKING:
    from engine.cli.context import CLIContext
    from engine.client.sync import StreamingResponse

EXIT_TEMPLATE_PARSE = 64  # docker 28: a --format that does not parse (inspect, version, info)
__all__ = ["format_or_default", "human_duration", "human_size", "parse_filter_flags", "parse_time_flag", "table"]


def format_or_default(ctx: CLIContext, fmt: str | None, data: Any, name: str = "") -> bool:
    """Print `data` per --format and return True, or return False for the default layout.

    Template errors as docker's version/info/events (`name` is what Go's errors call the template):
    one that does not parse exits 64; one that fails to execute prints an empty line, exits 1.
    """
    if not fmt:
        return False
    if fmt == "json":
        ctx.print(json.dumps(data, separators=(",", ":")))
        return True
    from engine.cli.context import StatusError
    from engine.cli.gotemplate import Template, TemplateError

    try:
        template = Template(fmt, name)
    except TemplateError as exc:
        raise StatusError(str(exc), EXIT_TEMPLATE_PARSE) from exc
    try:
        text = template.render(data)
    except TemplateError as exc:
        ctx.print()
        raise StatusError(str(exc), 1) from exc
    ctx.print(text)
    return True


def table(rows: Sequence[Sequence[str]], padding: int = 3) -> list[str]:
    """Left-aligned columns separated by 3 spaces, like docker's tabwriter output."""
    if not rows:
        return []
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return [
        "".join(str(cell).ljust(widths[i] + padding) if i < len(row) - 1 else str(cell) for i, cell in enumerate(row))
        for row in rows
    ]


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)$")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_time_flag(value: str | None, now: float | None = None) -> str | None:
    """--since/--until: a Go duration ("10m", "1h30m") means that long ago; else passed through."""
    if not value:
        return None
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", value)
    if parts and "".join(n + u for n, u in parts) == value:
        ago = sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
        return f"{(now if now is not None else time.time()) - ago:.9f}"
    return value


def write_stream(stream: StreamingResponse, output: str | None) -> None:
    """A streamed archive (save, export) to ``output``, or to stdout when None.

    A file is written beside the target and renamed: a failed transfer never
    leaves half an archive under the asked name.
    """
    import os
    import sys

    try:
        if output:
            partial = f"{output}.partial-{os.getpid()}"
            try:
                with open(partial, "wb") as out:
                    for chunk in stream.chunks():
                        out.write(chunk)
                os.replace(partial, output)
            finally:
                if os.path.exists(partial):
                    os.unlink(partial)
        else:
            for chunk in stream.chunks():
                sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
    finally:
        stream.close()
