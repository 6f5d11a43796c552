"""The runtime's loggers: `logging` is imported when a record is kept, not when a module loads.

`logging` brings traceback, linecache, tokenize, string, threading, weakref
and warnings: ~4 ms of every berth-runtime call, and a plain `run` keeps no
record at all (the CLI's stderr shows errors only, and without --log nothing
takes its info and debug lines).  So the runtime's modules log through
``getLogger(__name__)`` from here, which calls ``logging.getLogger(name)``
the first time a record is kept.  Only cli.py changes anything: with
``keep_from(level, configure)`` records below ``level`` are dropped before
`logging` is even imported, and ``configure`` (the CLI's handlers) runs once
before the first record that is kept.  Elsewhere — berthd, the fork server,
tests — every call goes to the real logger, with the caller's file and line.
"""

from __future__ import annotations

from .abcs import Callable

TYPE_CHECKING = False  # as typing's, without importing typing (~2 ms per berth-runtime call)
if TYPE_CHECKING:
    from typing import Any

DEBUG, INFO, WARNING, ERROR = 10, 20, 30, 40  # logging's levels, without importing it

_floor = 0
_configure: Callable[[], None] | None = None


def keep_from(level: int, configure: Callable[[], None] | None = None) -> None:
    """Drop records below ``level`` unseen; run ``configure`` before the first record kept.

    ``keep_from(0)`` is the default: everything goes to `logging`, which filters as configured.  A record kept
    in a container's child after pivot_root could not import `logging` any more: the child code logs nothing
    at ERROR, the only level the CLI keeps this way.
    """
    global _floor, _configure
    _floor, _configure = level, configure


class Logger:
    """The part of logging.Logger the runtime uses."""

    __slots__ = ("_logger", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._logger: Any = None

    def _real(self) -> Any:
        global _configure
        if _configure is not None:
            configure, _configure = _configure, None
            configure()
        if self._logger is None:
            import logging

            self._logger = logging.getLogger(self.name)
        return self._logger

    def isEnabledFor(self, level: int) -> bool:
        return level >= _floor and bool(self._real().isEnabledFor(level))

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if level >= _floor:
            kwargs.setdefault("stacklevel", 2)  # the caller's file and line, not ours
            self._real().log(level, msg, *args, **kwargs)

    def _at(self, level: int, msg: object, args: tuple[object, ...], kwargs: dict[str, Any]) -> None:
        if level >= _floor:
            kwargs.setdefault("stacklevel", 3)  # the caller of debug()/info()..., not us
            self._real().log(level, msg, *args, **kwargs)

    def debug(self, msg: object, *args: object, **kwargs: Any) -> None:
        self._at(DEBUG, msg, args, kwargs)

    def info(self, msg: object, *args: object, **kwargs: Any) -> None:
        self._at(INFO, msg, args, kwargs)

    def warning(self, msg: object, *args: object, **kwargs: Any) -> None:
        self._at(WARNING, msg, args, kwargs)

    def error(self, msg: object, *args: object, **kwargs: Any) -> None:
        self._at(ERROR, msg, args, kwargs)

    def exception(self, msg: object, *args: object, **kwargs: Any) -> None:
        kwargs.setdefault("exc_info", True)
        self._at(ERROR, msg, args, kwargs)


def getLogger(name: str) -> Logger:
    return Logger(name)
