"""Here-documents in RUN, COPY and ADD (Dockerfile reference, "Here-Documents").

``<<EOF`` opens one; ``<<-EOF`` strips leading tabs from the body and from the
terminator line; any quoting of the name (``<<"EOF"``, ``<<'EOF'``, ``<<E"O"F``)
turns off expansion of the body; ``2<<EOF`` names a file descriptor.  Several
may open on one line and their bodies follow in order.  Detection mirrors
BuildKit's parser (heredocsFromLine / ParseHeredoc): the line is lexed keeping
quotes and escapes, then each word is matched against ``^(\\d*)<<(-?)([^<]*)$``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from engine.build.errors import ExpansionError
from engine.build.expand import LexOptions, process_words
from engine.build.words import NotStringArray, extract_flags, parse_json_array

_HEREDOC = re.compile(r"^(\d*)<<(-?)([^<]*)$")
_LEADING_TABS = re.compile(r"^\t+", re.MULTILINE)
# Instructions whose lines may open heredocs (parser.go Node.canContainHeredoc).
HEREDOC_INSTRUCTIONS = frozenset({"run", "copy", "add"})


@dataclass(frozen=True)
class Heredoc:
    name: str
    content: str  # the body, each line ending in "\n"; already tab-stripped when chomp
    expand: bool  # False when the name was quoted: the body is taken literally
    chomp: bool  # opened with <<-
    fd: int = 0


@dataclass(frozen=True)
class HeredocMarker:
    name: str
    expand: bool
    chomp: bool
    fd: int


def opens_heredocs(line: str) -> bool:
    """Whether ``line`` may open heredocs: RUN/COPY/ADD, also as an ONBUILD trigger, never in JSON form."""
    words = line.split(None, 1)
    if not words or "<<" not in line:
        return False
    if words[0].lower() == "onbuild" and len(words) == 2:
        words = words[1].split(None, 1)
    if words[0].lower() not in HEREDOC_INSTRUCTIONS:
        return False
    _, args = extract_flags(words[1] if len(words) == 2 else "")
    try:
        return parse_json_array(args) is None
    except NotStringArray:
        return False


def parse_marker(word: str) -> HeredocMarker | None:
    """The heredoc a single word opens (``<<EOF``, ``<<-"EOF"``, ``3<<EOF``), or None.

    ExpansionError when the name is malformed (an unterminated quote).
    """
    match = _HEREDOC.match(word)
    if match is None or not match.group(3):
        return None
    rest = match.group(3)
    cooked = process_words(rest, {}, LexOptions(skip_unset=True))
    if len(cooked) != 1:
        return None
    raw = process_words(rest, {}, LexOptions(skip_unset=True, raw_quotes=True))
    if len(raw) != 1:
        return None
    # A quote that the lexer removed means part of the name was quoted: no expansion.
    expand = cooked[0].count("'") + cooked[0].count('"') == raw[0].count("'") + raw[0].count('"')
    fd = int(match.group(1)) if match.group(1) else 0
    return HeredocMarker(cooked[0], expand, match.group(2) == "-", fd)


def try_parse_marker(word: str) -> HeredocMarker | None:
    """parse_marker, None for a malformed name (BuildKit MustParseHeredoc, used on COPY/ADD arguments)."""
    try:
        return parse_marker(word)
    except ExpansionError:
        return None


def markers_in_line(line: str) -> list[HeredocMarker]:
    """The heredocs a line opens, in order; ExpansionError for a malformed heredoc name."""
    try:
        words = process_words(line, {}, LexOptions(raw_quotes=True, raw_escapes=True, skip_unset=True))
    except ExpansionError:
        return []  # BuildKit ignores a lexing error of the whole line: it simply opens no heredoc
    return [marker for marker in map(parse_marker, words) if marker is not None]


def chomp(content: str) -> str:
    return _LEADING_TABS.sub("", content)
