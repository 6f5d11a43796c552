"""Parser directives: ``# syntax=``, ``# escape=``, ``# check=`` at the very top of a Dockerfile.

Dockerfile reference, "Parser directives": they must come before anything
else (any comment, blank line or instruction ends the directive block, and a
later ``# escape=x`` is an ordinary comment); unknown directive names end the
block too; each may appear only once; keys are case-insensitive.  A ``#!``
shebang on the first line is skipped (BuildKit's DirectiveParser).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from engine.build.errors import DockerfileError

_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
ALLOWED = frozenset({"syntax", "escape", "check"})


@dataclass
class Directives:
    escape: str = "\\"
    syntax: str | None = None
    check: str | None = None  # recorded, not acted on: Berth has no build checks (lint) yet
    lines: dict[str, int] = field(default_factory=dict)


class DirectiveReader:
    """Fed every physical line in order; records directives until the block ends."""

    def __init__(self) -> None:
        self.result = Directives()
        self._done = False
        self._line = 0
        self._shebang = False

    def feed(self, text: str) -> None:
        self._line += 1
        if self._done:
            return
        if self._line == 1 and text.startswith("#!"):
            self._shebang = True
            return
        match = _DIRECTIVE.match(text)
        if match is None:
            self._done = True
            return
        key = match.group(1).lower()
        if key not in ALLOWED:
            self._done = True
            return
        if key in self.result.lines:
            raise DockerfileError(f"only one {key} parser directive can be used", self._line)
        value = match.group(2)
        self.result.lines[key] = self._line
        if key == "escape":
            if value not in ("\\", "`"):
                raise DockerfileError(f"invalid escape token '{value}' does not match ` or \\", self._line)
            self.result.escape = value
        elif key == "syntax":
            self.result.syntax = value
        else:
            self.result.check = value
