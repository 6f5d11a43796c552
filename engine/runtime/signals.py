"""Signal numbers and ``signal()`` from the C module ``_signal``, for berth-runtime's run path.

CPython's ``signal`` module wraps the same numbers and handlers in enums (Signals, Handlers,
Sigmasks), and its ``import enum`` is ~1.3 ms of every berth-runtime call: nothing else on the run
path imports enum now.  These are the same ints; ``signal()`` takes and returns plain ints (or the
callable) rather than Handlers members.  Names ("TERM", "SIGKILL") are parsed with signal.Signals
where a name is parsed (lifecycle.parse_signal), off the run path.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # no typeshed stub: the values are annotated below

TYPE_CHECKING = False  # as typing's, without importing typing (~2 ms per berth-runtime call)
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType
    from typing import Any

    Handler = Callable[[int, FrameType | None], Any] | int | None

SIG_DFL: int = _signal.SIG_DFL
SIGHUP: int = _signal.SIGHUP
SIGINT: int = _signal.SIGINT
SIGKILL: int = _signal.SIGKILL
SIGPIPE: int = _signal.SIGPIPE
SIGQUIT: int = _signal.SIGQUIT
SIGTERM: int = _signal.SIGTERM
SIGUSR1: int = _signal.SIGUSR1
SIGUSR2: int = _signal.SIGUSR2
SIGWINCH: int = _signal.SIGWINCH
SIGXFSZ: int = _signal.SIGXFSZ


def signal(signum: int, handler: Handler) -> Handler:
    """signal.signal with ints: installs ``handler``, returns the previous one."""
    previous: Handler = _signal.signal(signum, handler)
    return previous
