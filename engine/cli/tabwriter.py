"""Go's text/tabwriter as docker's lists use it (minwidth 10, padding 3).

Its own module, importing nothing: the `berth ps` fast path (engine/cli/fast.py)
aligns its table with it without loading the formatter's json/re/typing.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

MIN_WIDTH = 10
PADDING = 3


def tabwrite(lines: Sequence[str], min_width: int = MIN_WIDTH, padding: int = PADDING) -> list[str]:
    """Go's text/tabwriter: every tab-terminated cell padded to its column's width; the last cell is not."""
    rows = [line.split("\t") for line in lines]
    width: dict[int, int] = {}
    for cells in rows:
        for i, cell in enumerate(cells[:-1]):
            width[i] = max(width.get(i, min_width), len(cell) + padding)
    return ["".join(cell.ljust(width[i]) for i, cell in enumerate(cells[:-1])) + cells[-1] for cells in rows]
