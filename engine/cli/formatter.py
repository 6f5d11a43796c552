"""Lists the way docker prints them (`ps`, `images`, `history`): the `table` directive, headers, tabwriter.

Docker renders each row with a Go template over a context whose fields are
strings (cli/command/formatter): `table ...` adds a header row and aligns the
columns like Go's tabwriter(minwidth 10, padding 3); `json` prints each row as
one JSON object; anything else prints the template per row, unaligned.
engine/cli/listing.py renders the formats that need no template engine (the
fast path uses it too); this module adds the engine for the rest.
"""

from __future__ import annotations

from engine.cli.listing import TABLE, layout, list_rows, prepare, render_list
from engine.cli.tabwriter import MIN_WIDTH, PADDING, tabwrite

TYPE_CHECKING = False  # not typing's: the fast path (engine/cli/fast.py) renders lists with this module
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from engine.cli.context import CLIContext

__all__ = ["MIN_WIDTH", "PADDING", "TABLE", "tabwrite", "write_list"]

# How docker words a list's template errors (exit status 1): the prefix when the format does not parse,
# the prefix when it fails to execute, and the Go type its rows have (`can't evaluate field X in type ...`).
PS_ERRORS = ("failed to parse template", "failed to execute template", "*formatter.ContainerContext")
IMAGES_ERRORS = ("template parsing error", "template parsing error", "*formatter.imageContext")
HISTORY_ERRORS = ("template parsing error", "template parsing error", "*image.historyContext")
NETWORKS_ERRORS = ("template parsing error", "template parsing error", "*network.networkContext")
LIST_ERRORS = ("template parsing error", "template parsing error", "*formatter.Context")


def write_list(ctx: CLIContext, fmt: str, rows: Sequence[Mapping[str, str]], headers: Mapping[str, str],
               errors: tuple[str, str, str] = LIST_ERRORS) -> None:
    """Print `rows` (field -> text) per the docker format `fmt` (`table ...`, `json` or a template)."""
    for line in render(fmt, rows, headers, errors):
        ctx.print(line)


def render(fmt: str, rows: Sequence[Mapping[str, str]], headers: Mapping[str, str],
           errors: tuple[str, str, str] = LIST_ERRORS) -> list[str]:
    """The lines `fmt` prints for `rows`; a template error is a StatusError worded like docker's."""
    lines = render_list(fmt, rows, headers)
    return _render_with_engine(fmt, rows, headers, errors) if lines is None else lines


def _render_with_engine(fmt: str, rows: Sequence[Mapping[str, str]], headers: Mapping[str, str],
                        errors: tuple[str, str, str]) -> list[str]:
    from engine.cli.gotemplate import PARSE_ERROR, Template, TemplateError

    parse_prefix, execute_prefix, row_type = errors
    is_table, body = prepare(fmt)
    header_row, filled = list_rows(rows, headers, row_type)
    try:
        template = Template(body)
    except TemplateError as exc:
        from engine.cli.context import StatusError

        raise StatusError(f"{parse_prefix}: {str(exc).removeprefix(PARSE_ERROR)}", 1) from exc
    try:
        rendered = [template.render(row) for row in filled]
        header = template.render(header_row) if is_table else ""
    except TemplateError as exc:
        from engine.cli.context import StatusError

        raise StatusError(f"{execute_prefix}: {exc}", 1) from exc
    return layout(is_table, body, header, rendered)
