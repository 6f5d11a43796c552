"""Run a function in a forked child: the only way these tests change credentials or load filters.

The child reports a JSON result (or the text of the exception it raised) over
a pipe and leaves with os._exit, so it never returns into pytest; the pytest
process itself keeps its capabilities and stays unfiltered.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any


def run_in_child(fn: Callable[[], Any]) -> tuple[Any, int]:
    """Run fn in a forked child; return ({"ok": result} / {"error": text} / None if killed, wait status)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            try:
                result: Any = {"ok": fn()}
            except BaseException as exc:
                result = {"error": f"{type(exc).__name__}: {exc}"}
            with os.fdopen(w, "wb") as out:
                out.write(json.dumps(result).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as inp:
        data = inp.read()
    _, status = os.waitpid(pid, 0)
    return (json.loads(data) if data else None), status
