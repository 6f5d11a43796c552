"""An argparse help formatter that does not import shutil.

argparse builds a formatter on every add_argument (to check the help string);
the stock one imports shutil (+ bz2, lzma, fnmatch: ~1.7 ms) only to learn the
terminal width.  `berth` and `berth-runtime` pay their start-up on every call,
so both use this one.
"""

from __future__ import annotations

import argparse
import os
import sys


def terminal_columns() -> int:
    """shutil.get_terminal_size().columns: $COLUMNS, else stdout's terminal, else 80."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


class QuickHelpFormatter(argparse.HelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=terminal_columns() - 2)


class QuickArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser (and sub-command parsers) formatting help with QuickHelpFormatter."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", QuickHelpFormatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
