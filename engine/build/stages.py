"""A parsed Dockerfile + build args + ``--target`` → the stages to build, with variables substituted.

Follows BuildKit's dockerfile2llb (convert.go) and the Dockerfile reference:

* ARGs before the first FROM are *global*: they (and the automatic platform
  args) are substituted into FROM lines only; inside a stage a global arg is
  visible after ``ARG NAME`` redeclares it ("Understand how ARG and FROM interact").
* ``--build-arg`` overrides an ARG's default; the proxy args need no ARG
  (engine.build.build_args) and go to RUN's environment only.
* ENV always wins over an ARG of the same name; all pairs of one ENV line are
  substituted with the values from *before* that line.
* Substitution applies to ADD, COPY, ENV, EXPOSE, FROM, LABEL, STOPSIGNAL,
  USER, VOLUME, WORKDIR and ARG values ("Environment replacement"); RUN, CMD,
  ENTRYPOINT, SHELL, HEALTHCHECK are left to the shell at run time, ONBUILD
  to the downstream build.  Heredoc bodies of COPY/ADD are expanded without
  quote processing unless the heredoc name was quoted.
* A stage whose base names an *earlier* stage starts from that stage (and
  inherits its ENV); ``COPY --from`` / ``RUN --mount=from=`` name a stage by
  name or index, anything else is an image reference (not an error).
* Only stages the target reaches are substituted, as BuildKit only
  dispatches those; all FROM lines are resolved.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TypeVar

from engine.build import instructions as ins
from engine.build.build_args import PROXY_ARGS, Platform, platform_args
from engine.build.dockerfile_parser import Dockerfile
from engine.build.errors import DockerfileError, ExpansionError
from engine.build.expand import LexOptions, process_word

_F = TypeVar("_F", bound=ins.FileInstruction)
# COPY/ADD heredoc bodies: `$` and `\` are processed, quotes are text (BuildKit ExpandRaw).
_HEREDOC_BODY = LexOptions(skip_quotes=True)


@dataclass(frozen=True)
class Stage:
    index: int
    name: str | None
    base: str  # after substitution: an image reference, "scratch", or an earlier stage's name
    base_stage: int | None  # index of the earlier stage `base` names
    platform: str | None  # FROM --platform after substitution
    from_instruction: ins.From
    instructions: tuple[ins.Instruction, ...]  # substituted when `expanded`
    expanded: bool  # False for stages the target does not reach
    depends_on: frozenset[int]  # base stage + COPY --from / RUN --mount from= stages
    args: Mapping[str, str] = field(default_factory=dict)  # ARG values in effect at the end of the stage
    env: Mapping[str, str] = field(default_factory=dict)  # ENV set by the Dockerfile (and base stages)

    @property
    def display_name(self) -> str:
        return self.name or f"stage-{self.index}"


@dataclass(frozen=True)
class BuildPlan:
    stages: tuple[Stage, ...]  # every stage, in Dockerfile order
    target: int
    needed: tuple[int, ...]  # stages the target reaches, ascending: what must be built
    global_args: Mapping[str, str]  # the scope FROM lines were substituted with
    proxy_env: Mapping[str, str]  # proxy build args, for RUN's environment only
    unconsumed_build_args: tuple[str, ...]  # given but never declared (Docker warns about them)

    @property
    def target_stage(self) -> Stage:
        return self.stages[self.target]


class StageScope:
    """The ARG/ENV scope of one stage, applied instruction by instruction.

    The executor can replay a stage with it after seeding ``env`` from the
    real base image's config.
    """

    def __init__(
        self,
        build_args: Mapping[str, str],
        global_args: Mapping[str, str],
        env: Mapping[str, str] | None = None,
        escape: str = "\\",
    ) -> None:
        self.build_args = build_args
        self.global_args = global_args
        self.args: dict[str, str] = {}
        self.env: dict[str, str] = dict(env or {})
        self.declared: set[str] = set()
        self.options = LexOptions(escape=escape)

    def lookup(self) -> dict[str, str]:
        return {**self.args, **self.env}  # ENV overrides ARG (Dockerfile reference, "Using ARG variables")

    def word(self, text: str, scope: Mapping[str, str] | None = None) -> str:
        return process_word(text, self.lookup() if scope is None else scope, self.options)

    def maybe(self, text: str | None) -> str | None:
        return None if text is None else self.word(text)

    def apply(self, instruction: ins.Instruction) -> ins.Instruction:
        """Substitute variables in ``instruction`` and update the scope; DockerfileError names its line."""
        try:
            return self._apply(instruction)
        except ExpansionError as exc:
            raise DockerfileError(str(exc), instruction.line) from exc

    def _apply(self, instruction: ins.Instruction) -> ins.Instruction:
        if isinstance(instruction, ins.Arg):
            return self._arg(instruction)
        if isinstance(instruction, ins.Env):
            scope = self.lookup()
            pairs = tuple(ins.KeyValue(self.word(p.key, scope), self.word(p.value, scope)) for p in instruction.pairs)
            self.env.update((p.key, p.value) for p in pairs)
            return replace(instruction, pairs=pairs)
        if isinstance(instruction, ins.Label):
            pairs = tuple(ins.KeyValue(self.word(p.key), self.word(p.value)) for p in instruction.pairs)
            return replace(instruction, pairs=pairs)
        if isinstance(instruction, ins.Workdir):
            return replace(instruction, path=self.word(instruction.path))
        if isinstance(instruction, ins.User):
            return replace(instruction, user=self.word(instruction.user))
        if isinstance(instruction, ins.StopSignal):
            return replace(instruction, signal=self.word(instruction.signal))
        if isinstance(instruction, ins.Expose):
            return replace(instruction, ports=tuple(self.word(p) for p in instruction.ports))
        if isinstance(instruction, ins.Volume):
            return replace(instruction, paths=tuple(self.word(p) for p in instruction.paths))
        if isinstance(instruction, ins.Copy):
            # Stage references are resolved before any stage runs: only global args apply (see _dependencies).
            from_ = None if instruction.from_ is None else self.word(instruction.from_, self.global_args)
            return replace(self._files(instruction), from_=from_)
        if isinstance(instruction, ins.Add):
            return replace(self._files(instruction), checksum=self.maybe(instruction.checksum))
        return instruction

    def _arg(self, instruction: ins.Arg) -> ins.Arg:
        decls = []
        for decl in instruction.args:
            value: str | None
            if decl.name in self.build_args:
                value = self.build_args[decl.name]
            elif decl.default is not None:
                value = self.word(decl.default)
            else:
                value = self.global_args.get(decl.name)  # a global (or platform) arg redeclared in the stage
            self.declared.add(decl.name)
            if value is not None:
                self.args[decl.name] = value
            decls.append(ins.ArgDecl(decl.name, value))
        return replace(instruction, args=tuple(decls))

    def _files(self, instruction: _F) -> _F:
        contents = tuple(
            replace(c, data=process_word(c.data, self.lookup(), _HEREDOC_BODY)) if c.expand else c
            for c in instruction.contents
        )
        return replace(
            instruction,
            sources=tuple(self.word(s) for s in instruction.sources),
            dest=self.word(instruction.dest),
            contents=contents,
            chown=self.maybe(instruction.chown),
            chmod=self.maybe(instruction.chmod),
            excludes=tuple(self.word(e) for e in instruction.excludes),
        )


@dataclass
class _RawStage:
    header: ins.From
    body: list[ins.Instruction]


def _split(dockerfile: Dockerfile) -> tuple[list[ins.Arg], list[_RawStage]]:
    meta: list[ins.Arg] = []
    stages: list[_RawStage] = []
    for instruction in dockerfile.instructions:
        if isinstance(instruction, ins.From):
            stages.append(_RawStage(instruction, []))
        elif stages:
            stages[-1].body.append(instruction)
        elif isinstance(instruction, ins.Arg):
            meta.append(instruction)
        else:
            raise DockerfileError("no build stage in current context", instruction.line)
    if not stages:
        raise DockerfileError("dockerfile contains no stages to build")
    return meta, stages


def _global_scope(
    meta: list[ins.Arg], build_args: Mapping[str, str], platforms: dict[str, str], escape: str
) -> tuple[dict[str, str], set[str]]:
    scope = dict(platforms)
    declared: set[str] = set()
    options = LexOptions(escape=escape)
    for instruction in meta:
        for decl in instruction.args:
            declared.add(decl.name)
            if decl.name in build_args:
                scope[decl.name] = build_args[decl.name]
            elif decl.default is not None:
                try:
                    scope[decl.name] = process_word(decl.default, scope, options)
                except ExpansionError as exc:
                    raise DockerfileError(str(exc), instruction.line) from exc
    return scope, declared


def resolve(
    dockerfile: Dockerfile,
    build_args: Mapping[str, str] | None = None,
    target: str | None = None,
    build_platform: Platform | None = None,
    target_platform: Platform | None = None,
    base_env: Callable[[str], Mapping[str, str]] | None = None,
) -> BuildPlan:
    """Resolve ``dockerfile`` into stages for ``target`` (default: the last stage).

    ``base_env(reference)`` may supply an external base image's ENV so that
    substitution sees it (Docker resolves the image config first); without
    it, external bases contribute no variables.
    """
    given = dict(build_args or {})
    escape = dockerfile.directives.escape
    build = build_platform or Platform.host()
    platforms = platform_args(build, target_platform or build)
    meta, raw_stages = _split(dockerfile)
    global_args, declared = _global_scope(meta, given, platforms, escape)

    headers = [_resolve_from(i, raw, raw_stages, global_args, escape) for i, raw in enumerate(raw_stages)]
    names = {header.name: header.index for header in headers if header.name}
    if target is None:
        target_index = len(headers) - 1
    elif target.lower() in names:
        target_index = names[target.lower()]
    else:
        raise DockerfileError(f'target stage "{target}" could not be found')

    deps = [
        _dependencies(header, raw, names, len(headers), global_args, escape)
        for header, raw in zip(headers, raw_stages, strict=True)
    ]
    _check_cycles(headers, deps)
    needed = _reachable(target_index, deps)

    stages: list[Stage] = []
    for header, raw, stage_deps in zip(headers, raw_stages, deps, strict=True):
        if header.index not in needed:
            stages.append(replace(header, instructions=tuple(raw.body), depends_on=stage_deps))
            continue
        if header.base_stage is not None:
            inherited: Mapping[str, str] = stages[header.base_stage].env
        elif base_env is not None and header.base != "scratch":
            inherited = base_env(header.base)
        else:
            inherited = {}
        scope = StageScope(given, global_args, inherited, escape)
        body = tuple(scope.apply(instruction) for instruction in raw.body)
        declared |= scope.declared
        stages.append(
            replace(
                header,
                instructions=body,
                expanded=True,
                depends_on=stage_deps,
                args=dict(scope.args),
                env=dict(scope.env),
            )
        )
    unconsumed = tuple(sorted(name for name in given if name not in declared and name not in PROXY_ARGS))
    return BuildPlan(
        stages=tuple(stages),
        target=target_index,
        needed=tuple(sorted(needed)),
        global_args=global_args,
        proxy_env={name: value for name, value in given.items() if name in PROXY_ARGS},
        unconsumed_build_args=unconsumed,
    )


def _resolve_from(
    index: int, raw: _RawStage, raw_stages: list[_RawStage], global_args: Mapping[str, str], escape: str
) -> Stage:
    header = raw.header
    options = LexOptions(escape=escape)
    try:
        base = process_word(header.base, global_args, options)
        platform = None if header.platform is None else process_word(header.platform, global_args, options)
    except ExpansionError as exc:
        raise DockerfileError(str(exc), header.line) from exc
    if not base:
        raise DockerfileError(f"base name ({header.base}) should not be blank", header.line)
    if platform:
        try:
            platform = str(Platform.parse(platform))
        except ValueError as exc:
            raise DockerfileError(f"failed to parse platform {platform}: {exc}", header.line) from exc
    name = header.stage_name
    earlier = [raw_stages[i].header.stage_name for i in range(index)]
    if name is not None and name in earlier:
        raise DockerfileError(f"Duplicate stage name '{name}', stage names should be unique", header.line)
    # Only an earlier stage can be a base: a FROM cannot create a cycle (BuildKit addState order).
    base_stage = next((i for i in range(index - 1, -1, -1) if earlier[i] == base.lower()), None)
    return Stage(
        index=index,
        name=name,
        base=base,
        base_stage=base_stage,
        platform=platform or None,
        from_instruction=header,
        instructions=(),
        expanded=False,
        depends_on=frozenset(),
    )


def _dependencies(
    header: Stage, raw: _RawStage, names: Mapping[str, int], count: int, global_args: Mapping[str, str], escape: str
) -> frozenset[int]:
    found: set[int] = set() if header.base_stage is None else {header.base_stage}
    for instruction in raw.body:
        refs: list[str] = []
        if isinstance(instruction, ins.Copy) and instruction.from_:
            try:
                # Looked up before any stage runs, so only global args can appear (moby/buildkit#2374).
                refs.append(process_word(instruction.from_, global_args, LexOptions(escape=escape)))
            except ExpansionError as exc:
                raise DockerfileError(str(exc), instruction.line) from exc
        if isinstance(instruction, ins.Run):
            # RUN --mount from= is taken literally (moby/buildkit#2089: "from expansion is not supported").
            refs.extend(value for mount in instruction.mounts for key, value in mount.options if key == "from")
        for ref in refs:
            if ref.isdigit():
                if int(ref) >= count:
                    raise DockerfileError(f"invalid stage index {ref}", instruction.line)
                found.add(int(ref))
            elif ref.lower() in names:
                found.add(names[ref.lower()])
            # anything else is an image reference, fetched by the executor
    return frozenset(found)


def _check_cycles(headers: list[Stage], deps: list[frozenset[int]]) -> None:
    visiting: set[int] = set()
    done: set[int] = set()

    def visit(index: int) -> bool:
        if index in done:
            return False
        if index in visiting:
            return True
        visiting.add(index)
        cyclic = any(visit(dep) for dep in deps[index])
        visiting.discard(index)
        done.add(index)
        return cyclic

    for header in headers:
        if visit(header.index):
            raise DockerfileError(f"circular dependency detected on stage: {header.display_name}")


def _reachable(target: int, deps: list[frozenset[int]]) -> set[int]:
    seen = {target}
    pending = [target]
    while pending:
        for dep in deps[pending.pop()]:
            if dep not in seen:
                seen.add(dep)
                pending.append(dep)
    return seen
