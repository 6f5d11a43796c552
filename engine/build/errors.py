"""The build front half's errors (Dockerfile parsing, expansion, stage resolution, .dockerignore).

The API layer maps every one of them to 400: the client's Dockerfile, build
arguments or ignore file are at fault, never the daemon.
"""

from __future__ import annotations


class BuildError(Exception):
    """Base of every error raised by engine.build."""


class DockerfileError(BuildError):
    """The Dockerfile cannot be parsed or resolved.

    When the failing instruction is known, the message reads like BuildKit's
    (frontend/dockerfile/instructions/parse.go, parseError):
    ``dockerfile parse error on line 3: unknown instruction: FOO``.
    """

    def __init__(self, message: str, line: int | None = None) -> None:
        self.reason = message
        self.line = line
        super().__init__(message if line is None else f"dockerfile parse error on line {line}: {message}")


class ExpansionError(BuildError):
    """A word could not be expanded (unterminated quote, bad substitution, ``${X:?}``)."""


class DockerignoreError(BuildError):
    """A .dockerignore pattern is malformed (moby/patternmatcher rejects it too)."""
