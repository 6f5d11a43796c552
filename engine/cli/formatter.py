"""Lists the way docker prints them (`ps`, `images`, `history`): the `table` directive, headers, tabwriter.

Docker renders each row with a Go template over a context whose fields are
strings (cli/command/formatter): `table ...` adds a header row and aligns the
columns like Go's tabwriter(minwidth 10, padding 3); `json` prints each row as
one JSON object; anything else prints the template per row, unaligned.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from engine.cli.tabwriter import MIN_WIDTH, PADDING, tabwrite

if TYPE_CHECKING:
    from engine.cli.context import CLIContext

TABLE = "table"
_PLAIN_FIELD = re.compile(r"\{\{\s*\.(\w+)\s*\}\}")
__all__ = ["MIN_WIDTH", "PADDING", "tabwrite", "write_list"]


def _prepare(fmt: str) -> tuple[bool, str]:
    # cli/command/formatter.Context.preFormat: drop `table`, trim spaces, unescape \t and \n.
    is_table = fmt.startswith(TABLE)
    body = fmt[len(TABLE):] if is_table else fmt
    return is_table, body.strip(" ").replace("\\t", "\t").replace("\\n", "\n")


def write_list(ctx: CLIContext, fmt: str, rows: Sequence[Mapping[str, str]], headers: Mapping[str, str]) -> None:
    """Print `rows` (field -> text) per the docker format `fmt` (`table ...`, `json` or a template)."""
    if fmt == "json":
        for row in rows:
            ctx.print(json.dumps(dict(sorted(row.items())), separators=(",", ":")))
        return
    is_table, body = _prepare(fmt)
    # The header row is a row too, so `{{.Label "x"}}` in a table header renders (empty) instead of failing.
    from engine.cli.rows import LabeledRow

    header_row = LabeledRow({key: headers.get(key, key.upper()) for key in _all_keys(rows, headers)}, None)
    # Fields this list knows but a row lacks print as before (`<no value>`); unknown ones are errors.
    rows = [LabeledRow(dict(dict.fromkeys(header_row, "<no value>"), **row), getattr(row, "labels", None))
            for row in rows]
    render = _plain_renderer(body, set(header_row))
    if render is not None:
        rendered, header = [render(row) for row in rows], render(header_row) if is_table else ""
    else:
        from engine.cli.context import StatusError
        from engine.cli.gotemplate import PARSE_ERROR, Template, TemplateError

        try:
            template = Template(body)
        except TemplateError as exc:
            # docker's formatter words list-format errors its own way, exit status 1.
            raise StatusError(f"failed to parse template: {str(exc).removeprefix(PARSE_ERROR)}", 1) from exc
        try:
            rendered = [template.render(row) for row in rows]
            header = template.render(header_row) if is_table else ""
        except TemplateError as exc:
            raise StatusError(f"failed to execute template: {exc}", 1) from exc
    if not is_table:
        for text in rendered:
            ctx.print(text)
        return
    lines = [header, *rendered] if body else rendered
    for line in tabwrite("\n".join(lines).split("\n")):
        ctx.print(line)


def _plain_renderer(body: str, known: set[str]) -> Callable[[Mapping[str, str]], str] | None:
    """Templates made only of `{{.Field}}` (every default table, most scripts) skip the template engine:
    its import alone costs more than the rest of `berth ps`.  Anything else returns None, and so does a
    field this list does not have (the template engine words that error as docker does)."""
    if "{{" in _PLAIN_FIELD.sub("", body) or any(m.group(1) not in known for m in _PLAIN_FIELD.finditer(body)):
        return None

    def render(row: Mapping[str, str]) -> str:
        # A missing key prints like Go's map lookup in text/template.
        return _PLAIN_FIELD.sub(lambda m: str(row.get(m.group(1), "<no value>")), body)

    return render


def _all_keys(rows: Sequence[Mapping[str, str]], headers: Mapping[str, str]) -> list[str]:
    keys = dict.fromkeys(headers)
    for row in rows[:1]:
        keys.update(dict.fromkeys(row))
    return list(keys)
