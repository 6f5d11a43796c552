"""How an instruction's argument text is cut into words (BuildKit parser/line_parsers.go).

Each instruction picks one of these splitters: it is the *parser* that keeps
quotes (they are removed later, at expansion time, for the instructions the
builder expands), so `ENV a="x y"` yields the word ``a="x y"``.
"""

from __future__ import annotations

import json
import re

_WHITESPACE = re.compile(r"[\t\v\f\r ]+")
_JSON = json.JSONDecoder()

NOT_STRING_ARRAY = "when using JSON array syntax, arrays must be comprised of strings only"


class NotStringArray(ValueError):
    """A JSON array holds a non-string: Docker rejects it instead of falling back to shell form."""


def split_whitespace(rest: str) -> list[str]:
    """FROM, EXPOSE and the shell form of COPY/ADD/VOLUME: plain whitespace, quotes are ordinary characters."""
    if not rest:
        return []
    return [word for word in _WHITESPACE.split(rest) if word]


def parse_words(rest: str, escape: str) -> list[str]:
    """ENV/LABEL/ARG words: whitespace-separated, quotes group (and are kept), the escape char is kept too."""
    words: list[str] = []
    word: list[str] = []
    blank_ok = False
    quote = ""
    in_word = False
    pos = 0
    n = len(rest)
    while pos < n:
        ch = rest[pos]
        if quote:
            if ch == quote:
                quote = ""
            elif ch == escape and quote != "'":
                # Inside single quotes nothing can be escaped, as in sh.
                if pos + 1 == n:
                    pos += 1
                    continue
                word.append(ch)
                pos += 1
                ch = rest[pos]
            word.append(ch)
            pos += 1
            continue
        if ch.isspace():
            if in_word and (blank_ok or word):
                words.append("".join(word))
            word, blank_ok, in_word = [], False, False
            pos += 1
            continue
        in_word = True
        if ch in "'\"":
            quote = ch
            blank_ok = True
        elif ch == escape:
            if pos + 1 == n:
                pos += 1
                continue  # a trailing escape is dropped
            word.append(ch)
            pos += 1
            ch = rest[pos]
        word.append(ch)
        pos += 1
    if in_word and (blank_ok or word):
        words.append("".join(word))
    return words


def extract_flags(line: str) -> tuple[list[str], str]:
    """Split leading ``--name=value`` words off an instruction's arguments.

    Flags end at the first word not starting with ``--`` or at a bare ``--``;
    quotes inside a flag are removed and ``\\`` escapes (always backslash,
    whatever ``# escape=`` says: parser.go extractBuilderFlags).
    """
    flags: list[str] = []
    word: list[str] = []
    blank_ok = False
    quote = ""
    pos = 0
    n = len(line)
    in_word = False
    while pos < n:
        ch = line[pos]
        if not in_word:
            if ch.isspace():
                pos += 1
                continue
            if not line.startswith("--", pos):
                return flags, line[pos:]
            in_word = True
        if quote:
            if ch == quote:
                quote = ""
            elif ch == "\\" and pos + 1 < n:
                pos += 1
                word.append(line[pos])
            elif ch != "\\":
                word.append(ch)
            pos += 1
            continue
        if ch.isspace():
            text = "".join(word)
            if text == "--":
                return flags, line[pos:]
            if blank_ok or text:
                flags.append(text)
            word, blank_ok, in_word = [], False, False
            pos += 1
            continue
        if ch in "'\"":
            quote = ch
            blank_ok = True
        elif ch == "\\":
            if pos + 1 < n:
                pos += 1
                word.append(line[pos])
        else:
            word.append(ch)
        pos += 1
    text = "".join(word)
    if in_word and text != "--" and (blank_ok or text):
        flags.append(text)
    return flags, ""


def parse_json_array(rest: str) -> list[str] | None:
    """The exec (JSON) form, or None when ``rest`` is not a JSON array (Docker then uses the shell form).

    Like Go's json.Decoder in line_parsers.go parseJSON, only the first JSON
    value is read: text after the closing bracket is ignored.
    """
    text = rest.lstrip()
    if not text.startswith("["):
        return None
    try:
        value, _ = _JSON.raw_decode(text)
    except ValueError:
        return None
    if not isinstance(value, list):
        return None
    if not all(isinstance(item, str) for item in value):
        raise NotStringArray(NOT_STRING_ARRAY)
    return value
