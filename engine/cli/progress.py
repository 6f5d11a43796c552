"""JSON-lines progress (pull, push) drawn like the docker CLI (moby pkg/jsonmessage).

On a terminal every layer id owns a line that is redrawn in place: the cursor
moves up to it (`ESC[nA`), clears it (`ESC[2K`), writes `id: Status [==>   ] 1.2MB/3.4MB`
and moves back down (`ESC[nB`).  A line without an id forgets the table, as docker
does, so a new operation starts a fresh one.  Piped, progress bars are dropped and
every other message is one plain line (`id: Pull complete`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TextIO

from engine.cli.context import StatusError

BAR_WIDTH = 50


def human_size(size: float) -> str:
    """go-units HumanSize: decimal units, 3 significant digits (`1.23MB`)."""
    units = ["B", "kB", "MB", "GB", "TB", "PB"]
    index = 0
    while size >= 1000 and index < len(units) - 1:
        size /= 1000
        index += 1
    return f"{size:.3g}{units[index]}"


def progress_bar(detail: dict[str, Any], columns: int = 200) -> str:
    """JSONProgress.String(): `[=====>      ]  1.2MB/3.4MB`, or just the amount without a total."""
    current = int(detail.get("current") or 0)
    total = int(detail.get("total") or 0)
    if current <= 0 and total <= 0:
        return ""
    if total <= 0:
        return f"{human_size(current):>8}"
    numbers = f"{human_size(current):>8}/{human_size(total)}"
    if columns <= 110:  # narrow terminals get the numbers only, as in docker
        return numbers
    filled = min(BAR_WIDTH, int(current / total * 100) // 2)
    return "[" + "=" * filled + ">" + " " * (BAR_WIDTH - filled) + "] " + numbers


def display(messages: Iterable[dict[str, Any]], out: TextIO, tty: bool,
            on_aux: Callable[[dict[str, Any]], None] | None = None, columns: int = 200) -> None:
    """Render a pull/push stream; an `error` message ends it as a StatusError (exit 1)."""
    lines: dict[str, int] = {}
    for message in messages:
        if message.get("error"):
            raise StatusError(str(message["error"]), 1)
        if "aux" in message:
            if on_aux is not None:
                on_aux(message["aux"])
            continue
        ident = str(message.get("id") or "")
        has_progress = "progressDetail" in message
        diff = 0
        if ident and has_progress:
            if ident not in lines:
                lines[ident] = len(lines)
                if tty:
                    out.write("\n")
            diff = len(lines) - lines[ident]
            if tty:
                out.write(f"\x1b[{diff}A")
        else:
            lines = {}
        _display_one(message, out, tty, columns)
        if ident and has_progress and tty:
            out.write(f"\x1b[{diff}B")
        out.flush()


def _display_one(message: dict[str, Any], out: TextIO, tty: bool, columns: int) -> None:
    detail = message.get("progressDetail")
    bar = progress_bar(detail, columns) if isinstance(detail, dict) else ""
    end = "\n"
    if tty and "progressDetail" in message and not message.get("stream"):
        out.write("\x1b[2K\r")
        end = "\r"
    elif bar:
        return  # no progress bars when piped
    ident = message.get("id")
    prefix = f"{ident}: " if ident else ""
    status = str(message.get("status") or message.get("stream") or "")
    if tty and bar:
        out.write(f"{prefix}{status} {bar}{end}")
    else:
        out.write(f"{prefix}{status}{end}")
