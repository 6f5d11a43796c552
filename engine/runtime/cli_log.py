"""berth-runtime's log format, runc's: ``time="..." level=error msg="..."``, or JSON lines with --log-format json.

Imported by cli.py only when a record is to be written (lazylog.py): most calls write none.
"""

from __future__ import annotations

import json
import logging
import sys


def _stamp(created: float) -> str:
    import datetime  # only when a line is logged: most calls log nothing

    return datetime.datetime.fromtimestamp(created, datetime.UTC).isoformat()


class _JSONFormatter(logging.Formatter):
    """runc's --log-format json: one object per line with level, msg, time."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = _stamp(record.created)
        return json.dumps({"level": record.levelname.lower(), "msg": record.getMessage(), "time": stamp})


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = _stamp(record.created)
        msg = record.getMessage().replace('"', '\\"')
        return f'time="{stamp}" level={record.levelname.lower()} msg="{msg}"'


def setup_logging(debug: bool, log_file: str | None, log_format: str) -> None:
    """Errors (everything with --debug) on stderr; info and up (debug with --debug) in ``log_file``."""
    formatter: logging.Formatter = _JSONFormatter() if log_format == "json" else _TextFormatter()
    handlers: list[logging.Handler] = []
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setFormatter(_TextFormatter())
    stderr.setLevel(logging.DEBUG if debug else logging.ERROR)
    handlers.append(stderr)
    if log_file:
        to_file = logging.FileHandler(log_file)
        to_file.setFormatter(formatter)
        handlers.append(to_file)
    log = logging.getLogger("engine.runtime")
    log.handlers = handlers
    log.setLevel(logging.DEBUG if debug else logging.INFO)
    log.propagate = False
