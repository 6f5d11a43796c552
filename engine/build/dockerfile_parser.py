"""Dockerfile text → a list of instruction dataclasses (engine.build.instructions).

The shape follows BuildKit's frontend/dockerfile: parser.go cuts logical
lines (engine.build.logical_lines), line_parsers.go picks, per instruction,
how the arguments are split into words (engine.build.words), and
instructions/parse.go checks arity and flags.  Error texts are Docker's so
users recognise them; each carries the instruction's start line.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypedDict

from engine.build import instructions as ins
from engine.build.directives import Directives
from engine.build.errors import DockerfileError
from engine.build.flags import Flags, Kind, parse_flags
from engine.build.heredoc import Heredoc, try_parse_marker
from engine.build.logical_lines import LogicalLine, split_lines
from engine.build.run_mounts import parse_mount
from engine.build.words import NotStringArray, extract_flags, parse_json_array, parse_words, split_whitespace
from engine.go_duration import parse_duration

_WHITESPACE = re.compile(r"[\t\v\f\r ]+")
# A stage name (`FROM x AS name`): instructions/parse.go validStageName.
_STAGE_NAME = re.compile(r"^[a-z][a-z0-9\-_.]*$")
_ONBUILD_PREFIX = re.compile(r"^\s*ONBUILD\s*", re.IGNORECASE)
_NETWORK_MODES = frozenset({"default", "none", "host"})
_SECURITY_MODES = frozenset({"sandbox", "insecure"})
_MINIMUM_HEALTH_DURATION_NS = 1_000_000  # container.MinimumDuration: 1ms

_FLAG_SPECS: dict[str, dict[str, Kind]] = {
    "from": {"platform": Kind.STRING},
    "run": {"mount": Kind.STRINGS, "network": Kind.STRING, "security": Kind.STRING},
    "copy": {
        "from": Kind.STRING,
        "chown": Kind.STRING,
        "chmod": Kind.STRING,
        "link": Kind.BOOL,
        "parents": Kind.BOOL,
        "exclude": Kind.STRINGS,
    },
    "add": {
        "chown": Kind.STRING,
        "chmod": Kind.STRING,
        "checksum": Kind.STRING,
        "keep-git-dir": Kind.BOOL,
        "link": Kind.BOOL,
        "exclude": Kind.STRINGS,
        "unpack": Kind.BOOL,
    },
    "healthcheck": {
        "interval": Kind.STRING,
        "timeout": Kind.STRING,
        "start-period": Kind.STRING,
        "start-interval": Kind.STRING,
        "retries": Kind.STRING,
    },
}


@dataclass(frozen=True)
class Dockerfile:
    directives: Directives
    instructions: tuple[ins.Instruction, ...]
    warnings: tuple[str, ...] = ()  # for the build output (empty continuation lines)


class _Base(TypedDict):
    keyword: str
    line: int
    end_line: int
    original: str


@dataclass(frozen=True)
class _Line:
    """One logical line cut into keyword, flags and argument text."""

    keyword: str  # lower case
    written: str  # as written, for messages
    flag_words: list[str]
    args: str
    source: LogicalLine
    escape: str

    @property
    def number(self) -> int:
        return self.source.start_line

    def base(self) -> _Base:
        return {
            "keyword": self.keyword.upper(),
            "line": self.source.start_line,
            "end_line": self.source.end_line,
            "original": self.source.text,
        }

    def fail(self, message: str) -> DockerfileError:
        return DockerfileError(message, self.number)

    def flags(self) -> Flags:
        return parse_flags(self.flag_words, _FLAG_SPECS.get(self.keyword, {}), self.number)


def parse(text: str) -> Dockerfile:
    """Parse a whole Dockerfile; DockerfileError names the line of the first problem."""
    if not text:
        raise DockerfileError("the Dockerfile cannot be empty")  # dockerfile2llb, before parsing
    split = split_lines(text)
    if not split.lines:
        raise DockerfileError("file with no instructions")  # parser.go: only comments and blank lines
    parsed = tuple(parse_line(line, split.directives.escape) for line in split.lines)
    return Dockerfile(split.directives, parsed, tuple(split.warnings))


def parse_line(line: LogicalLine, escape: str = "\\") -> ins.Instruction:
    """One logical line → its instruction (``escape`` matters to ENV/LABEL/ARG word splitting)."""
    parts = _WHITESPACE.split(line.text.strip(), maxsplit=1)
    written = parts[0]
    flag_words: list[str] = []
    args = ""
    if len(parts) == 2:
        flag_words, args = extract_flags(parts[1])
    cut = _Line(written.lower(), written, flag_words, args.strip(), line, escape)
    handler = _HANDLERS.get(cut.keyword)
    if handler is None:
        # The keyword as written (instructions/parse.go UnknownInstructionError).
        raise DockerfileError(f"unknown instruction: {written}", line.start_line)
    return handler(cut)


# ---------------------------------------------------------------- word splitters


def _maybe_json(cut: _Line) -> tuple[list[str], bool]:
    """RUN/CMD/ENTRYPOINT/SHELL: exec form when the text is a JSON string array, else one shell string."""
    if not cut.args:
        return [], False
    try:
        words = parse_json_array(cut.args)
    except NotStringArray as exc:
        raise cut.fail(str(exc)) from exc
    if words is not None:
        return words, True
    return [cut.args], False


def _maybe_json_list(cut: _Line) -> tuple[list[str], bool]:
    """COPY/ADD/VOLUME: a JSON array, else whitespace-separated words (quotes are not special)."""
    try:
        words = parse_json_array(cut.args)
    except NotStringArray as exc:
        raise cut.fail(str(exc)) from exc
    if words is not None:
        return words, True
    return split_whitespace(cut.args), False


def _name_values(cut: _Line) -> list[ins.KeyValue]:
    """ENV/LABEL: ``k=v k2=v2`` or the legacy ``k value with spaces`` (decided by the first word)."""
    name = cut.keyword.upper()
    words = parse_words(cut.args, cut.escape)
    if not words:
        raise cut.fail(f"{name} requires at least one argument")
    if "=" not in words[0]:
        parts = _WHITESPACE.split(cut.args, maxsplit=1)
        if len(parts) < 2:
            raise cut.fail(f"{name} must have two arguments")
        pairs = [ins.KeyValue(parts[0], parts[1])]
    else:
        pairs = []
        for word in words:
            if "=" not in word:
                raise cut.fail(f'Syntax error - can\'t find = in "{word}". Must be of the form: name=value')
            key, _, value = word.partition("=")
            pairs.append(ins.KeyValue(key, value))
    for pair in pairs:
        if not pair.key:
            raise cut.fail(f"{name} names can not be blank")
    return pairs


def _single(cut: _Line) -> str:
    if not cut.args:
        raise cut.fail(f"{cut.keyword.upper()} requires exactly one argument")
    return cut.args


# ---------------------------------------------------------------- instructions


def _from(cut: _Line) -> ins.Instruction:
    flags = cut.flags()
    args = split_whitespace(cut.args)
    stage: str | None = None
    if len(args) == 3 and args[1].lower() == "as":
        stage = args[2].lower()
        if not _STAGE_NAME.match(stage):
            raise cut.fail(
                f'invalid name for build stage: "{args[2]}", name can\'t start with a number or contain symbols'
            )
    elif len(args) != 1:
        raise cut.fail("FROM requires either one or three arguments")
    return ins.From(**cut.base(), base=args[0], stage_name=stage, platform=flags.one("platform"))


def _run(cut: _Line) -> ins.Instruction:
    flags = cut.flags()
    command, json_form = _maybe_json(cut)
    network = flags.one("network")
    if network is not None and network not in _NETWORK_MODES:
        raise cut.fail(f'network mode "{network}" not supported')
    security = flags.one("security")
    if security is not None and security not in _SECURITY_MODES:
        raise cut.fail(f'security mode "{security}" not supported')
    mounts = tuple(parse_mount(value, cut.number) for value in flags.many("mount"))
    return ins.Run(
        **cut.base(),
        command=tuple(command),
        json_form=json_form,
        heredocs=cut.source.heredocs,
        mounts=mounts,
        network=network,
        security=security,
    )


def _cmd(cut: _Line) -> ins.Instruction:
    cut.flags()
    command, json_form = _maybe_json(cut)
    return ins.Cmd(**cut.base(), command=tuple(command), json_form=json_form)


def _entrypoint(cut: _Line) -> ins.Instruction:
    cut.flags()
    command, json_form = _maybe_json(cut)
    return ins.Entrypoint(**cut.base(), command=tuple(command), json_form=json_form)


def _shell(cut: _Line) -> ins.Instruction:
    cut.flags()
    command, json_form = _maybe_json(cut)
    if not command:
        raise cut.fail("SHELL requires at least one argument")
    if not json_form:
        raise cut.fail("SHELL requires the arguments to be in JSON form")
    return ins.Shell(**cut.base(), shell=tuple(command))


def _sources_and_dest(cut: _Line) -> tuple[list[str], list[ins.SourceContent], str, bool]:
    name = cut.keyword.upper()
    words, json_form = _maybe_json_list(cut)
    if len(words) < 2:
        raise cut.fail(
            f"{name} requires at least two arguments, but only one was provided. Destination could not be determined"
        )
    *sources, dest = words
    if try_parse_marker(dest) is not None:
        raise cut.fail(f"{name} cannot accept a heredoc as a destination")
    bodies: dict[str, Heredoc] = {doc.name: doc for doc in cut.source.heredocs}
    paths: list[str] = []
    contents: list[ins.SourceContent] = []
    for source in sources:
        marker = try_parse_marker(source)
        if marker is None:
            paths.append(source)
            continue
        body = bodies.get(marker.name)
        contents.append(ins.SourceContent(marker.name, body.content if body else "", marker.expand))
    return paths, contents, dest, json_form


def _copy(cut: _Line) -> ins.Instruction:
    flags = cut.flags()
    sources, contents, dest, json_form = _sources_and_dest(cut)
    return ins.Copy(
        **cut.base(),
        sources=tuple(sources),
        contents=tuple(contents),
        dest=dest,
        json_form=json_form,
        chown=flags.one("chown"),
        chmod=flags.one("chmod"),
        link=flags.flag("link"),
        excludes=flags.many("exclude"),
        from_=flags.one("from"),
        parents=flags.flag("parents"),
    )


def _add(cut: _Line) -> ins.Instruction:
    flags = cut.flags()
    sources, contents, dest, json_form = _sources_and_dest(cut)
    return ins.Add(
        **cut.base(),
        sources=tuple(sources),
        contents=tuple(contents),
        dest=dest,
        json_form=json_form,
        chown=flags.one("chown"),
        chmod=flags.one("chmod"),
        link=flags.flag("link"),
        excludes=flags.many("exclude"),
        checksum=flags.one("checksum"),
        keep_git_dir=flags.flag("keep-git-dir"),
        unpack=flags.bools.get("unpack"),
    )


def _env(cut: _Line) -> ins.Instruction:
    cut.flags()
    return ins.Env(**cut.base(), pairs=tuple(_name_values(cut)))


def _label(cut: _Line) -> ins.Instruction:
    cut.flags()
    return ins.Label(**cut.base(), pairs=tuple(_name_values(cut)))


def _arg(cut: _Line) -> ins.Instruction:
    cut.flags()
    words = parse_words(cut.args, cut.escape)
    if not words:
        raise cut.fail("ARG requires at least one argument")
    decls = []
    for word in words:
        # Unlike ENV, ARG splits name and value itself: `ARG NAME` without a value is allowed.
        name, has_value, value = word.partition("=")
        if not name:
            raise cut.fail("ARG names can not be blank")
        decls.append(ins.ArgDecl(name, value if has_value else None))
    return ins.Arg(**cut.base(), args=tuple(decls))


def _workdir(cut: _Line) -> ins.Instruction:
    cut.flags()
    return ins.Workdir(**cut.base(), path=_single(cut))


def _user(cut: _Line) -> ins.Instruction:
    cut.flags()
    return ins.User(**cut.base(), user=_single(cut))


def _stopsignal(cut: _Line) -> ins.Instruction:
    cut.flags()
    return ins.StopSignal(**cut.base(), signal=_single(cut))


def _maintainer(cut: _Line) -> ins.Instruction:
    cut.flags()
    return ins.Maintainer(**cut.base(), name=_single(cut))


def _expose(cut: _Line) -> ins.Instruction:
    cut.flags()
    ports = split_whitespace(cut.args)
    if not ports:
        raise cut.fail("EXPOSE requires at least one argument")
    # BuildKit sorts the ports (instructions/parse.go parseExpose); the image config is a set anyway.
    return ins.Expose(**cut.base(), ports=tuple(sorted(ports)))


def _volume(cut: _Line) -> ins.Instruction:
    cut.flags()
    paths, json_form = _maybe_json_list(cut)
    if not paths:
        raise cut.fail("VOLUME requires at least one argument")
    cleaned = []
    for path in paths:
        if not path.strip():
            raise cut.fail("VOLUME specified can not be an empty string")
        cleaned.append(path.strip())
    return ins.Volume(**cut.base(), paths=tuple(cleaned), json_form=json_form)


def _healthcheck(cut: _Line) -> ins.Instruction:
    parts = cut.args.split(None, 1)
    if not parts:
        raise cut.fail("HEALTHCHECK requires at least one argument")
    kind = parts[0].upper()
    rest = parts[1] if len(parts) == 2 else ""
    if kind == "NONE":
        if rest:
            raise cut.fail("HEALTHCHECK NONE takes no arguments")
        return ins.Healthcheck(**cut.base(), test=("NONE",))
    flags = cut.flags()
    if kind != "CMD":
        raise cut.fail(f'Unknown type "{parts[0]}" in HEALTHCHECK (try CMD)')
    command, json_form = _maybe_json(_Line(cut.keyword, cut.written, [], rest, cut.source, cut.escape))
    if not command:
        raise cut.fail("Missing command after HEALTHCHECK CMD")
    test = ("CMD", *command) if json_form else ("CMD-SHELL", *command)
    retries = 0
    if (text := flags.one("retries")) is not None:
        try:
            retries = int(text)
        except ValueError as exc:
            raise cut.fail(f'strconv.ParseInt: parsing "{text}": invalid syntax') from exc
        if retries < 0:
            raise cut.fail(f"--retries cannot be negative ({retries})")
    return ins.Healthcheck(
        **cut.base(),
        test=test,
        interval_ns=_interval(cut, flags, "interval"),
        timeout_ns=_interval(cut, flags, "timeout"),
        start_period_ns=_interval(cut, flags, "start-period"),
        start_interval_ns=_interval(cut, flags, "start-interval"),
        retries=retries,
    )


def _interval(cut: _Line, flags: Flags, name: str) -> int:
    text = flags.one(name)
    if not text:
        return 0
    try:
        value = parse_duration(text)
    except ValueError as exc:
        raise cut.fail(str(exc)) from exc
    if 0 < value < _MINIMUM_HEALTH_DURATION_NS or value < 0:
        raise cut.fail(f'Interval "{name}" cannot be less than 1ms')
    return value


def _onbuild(cut: _Line) -> ins.Instruction:
    cut.flags()
    if not cut.args:
        raise cut.fail("ONBUILD requires at least one argument")
    trigger_word = _WHITESPACE.split(cut.args, maxsplit=1)[0].upper()
    if trigger_word == "ONBUILD":
        raise cut.fail("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if trigger_word in ("MAINTAINER", "FROM"):
        raise cut.fail(f"{trigger_word} isn't allowed as an ONBUILD trigger")
    expression = _ONBUILD_PREFIX.sub("", cut.source.text)
    for heredoc in cut.source.heredocs:
        # The trigger is stored as text: its heredoc bodies travel with it (parseOnBuild).
        expression += "\n" + heredoc.content + heredoc.name
    # The trigger runs in a later build; parse it now so a typo fails here, as Docker does.
    nested = LogicalLine(cut.args, cut.source.start_line, cut.source.end_line, cut.source.heredocs)
    trigger = parse_line(nested, cut.escape)
    return ins.Onbuild(**cut.base(), expression=expression, trigger=trigger)


_HANDLERS: dict[str, Callable[[_Line], ins.Instruction]] = {
    "add": _add,
    "arg": _arg,
    "cmd": _cmd,
    "copy": _copy,
    "entrypoint": _entrypoint,
    "env": _env,
    "expose": _expose,
    "from": _from,
    "healthcheck": _healthcheck,
    "label": _label,
    "maintainer": _maintainer,
    "onbuild": _onbuild,
    "run": _run,
    "shell": _shell,
    "stopsignal": _stopsignal,
    "user": _user,
    "volume": _volume,
    "workdir": _workdir,
}
