"""Parsing of WWW-Authenticate challenges (RFC 7235 §4.1, Docker token auth spec)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_SPACE = re.compile(r"[ \t]*")


@dataclass(frozen=True)
class Challenge:
    """One challenge: the scheme in lower case and its parameters (names lower-cased)."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")

    @property
    def service(self) -> str:
        return self.params.get("service", "")

    @property
    def scopes(self) -> list[str]:
        scope = self.params.get("scope", "")
        return scope.split() if scope else []


def parse_challenges(header: str) -> list[Challenge]:
    """Parse a WWW-Authenticate value that may hold several challenges.

    `Bearer realm="https://auth.example/token",service="registry",scope="repository:a:pull"`
    gives one Challenge; a comma followed by a token that is not a `name=` starts the
    next challenge (the grammar's only way to tell them apart).
    """
    challenges: list[Challenge] = []
    pos = 0
    length = len(header)
    current: Challenge | None = None
    while pos < length:
        pos = _SPACE.match(header, pos).end()  # type: ignore[union-attr]
        if pos < length and header[pos] == ",":
            pos += 1
            continue
        token = _TOKEN.match(header, pos)
        if token is None:
            break  # malformed tail: keep what parsed so far
        after = _SPACE.match(header, token.end()).end()  # type: ignore[union-attr]
        if after < length and header[after] == "=" and current is not None and not _is_token68(header, after):
            name = token.group().lower()
            value, pos = _read_value(header, _SPACE.match(header, after + 1).end())  # type: ignore[union-attr]
            current.params[name] = value
            continue
        current = Challenge(token.group().lower(), {})
        challenges.append(current)
        pos = token.end()
    return challenges


def _is_token68(header: str, equals: int) -> bool:
    # "Basic abc==" style token68: '=' runs up to a comma or the end.
    rest = header[equals:].split(",", 1)[0].strip()
    return set(rest) == {"="}


def _read_value(header: str, pos: int) -> tuple[str, int]:
    if pos < len(header) and header[pos] == '"':
        chars: list[str] = []
        pos += 1
        while pos < len(header):
            char = header[pos]
            if char == "\\" and pos + 1 < len(header):
                chars.append(header[pos + 1])
                pos += 2
                continue
            if char == '"':
                return "".join(chars), pos + 1
            chars.append(char)
            pos += 1
        return "".join(chars), pos
    token = _TOKEN.match(header, pos)
    if token is None:
        return "", pos
    return token.group(), token.end()
