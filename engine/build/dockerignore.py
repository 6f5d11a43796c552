""".dockerignore: which files of the build context are sent to the builder.

Semantics are moby/patternmatcher's (ReadAll, New, MatchesOrParentMatches,
Pattern.compile), which the Docker CLI uses for the classic builder:

* a line *starting* with ``#`` is a comment (``  #x`` is a pattern); blank
  lines are skipped; surrounding whitespace is trimmed;
* patterns are cleaned like Go's filepath.Clean and a leading ``/`` dropped:
  ``/a/../b/`` is ``b``;
* ``!`` makes an exception; patterns apply in order and the last one that
  matches a path (or any of its parent directories) decides;
* ``*`` and ``?`` never cross ``/``, ``**`` crosses any number of directories,
  ``[...]`` is a character class, ``\\`` escapes the next character;
* a pattern that matches a directory excludes everything under it, but a
  later exception can re-include a file inside it, so the walk descends into
  an excluded directory whenever some exception could match below it, and
  then sends that directory too (BuildKit's fsutil walker).

The Dockerfile and .dockerignore are always sent (docker/cli
build.TrimBuildFilesFromExcludes appends ``!.dockerignore`` and
``!<dockerfile>`` when they are excluded); BuildKit gets the Dockerfile
through a separate channel, so the effect for the user is the same.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from engine.build.errors import DockerignoreError

# Regexp metacharacters that mean nothing special to filepath.Match (patternmatcher shouldEscape).
_REGEXP_ONLY_META = frozenset(".+()|{}$")


def go_clean(path: str) -> str:
    """Go's path.Clean (filepath.Clean on Unix): lexical, never touches the disk."""
    if not path:
        return "."
    rooted = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(part)
    cleaned = "/".join(parts)
    if rooted:
        return "/" + cleaned
    return cleaned or "."


def read_patterns(text: str) -> list[str]:
    """The patterns of a .dockerignore file, cleaned (patternmatcher/ignorefile ReadAll)."""
    patterns: list[str] = []
    for index, raw in enumerate(text.split("\n")):
        line = raw.removeprefix("\ufeff") if index == 0 else raw
        if line.startswith("#"):
            continue
        pattern = line.strip()
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = pattern[1:].strip()
        if pattern:
            pattern = go_clean(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
        patterns.append("!" + pattern if invert else pattern)
    return patterns


class _MatchType(Enum):
    EXACT = "exact"
    PREFIX = "prefix"
    SUFFIX = "suffix"
    REGEXP = "regexp"


@dataclass(frozen=True)
class Pattern:
    text: str  # cleaned, without the "!"
    exclusion: bool
    match_type: _MatchType
    regexp: re.Pattern[str] | None

    @property
    def parts(self) -> list[str]:
        return self.text.split("/")

    def matches(self, path: str) -> bool:
        if self.match_type is _MatchType.EXACT:
            return path == self.text
        if self.match_type is _MatchType.PREFIX:
            return path.startswith(self.text[:-2])  # "foo**": everything starting with foo
        if self.match_type is _MatchType.SUFFIX:
            suffix = self.text[2:]  # "**foo" / "**/foo"
            if path.endswith(suffix):
                return True
            return suffix.startswith("/") and path == suffix[1:]
        assert self.regexp is not None
        return self.regexp.match(path) is not None


def compile_pattern(raw: str) -> Pattern:
    """One .dockerignore pattern → a matcher (patternmatcher New + Pattern.compile)."""
    text = go_clean(raw.strip())
    exclusion = text.startswith("!")
    if exclusion:
        if text == "!":
            raise DockerignoreError('illegal exclusion pattern: "!"')
        text = text[1:]
    if text.endswith("\\") and not text.endswith("\\\\"):
        # filepath.Match (New's syntax check) rejects a pattern ending in a lone escape.
        raise DockerignoreError(f"syntax error in pattern {text!r}: trailing backslash")
    regex, match_type = _translate(text)
    if match_type is not _MatchType.REGEXP:
        return Pattern(text, exclusion, match_type, None)
    try:
        compiled = re.compile(regex + "$")
    except re.error as exc:
        raise DockerignoreError(f"syntax error in pattern {text!r}: {exc}") from exc
    return Pattern(text, exclusion, match_type, compiled)


def _translate(pattern: str) -> tuple[str, _MatchType]:
    out = ["^"]
    match_type = _MatchType.EXACT
    pos = 0
    n = len(pattern)
    index = 0
    in_class = False
    while pos < n:
        ch = pattern[pos]
        pos += 1
        if ch == "*":
            if pos < n and pattern[pos] == "*":
                pos += 1
                if pos < n and pattern[pos] == "/":
                    pos += 1  # "**/" is "**"
                if pos >= n:
                    # Trailing "**" accepts everything, as in .gitignore.
                    if match_type is _MatchType.EXACT:
                        match_type = _MatchType.PREFIX
                    else:
                        out.append(".*")
                        match_type = _MatchType.REGEXP
                else:
                    out.append("(.*/)?")
                    match_type = _MatchType.REGEXP
                if index == 0:
                    match_type = _MatchType.SUFFIX
            else:
                out.append("[^/]*")
                match_type = _MatchType.REGEXP
        elif ch == "?":
            out.append("[^/]")
            match_type = _MatchType.REGEXP
        elif ch in _REGEXP_ONLY_META:
            out.append("\\" + ch)
        elif ch == "\\":
            if pos < n:
                # Passed to the regexp as written, like patternmatcher: `\*` is a literal star, `\q` an error.
                out.append("\\" + pattern[pos])
                pos += 1
                match_type = _MatchType.REGEXP
            else:
                out.append("\\\\")
        elif ch == "[" and not in_class:
            out.append(ch)
            in_class = True
            match_type = _MatchType.REGEXP
        elif ch == "]":
            out.append(ch)
            in_class = False
            match_type = _MatchType.REGEXP
        elif in_class and (ch in "[&~|" or (ch == "-" and out[-1] == "-")):
            # Literal inside a Go class; Python would read "[", "&&", "~~", "||", "--" as set operations.
            out.append("\\" + ch)
        else:
            out.append(ch)
        index += 1
    return "".join(out), match_type


class ContextFilter:
    """Decides, for paths relative to the context root, whether they are sent to the builder."""

    def __init__(self, patterns: Iterable[str], dockerfile: str | None = "Dockerfile") -> None:
        compiled = [compile_pattern(p) for p in patterns if p.strip()]
        self.patterns = compiled
        # docker/cli TrimBuildFilesFromExcludes: the ignore file and the Dockerfile always go.
        extra = [".dockerignore"]
        if dockerfile is not None:
            extra.append(go_clean(dockerfile).lstrip("/"))
        for keep in extra:
            if self._matches(keep):
                self.patterns.append(compile_pattern("!" + keep))

    @classmethod
    def from_file_text(cls, text: str, dockerfile: str | None = "Dockerfile") -> ContextFilter:
        return cls(read_patterns(text), dockerfile)

    @property
    def has_exceptions(self) -> bool:
        return any(p.exclusion for p in self.patterns)

    def excluded(self, path: str) -> bool:
        """True when ``path`` (relative, "/"-separated) is left out of the context."""
        cleaned = go_clean(path).lstrip("/")
        if cleaned in ("", "."):
            return False  # the context root itself is never excluded (patternmatcher MatchesOrParentMatches)
        return self._matches(cleaned)

    def _matches(self, path: str) -> bool:
        # patternmatcher MatchesOrParentMatches: a pattern matching a parent directory matches the path.
        matched = False
        parent = os.path.dirname(path) or "."
        parent_parts = parent.split("/")
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue  # cannot change the verdict
            hit = pattern.matches(path)
            if not hit and parent != ".":
                hit = any(pattern.matches("/".join(parent_parts[: i + 1])) for i in range(len(parent_parts)))
            if hit:
                matched = not pattern.exclusion
        return matched

    def _exception_may_match_below(self, directory: str) -> bool:
        """Could some exception re-include a path under the excluded ``directory``?

        Erring towards True only costs a longer walk (each file is still
        judged by ``excluded``); False must be certain.
        """
        dir_parts = directory.split("/")
        for pattern in self.patterns:
            if not pattern.exclusion:
                continue
            if _could_match_under(pattern.parts, dir_parts):
                return True
        return False

    def walk(self, root: str | os.PathLike[str]) -> list[str]:
        """Relative paths (files, directories, symlinks) under ``root`` that are sent, sorted.

        Symlinks are listed, never followed.  An excluded directory is listed
        only when something inside it is re-included: BuildKit's context walker
        (tonistiigi/fsutil walker.go) then sends the parent directories too, so
        they keep their own mode and owner.
        """
        base = os.fspath(root)
        included: set[str] = set()
        pending = [""]
        while pending:
            current = pending.pop()
            with os.scandir(os.path.join(base, current) if current else base) as entries:
                for entry in entries:
                    rel = f"{current}/{entry.name}" if current else entry.name
                    is_dir = entry.is_dir(follow_symlinks=False)
                    if not self._matches(rel):
                        included.add(rel)
                        included.update(_ancestors(rel))
                        if is_dir:
                            pending.append(rel)
                    elif is_dir and self._exception_may_match_below(rel):
                        pending.append(rel)
        return sorted(included)


def _ancestors(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def _component_regex(part: str) -> re.Pattern[str] | None:
    regex, _ = _translate(part)
    try:
        return re.compile(regex + "$")
    except re.error:
        return None


def _could_match_under(pattern_parts: list[str], dir_parts: list[str]) -> bool:
    for index, name in enumerate(dir_parts):
        if index >= len(pattern_parts):
            return True  # the exception matches an ancestor of what lies below: it may re-include it
        part = pattern_parts[index]
        if "**" in part or "[" in part:
            return True  # "**" spans directories; a class like [^x] may even match "/"
        component = _component_regex(part)
        if component is None or component.match(name) is None:
            return False
    return True
