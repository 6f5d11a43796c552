"""One dataclass per Dockerfile instruction, as the parser hands them to the builder.

Values are kept as written (quotes and ``$VAR`` intact): expansion happens
later, per stage, with the stage's ARG/ENV scope (engine.build.stages).
Every instruction carries its 1-based start/end line and its original text
(continuations joined, comments dropped: BuildKit's ``Node.Original``).
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.build.heredoc import Heredoc


@dataclass(frozen=True, kw_only=True)
class Instruction:
    keyword: str  # upper case: "RUN", "COPY"...
    line: int
    end_line: int
    original: str


@dataclass(frozen=True)
class KeyValue:
    key: str
    value: str


@dataclass(frozen=True)
class ArgDecl:
    name: str
    default: str | None  # None: `ARG NAME` without `=`


@dataclass(frozen=True)
class SourceContent:
    """A COPY/ADD source given inline as a heredoc (``COPY <<EOF /dst``)."""

    path: str  # the heredoc name, used as the file name
    data: str
    expand: bool


@dataclass(frozen=True)
class RunMount:
    """One ``RUN --mount=...``: its type and target, the other CSV options as written."""

    type: str
    target: str | None
    options: tuple[tuple[str, str], ...]


@dataclass(frozen=True, kw_only=True)
class From(Instruction):
    base: str
    stage_name: str | None  # lower-cased, as BuildKit compares stage names case-insensitively
    platform: str | None


@dataclass(frozen=True, kw_only=True)
class CommandInstruction(Instruction):
    """RUN, CMD, ENTRYPOINT: exec form (``json``) or one shell-form string run through SHELL."""

    command: tuple[str, ...]
    json_form: bool


@dataclass(frozen=True, kw_only=True)
class Run(CommandInstruction):
    heredocs: tuple[Heredoc, ...] = ()
    mounts: tuple[RunMount, ...] = ()
    network: str | None = None
    security: str | None = None


@dataclass(frozen=True, kw_only=True)
class Cmd(CommandInstruction):
    pass


@dataclass(frozen=True, kw_only=True)
class Entrypoint(CommandInstruction):
    pass


@dataclass(frozen=True, kw_only=True)
class Shell(Instruction):
    shell: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class FileInstruction(Instruction):
    """COPY and ADD: sources (paths, or heredoc contents) and a destination."""

    sources: tuple[str, ...]
    contents: tuple[SourceContent, ...]
    dest: str
    json_form: bool
    chown: str | None = None
    chmod: str | None = None
    link: bool = False
    excludes: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Copy(FileInstruction):
    from_: str | None = None  # a stage name or index, or an image reference
    parents: bool = False


@dataclass(frozen=True, kw_only=True)
class Add(FileInstruction):
    checksum: str | None = None
    keep_git_dir: bool = False
    unpack: bool | None = None


@dataclass(frozen=True, kw_only=True)
class Env(Instruction):
    pairs: tuple[KeyValue, ...]


@dataclass(frozen=True, kw_only=True)
class Label(Instruction):
    pairs: tuple[KeyValue, ...]


@dataclass(frozen=True, kw_only=True)
class Arg(Instruction):
    args: tuple[ArgDecl, ...]


@dataclass(frozen=True, kw_only=True)
class Workdir(Instruction):
    path: str


@dataclass(frozen=True, kw_only=True)
class User(Instruction):
    user: str


@dataclass(frozen=True, kw_only=True)
class Expose(Instruction):
    ports: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Volume(Instruction):
    paths: tuple[str, ...]
    json_form: bool


@dataclass(frozen=True, kw_only=True)
class StopSignal(Instruction):
    signal: str


@dataclass(frozen=True, kw_only=True)
class Maintainer(Instruction):
    """Deprecated (Dockerfile reference: use LABEL), still accepted: sets the image's Author."""

    name: str


@dataclass(frozen=True, kw_only=True)
class Healthcheck(Instruction):
    """``test`` is Docker's HealthConfig.Test: ["NONE"], ["CMD", ...] or ["CMD-SHELL", "cmd"]."""

    test: tuple[str, ...]
    interval_ns: int = 0  # 0: inherit / engine default
    timeout_ns: int = 0
    start_period_ns: int = 0
    start_interval_ns: int = 0
    retries: int = 0


@dataclass(frozen=True, kw_only=True)
class Onbuild(Instruction):
    """``expression`` is recorded in the image's OnBuild list; ``trigger`` is it parsed (for validation)."""

    expression: str
    trigger: Instruction
