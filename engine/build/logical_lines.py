"""Physical lines → logical instruction lines (BuildKit frontend/dockerfile/parser/parser.go Parse).

* a UTF-8 BOM on the first line is dropped; lines end at ``\\n`` (a ``\\r`` before it is dropped);
* a line whose first non-blank character is ``#`` is a comment, also in the
  middle of a continuation (Docker drops it and keeps joining), so is a blank
  line inside a continuation;
* the escape character followed only by spaces/tabs at the end of a line
  joins the next line; the first line of an instruction is left-trimmed, the
  continuation lines are not;
* after a RUN/COPY/ADD line (also behind ONBUILD) in shell form that opens
  heredocs, the bodies follow line by line, endings kept, until each
  terminator, in the order they were opened.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from engine.build.directives import DirectiveReader, Directives
from engine.build.errors import DockerfileError, ExpansionError
from engine.build.heredoc import Heredoc, chomp, markers_in_line, opens_heredocs


@dataclass(frozen=True)
class LogicalLine:
    text: str  # continuations joined, comments dropped (Docker's Node.Original)
    start_line: int  # 1-based
    end_line: int
    heredocs: tuple[Heredoc, ...] = field(default=())


@dataclass(frozen=True)
class SplitDockerfile:
    directives: Directives
    lines: list[LogicalLine]
    warnings: list[str] = field(default_factory=list)


# The escape character, then only spaces/tabs, ends a line that continues (parser.go lineContinuationRegex).
_CONTINUATION = {escape: re.compile(re.escape(escape) + r"[ \t]*$") for escape in ("\\", "`")}


def _physical_lines(text: str) -> list[str]:
    """Lines with their endings kept (heredoc bodies keep them verbatim, like BuildKit's scanLines)."""
    return re.findall(r"[^\n]*\n|[^\n]+$", text.removeprefix("\ufeff"))


def _trim_newline(line: str) -> str:
    return line.rstrip("\r\n")


def _is_comment(line: str) -> bool:
    return line.lstrip().startswith("#")


def split_lines(text: str) -> SplitDockerfile:
    raw_lines = _physical_lines(text)
    physical = [_trim_newline(line) for line in raw_lines]
    reader = DirectiveReader()
    result: list[LogicalLine] = []
    warnings: list[str] = []
    index = 0
    while index < len(physical):
        first = physical[index].lstrip()
        reader.feed(first)
        index += 1
        start = index
        continuation = _CONTINUATION[reader.result.escape]
        if _is_comment(first):
            continue
        line, ended = _trim_continuation(first, continuation)
        if ended and not line:
            continue  # blank line
        empty_continuation = False
        while not ended and index < len(physical):
            raw = physical[index]
            reader.feed(raw)
            index += 1
            if _is_comment(raw):
                continue  # comments inside a continuation are dropped
            if not raw.strip():
                empty_continuation = True  # dropped too, but BuildKit warns: it will become an error
                continue
            more, ended = _trim_continuation(raw, continuation)
            line += more
        if empty_continuation:
            warnings.append(f"Empty continuation line found in instruction starting on line {start}: {line}")
        heredocs: list[Heredoc] = []
        if opens_heredocs(line):
            try:
                markers = markers_in_line(line)
            except ExpansionError as exc:
                raise DockerfileError(str(exc), start) from exc
            for marker in markers:
                body: list[str] = []
                terminated = False
                while index < len(physical):
                    raw = physical[index]
                    index += 1
                    candidate = raw.lstrip("\t") if marker.chomp else raw
                    if candidate == marker.name:
                        terminated = True
                        break
                    body.append(raw_lines[index - 1])
                if not terminated:
                    raise DockerfileError("unterminated heredoc", start)
                content = "".join(body)
                heredocs.append(
                    Heredoc(
                        name=marker.name,
                        content=chomp(content) if marker.chomp else content,
                        expand=marker.expand,
                        chomp=marker.chomp,
                        fd=marker.fd,
                    )
                )
        result.append(LogicalLine(line, start, index, tuple(heredocs)))
    return SplitDockerfile(reader.result, result, warnings)


def _trim_continuation(line: str, pattern: re.Pattern[str]) -> tuple[str, bool]:
    match = pattern.search(line)
    if match is None:
        return line, True
    return line[: match.start()], False
