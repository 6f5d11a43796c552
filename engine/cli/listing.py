"""What list commands (`ps`, `images`, `volume ls`...) share, with no heavy import: the fast path uses it too.

`--filter` flags, and rendering a docker list format that needs no template
engine: `json`, and templates made only of `{{.Field}}` (every default table,
most scripts), with or without `table`.  engine/cli/formatter.py runs the
template engine for the rest.
"""

from __future__ import annotations

from engine.cli.rows import LabeledRow

TYPE_CHECKING = False  # not typing's (see engine/cli/rows.py)
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

TABLE = "table"
NO_VALUE = "<no value>"


def parse_filter_flags(flags: Sequence[str]) -> dict[str, list[str]]:
    """`-f key=value ...` -> the API's filters map (keys lower-cased, like docker's filters.ParseFlag)."""
    filters: dict[str, list[str]] = {}
    for flag in flags:
        key, eq, value = flag.partition("=")
        if not eq or not key:
            from engine.cli.context import UsageError

            raise UsageError(f"bad format of filter (expected name=value): {flag}")
        filters.setdefault(key.strip().lower(), []).append(value)
    return filters


def prepare(fmt: str) -> tuple[bool, str]:
    """cli/command/formatter.Context.preFormat: drop `table`, trim spaces, unescape \\t and \\n."""
    is_table = fmt.startswith(TABLE)
    body = fmt[len(TABLE):] if is_table else fmt
    return is_table, body.strip(" ").replace("\\t", "\t").replace("\\n", "\n")


def list_rows(rows: Sequence[Mapping[str, str]], headers: Mapping[str, str],
              row_type: str | None = None) -> tuple[LabeledRow, list[LabeledRow]]:
    """The header row and the rows as templates see them: fields a row lacks print `<no value>`.

    The header row is a row too, so `{{.Label "x"}}` in a table header renders (empty) instead of failing.
    `row_type` is the Go type docker's errors name for them.
    """
    keys = dict.fromkeys(headers)
    for row in rows[:1]:
        keys.update(dict.fromkeys(row))
    header_row = LabeledRow({key: headers.get(key, key.upper()) for key in keys}, None)
    filled = [LabeledRow(dict(dict.fromkeys(header_row, NO_VALUE), **row), getattr(row, "labels", None))
              for row in rows]
    if row_type:
        for row in (header_row, *filled):
            row.template_type = row_type
    return header_row, filled


def _field_at(body: str, pos: int) -> tuple[str, int] | None:
    r"""The regex `\{\{\s*\.(\w+)\s*\}\}` matched at `pos` by hand (re costs ~5 ms to import): (name, end)."""
    if not body.startswith("{{", pos):
        return None
    pos += 2
    while pos < len(body) and body[pos].isspace():
        pos += 1
    if not body.startswith(".", pos):
        return None
    start = pos = pos + 1
    while pos < len(body) and (body[pos].isalnum() or body[pos] == "_"):
        pos += 1
    name = body[start:pos]
    while pos < len(body) and body[pos].isspace():
        pos += 1
    return (name, pos + 2) if name and body.startswith("}}", pos) else None


def plain_template(body: str, known: set[str] | Mapping[str, str]) -> list[tuple[str, str]] | None:
    """A template made only of text and `{{.Field}}` as (text, field) pieces; None when it needs the
    template engine: other actions, or a field this list does not have (the engine words that error)."""
    pieces: list[tuple[str, str]] = []
    text_start = pos = 0
    while True:
        pos = body.find("{{", pos)
        if pos < 0:
            break
        found = _field_at(body, pos)
        if found is None:
            return None
        name, end = found
        if name not in known:
            return None
        pieces.append((body[text_start:pos], name))
        text_start = pos = end
    pieces.append((body[text_start:], ""))
    return pieces


def render_plain(pieces: list[tuple[str, str]], row: Mapping[str, str]) -> str:
    # A missing key prints like Go's map lookup in text/template.
    return "".join(text + (str(row.get(name, NO_VALUE)) if name else "") for text, name in pieces)


def json_row(row: Mapping[str, str]) -> str:
    """`--format json`: one compact object per row, keys sorted (docker marshals its context's fields)."""
    from engine.cli.gojson import dumps

    return dumps(dict(sorted(row.items())))


def layout(is_table: bool, body: str, header: str, rendered: list[str]) -> list[str]:
    """The printed lines: per row, or (table) a header and columns aligned like Go's tabwriter."""
    if not is_table:
        return rendered
    from engine.cli.tabwriter import tabwrite

    lines = [header, *rendered] if body else rendered
    return tabwrite("\n".join(lines).split("\n"))


def render_list(fmt: str, rows: Sequence[Mapping[str, str]], headers: Mapping[str, str]) -> list[str] | None:
    """The lines `fmt` prints for `rows`, or None when it needs the template engine."""
    if fmt == "json":
        return [json_row(row) for row in rows]
    is_table, body = prepare(fmt)
    header_row, filled = list_rows(rows, headers)
    pieces = plain_template(body, header_row)
    if pieces is None:
        return None
    return layout(is_table, body, render_plain(pieces, header_row) if is_table else "",
                  [render_plain(pieces, row) for row in filled])
