"""Variable substitution the way the Dockerfile builder does it (not a full shell).

Behaviour follows BuildKit's shell lexer (frontend/dockerfile/shell/lex.go) and
the Dockerfile reference, "Environment replacement":

* ``$VAR`` / ``${VAR}``; ``${VAR:-w}`` (unset or empty), ``${VAR-w}`` (unset),
  ``${VAR:+w}`` (set and non-empty), ``${VAR+w}`` (set), ``${VAR:?msg}`` and
  ``${VAR?msg}`` fail the build;
* single quotes keep everything literal, double quotes still expand ``$`` and
  let the escape character escape only ``"``, ``$`` and itself;
* outside quotes the escape character (``\\`` or the ``# escape=`` one) makes
  the next character literal; a trailing escape is dropped;
* ``${VAR#glob}``/``##`` drop the shortest/longest matching prefix,
  ``${VAR%glob}``/``%%`` the suffix, ``${VAR/glob/new}`` replaces the first
  (longest) match and ``${VAR//glob/new}`` every match (Dockerfile reference,
  "Environment replacement", newer syntax);
* quotes are removed from the result (``process_word``), unless ``raw_quotes``.

``process_word`` returns one string (ENV, LABEL, WORKDIR... values keep their
inner whitespace); ``process_words`` splits on unquoted whitespace, expanded
values included, like the shell's field splitting.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from engine.build.errors import ExpansionError

# lex.go isSpecialParam: `$@`, `$*`... expand to nothing in a Dockerfile (no positional params).
_SPECIAL_PARAMS = frozenset("@*#?-$!0")


@dataclass(frozen=True)
class LexOptions:
    escape: str = "\\"
    raw_quotes: bool = False  # keep quote characters in the result (heredoc detection)
    raw_escapes: bool = False  # keep escape characters in the result (heredoc detection)
    skip_unset: bool = False  # leave `$X` as written when X is unset (heredoc detection)
    skip_quotes: bool = False  # quotes are plain characters (COPY heredoc content, lex.go SkipProcessQuotes)


class _Words:
    """Field splitting: expanded `$` text splits on whitespace, quoted text never does."""

    def __init__(self) -> None:
        self.words: list[str] = []
        self.word = ""
        self.in_word = False

    def add_rune(self, ch: str) -> None:
        if ch.isspace():
            # An empty quoted word ("") never becomes a field of its own (lex.go wordsStruct).
            if self.in_word and self.word:
                self.words.append(self.word)
                self.word = ""
                self.in_word = False
            return
        self.add_raw(ch)

    def add_string(self, text: str) -> None:
        for ch in text:
            self.add_rune(ch)

    def add_raw(self, text: str) -> None:
        self.word += text
        self.in_word = True

    def result(self) -> list[str]:
        return [*self.words, self.word] if self.word else list(self.words)


class _Lexer:
    def __init__(self, source: str, env: Mapping[str, str], options: LexOptions) -> None:
        self.src = source
        self.pos = 0
        self.env = env
        self.opt = options
        self.raw_escapes = options.raw_escapes

    def peek(self) -> str:
        return self.src[self.pos] if self.pos < len(self.src) else ""

    def next(self) -> str:
        ch = self.peek()
        if ch:
            self.pos += 1
        return ch

    def run(self, stop: str = "") -> tuple[str, list[str]]:
        out: list[str] = []
        words = _Words()
        while self.peek():
            ch = self.peek()
            if stop and ch == stop:
                self.next()
                return "".join(out), words.result()
            if ch == "$":
                text = self.dollar()
                out.append(text)
                words.add_string(text)
            elif ch in "'\"" and not self.opt.skip_quotes:
                text = self.single_quote() if ch == "'" else self.double_quote()
                out.append(text)
                words.add_raw(text)
            else:
                ch = self.next()
                if ch == self.opt.escape:
                    if self.raw_escapes:
                        words.add_raw(ch)
                        out.append(ch)
                    ch = self.next()
                    if not ch:
                        break  # an escape at the very end is dropped
                    words.add_raw(ch)
                else:
                    words.add_rune(ch)
                out.append(ch)
        if stop:
            raise ExpansionError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(out), words.result()

    def single_quote(self) -> str:
        # sh(1): nothing is special between single quotes, not even the escape character.
        out: list[str] = []
        quote = self.next()
        if self.opt.raw_quotes:
            out.append(quote)
        while True:
            ch = self.next()
            if not ch:
                raise ExpansionError("unexpected end of statement while looking for matching single-quote")
            if ch == "'":
                if self.opt.raw_quotes:
                    out.append(ch)
                return "".join(out)
            out.append(ch)

    def double_quote(self) -> str:
        out: list[str] = []
        quote = self.next()
        if self.opt.raw_quotes:
            out.append(quote)
        while True:
            ch = self.peek()
            if not ch:
                raise ExpansionError("unexpected end of statement while looking for matching double-quote")
            if ch == '"':
                self.next()
                if self.opt.raw_quotes:
                    out.append(ch)
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
                continue
            ch = self.next()
            if ch == self.opt.escape:
                following = self.peek()
                if not following:
                    continue
                if following in ('"', "$", self.opt.escape):
                    if self.raw_escapes:
                        out.append(ch)
                    ch = self.next()
                # any other escaped character keeps its escape, as in sh: "\n" stays \n
            out.append(ch)

    def name(self) -> str:
        chars: list[str] = []
        while self.peek():
            ch = self.peek()
            if not chars and ch.isdigit():
                while self.peek().isdigit():
                    chars.append(self.next())
                return "".join(chars)
            if not chars and ch in _SPECIAL_PARAMS:
                return self.next()
            if not (ch.isalnum() or ch == "_"):
                break
            chars.append(self.next())
        return "".join(chars)

    def lookup(self, name: str) -> str | None:
        return self.env.get(name)

    def dollar(self) -> str:
        self.next()
        if self.peek() != "{":
            name = self.name()
            if not name:
                return "$"
            value = self.lookup(name)
            if value is None:
                return "$" + name if self.opt.skip_unset else ""
            return value
        self.next()
        if not self.peek():
            raise ExpansionError("syntax error: missing '}'")
        if self.peek() in "{}:":
            raise ExpansionError("syntax error: bad substitution")
        name = self.name()
        op = self.next()
        value = self.lookup(name)
        if op == "}":
            if value is None and self.opt.skip_unset:
                return "${" + name + "}"
            return value or ""
        if op == ":":
            modifier = self.next()
            word = self.operand()
            if modifier == "-":
                return value if value else word
            if modifier == "+":
                return word if value else ""
            if modifier == "?":
                if value is None:
                    raise ExpansionError(f"{name}: {word or 'is not allowed to be unset'}")
                if value == "":
                    raise ExpansionError(f"{name}: {word or 'is not allowed to be empty'}")
                return value
            raise ExpansionError(f"unsupported modifier ({modifier}) in substitution")
        if op in "-+?" and op:
            word = self.operand()
            if op == "-":
                return word if value is None else value
            if op == "+":
                return "" if value is None else word
            if value is None:
                if self.opt.skip_unset:
                    return "${" + name + "?" + word + "}"
                raise ExpansionError(f"{name}: {word or 'is not allowed to be unset'}")
            return value
        if op in ("#", "%"):
            longest = self.peek() == op
            if longest:
                self.next()
            pattern = _glob_regex(self.operand(stop="}", raw=True))
            return _trim(value or "", pattern, prefix=op == "#", longest=longest)
        if op == "/":
            every = self.peek() == "/"
            if every:
                self.next()
            pattern = _glob_regex(self.operand(stop="/", raw=True))
            replacement = self.operand(stop="}")
            return pattern.sub(lambda _: replacement, value or "", count=0 if every else 1)
        if not op:
            raise ExpansionError("syntax error: missing '}'")
        raise ExpansionError(f"unsupported modifier ({op}) in substitution")

    def operand(self, stop: str = "}", raw: bool = False) -> str:
        # The word after an operator may itself hold `$` expansions and quotes (lex.go processStopOn('}')).
        # A pattern keeps its escapes (raw) so that `\*` stays a literal star for the glob.
        saved = self.raw_escapes
        self.raw_escapes = raw or saved
        try:
            word, _ = self.run(stop=stop)
        except ExpansionError as exc:
            if not self.peek():
                raise ExpansionError("syntax error: missing '}'") from exc
            raise
        finally:
            self.raw_escapes = saved
        return word


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """A shell pattern (``*``, ``?``, ``[...]``, ``\\x``) as a regexp, for ``${v#p}``, ``${v%p}``, ``${v/p/r}``."""
    out: list[str] = []
    pos = 0
    while pos < len(pattern):
        ch = pattern[pos]
        pos += 1
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "\\" and pos < len(pattern):
            out.append(re.escape(pattern[pos]))
            pos += 1
        elif ch == "[":
            end = pattern.find("]", pos + 1)
            if end < 0:
                out.append(re.escape(ch))
                continue
            body = pattern[pos:end]
            if body.startswith("!"):
                body = "^" + body[1:]
            negate = body.startswith("^")
            body = body[1:] if negate else body
            # Ranges keep their "-"; everything else is literal (Python sets know "[", "&&", "~~", "||").
            literal = "".join(c if c == "-" and i and body[i - 1] != "-" else re.escape(c) for i, c in enumerate(body))
            out.append("[" + ("^" if negate else "") + literal + "]")
            pos = end + 1
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.DOTALL)


def _trim(value: str, pattern: re.Pattern[str], prefix: bool, longest: bool) -> str:
    """Remove the shortest/longest prefix (``#``/``##``) or suffix (``%``/``%%``) matching ``pattern``."""
    cuts = range(len(value), -1, -1) if longest else range(len(value) + 1)
    for cut in cuts:
        if prefix and pattern.fullmatch(value[:cut]):
            return value[cut:]
        if not prefix and pattern.fullmatch(value[len(value) - cut :]):
            return value[: len(value) - cut]
    return value


def _process(source: str, env: Mapping[str, str], options: LexOptions) -> tuple[str, list[str]]:
    try:
        return _Lexer(source, env, options).run()
    except ExpansionError as exc:
        raise ExpansionError(f"failed to process {json.dumps(source)}: {exc}") from exc


def process_word(source: str, env: Mapping[str, str], options: LexOptions = LexOptions()) -> str:
    """Expand ``source`` as one word: quotes removed, inner whitespace kept."""
    return _process(source, env, options)[0]


def process_words(source: str, env: Mapping[str, str], options: LexOptions = LexOptions()) -> list[str]:
    """Expand ``source`` and split it into fields on unquoted whitespace."""
    return _process(source, env, options)[1]
