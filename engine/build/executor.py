"""The classic builder's back half: run a resolved Dockerfile, step by step, into images.

Like moby's builder/dockerfile (the path `DOCKER_BUILDKIT=0 docker build`
takes), every step makes an image whose parent is the previous step's, so
the cache is "an image with this parent made by this step" (engine.build.cache)
and `docker history` shows one row per step:

* metadata instructions (ENV, LABEL, CMD...) change only the config
  (engine.build.config_edit): an image with an ``empty_layer`` history entry;
* RUN runs in a container of the current image through the ContainerService
  (the engine's own runtime and network mode), then its writable layer is
  committed (engine.images.commit); the container is always removed;
* COPY/ADD (and WORKDIR's directory) write into a snapshot of the current
  image mounted on the host (engine.build.copier), committed the same way.

Stages the target needs are built in order (BuildKit skips unneeded stages
too; the classic builder would build them all).  Whatever fails, no
container, mount or active snapshot is left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import shutil
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.build import config_edit
from engine.build import instructions as ins
from engine.build.cache import BuildCache
from engine.build.copier import (
    CopyError,
    Destination,
    Ownership,
    Source,
    checksum,
    copy_sources,
    fetch_url,
    heredoc_source,
    is_url,
    parse_chmod,
    resolve_sources,
)
from engine.build.dockerfile_parser import parse
from engine.build.errors import BuildError, DockerfileError
from engine.build.stages import BuildPlan, Stage, StageScope, resolve
from engine.containers.commit import drop_mount_placeholders
from engine.images.commit import History, commit_snapshot, write_image
from engine.images.errors import NotFound
from engine.images.image_records import ImageRecord
from engine.images.image_store import ImageStore
from engine.images.reference import parse_normalized_named
from engine.images.rootfs_prepare import prepare_rootfs, unpack_image
from engine.snapshots.mounts import mount, unmount
from engine.snapshots.snapshotter import Snapshotter

log = logging.getLogger(__name__)

Emit = Callable[[dict[str, Any]], Awaitable[None]]
Puller = Callable[[str], Awaitable[None]]
NOP = "/bin/sh -c #(nop) "
# Marks a RUN step's container, so a daemon restart can remove those a dead build left (BuildService.restore).
BUILD_STEP_LABEL = "com.berth.build.step"


class StepFailed(BuildError):
    """A step could not be carried out; ``code`` is a failing RUN's exit status."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class BuildOptions:
    dockerfile: str = "Dockerfile"
    tags: list[str] = field(default_factory=list)
    build_args: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    target: str | None = None
    no_cache: bool = False
    pull: bool = False
    network_mode: str = "default"
    quiet: bool = False


@dataclass
class _State:
    """Where a stage is: its current image (None: scratch), config, ARGs, and whether the cache still holds."""

    image: ImageRecord | None
    config: dict[str, Any]
    args: dict[str, str] = field(default_factory=dict)
    cmd_set: bool = False

    @property
    def parent_id(self) -> str:
        return self.image.id if self.image is not None else ""


def short(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


def read_dockerfile(context: Path, name: str) -> str:
    from engine.build.copier import _real_path
    from engine.snapshots.rooted import split_clean

    try:
        path = _real_path(context, split_clean(name))
        return path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError, CopyError, BuildError):
        raise DockerfileError(f"Cannot locate specified Dockerfile: {name}") from None
    except UnicodeDecodeError:
        raise DockerfileError(f"the Dockerfile {name} is not UTF-8 text") from None


class Builder:
    def __init__(self, images: ImageStore, snapshotter: Snapshotter, containers: Any, cache: BuildCache,
                 work_root: Path, puller: Puller | None = None) -> None:
        self.images = images
        self.snapshotter = snapshotter
        self.containers = containers  # engine.containers.service.ContainerService
        self.cache = cache
        self.work_root = work_root
        self.puller = puller

    # ------------------------------------------------------------------ the build
    async def build(self, context: Path, options: BuildOptions, emit: Emit, text: str | None = None) -> str:
        """Build ``text`` (default: the context's Dockerfile); returns the final image id (tags applied)."""
        self._context = context
        for tag in options.tags:  # a bad -t fails before any step runs, like dockerd's sanitizeRepoAndTags
            try:
                parse_normalized_named(tag)
            except Exception as exc:
                raise StepFailed(f"invalid tag {tag!r}: {exc}") from None
        if text is None:
            text = read_dockerfile(context, options.dockerfile)
        dockerfile = parse(text)
        plan = resolve(dockerfile, options.build_args, options.target, base_env=self._base_env)
        out = _Output(emit, options.quiet)
        for warning in dockerfile.warnings:
            await out.stream(f"[WARNING]: {warning}\n")
        meta = [i for i in dockerfile.instructions if isinstance(i, ins.Arg)
                and i.line < plan.stages[0].from_instruction.line]
        total = len(meta) + sum(1 + len(plan.stages[i].instructions) for i in plan.needed)
        total += 1 if options.labels else 0
        step = 0
        for arg in meta:
            step += 1
            await out.stream(f"Step {step}/{total} : {arg.original}\n")
        built: dict[int, ImageRecord | None] = {}
        final: _State | None = None
        for index in plan.needed:
            stage = plan.stages[index]
            busted = options.no_cache  # each stage probes the cache afresh (moby resets its prober per stage)
            step += 1
            await out.stream(f"Step {step}/{total} : {stage.from_instruction.original}\n")
            state = await self._from(stage, built, options)
            if state.image is not None:
                await out.stream(f" ---> {short(state.image.id)}\n")
            busted = await self._onbuild(stage, plan, state, built, options, out, busted)
            extra: list[ins.Instruction] = []
            if index == plan.target and options.labels:
                pairs = tuple(ins.KeyValue(k, v) for k, v in sorted(options.labels.items()))
                original = "LABEL " + " ".join(f"{json.dumps(k)}={json.dumps(v)}" for k, v in sorted(
                    options.labels.items()))
                extra.append(ins.Label(keyword="LABEL", line=0, end_line=0, original=original, pairs=pairs))
            for instruction in [*stage.instructions, *extra]:
                step += 1
                await out.stream(f"Step {step}/{total} : {instruction.original}\n")
                try:
                    busted = await self._step(stage, plan, instruction, state, built, options, out, busted)
                except StepFailed as exc:
                    where = f" (Dockerfile line {instruction.line})" if instruction.line else ""
                    raise StepFailed(f"{exc}{where}", exc.code) from None
            built[index] = state.image
            final = state
        assert final is not None
        if final.image is None:
            raise StepFailed("No image was generated. Is your Dockerfile empty?")
        image_id = final.image.id
        await out.aux({"ID": image_id})
        if options.quiet:
            await emit({"stream": f"{image_id}\n"})
        await out.stream(f"Successfully built {short(image_id)}\n")
        for tag in options.tags:
            ref = await asyncio.to_thread(self.images.tag, image_id, tag)
            await out.stream(f"Successfully tagged {ref.familiar()}\n")
        for name in plan.unconsumed_build_args:
            await out.stream(f"[Warning] One or more build-args [{name}] were not consumed\n")
        return image_id

    def _base_env(self, reference: str) -> Mapping[str, str]:
        try:
            record = self.images.get(reference)
        except Exception:
            return {}
        return config_edit.env_map(self.images.config(record.id).get("config") or {})

    async def _image(self, reference: str, pull: bool) -> ImageRecord:
        if not pull:
            try:
                return await asyncio.to_thread(self.images.get, reference)
            except NotFound:
                pass
        if self.puller is None:
            raise StepFailed(f"pull access denied for {reference}: no registry access in this builder")
        await self.puller(reference)
        return await asyncio.to_thread(self.images.get, reference)

    async def _from(self, stage: Stage, built: Mapping[int, ImageRecord | None], options: BuildOptions) -> _State:
        if stage.base_stage is not None:
            image = built[stage.base_stage]
        elif stage.base.lower() == "scratch":
            image = None
        else:
            image = await self._image(stage.base, options.pull)
        config = dict(self.images.config(image.id).get("config") or {}) if image is not None else {}
        return _State(image, config)

    async def _onbuild(self, stage: Stage, plan: BuildPlan, state: _State, built: Mapping[int, ImageRecord | None],
                       options: BuildOptions, out: _Output, busted: bool) -> bool:
        """The base image's ONBUILD triggers run right after FROM, then are gone from the config (moby)."""
        triggers = [str(t) for t in state.config.get("OnBuild") or []]
        if not triggers:
            return busted
        state.config = {k: v for k, v in state.config.items() if k != "OnBuild"}
        plural = "s" if len(triggers) > 1 else ""
        await out.stream(f"# Executing {len(triggers)} build trigger{plural}\n")
        scope = StageScope(options.build_args, plan.global_args, config_edit.env_map(state.config))
        for text in triggers:
            try:
                trigger = parse(f"FROM scratch\n{text}\n").instructions[1]
            except (DockerfileError, IndexError) as exc:
                raise StepFailed(f"invalid ONBUILD trigger {text!r} in the base image: {exc}") from None
            if isinstance(trigger, ins.From | ins.Onbuild | ins.Maintainer):
                raise StepFailed(f"{trigger.keyword} isn't allowed as an ONBUILD trigger")
            busted = await self._step(stage, plan, scope.apply(trigger), state, built, options, out, busted)
        return busted

    # ------------------------------------------------------------------ one step
    async def _step(self, stage: Stage, plan: BuildPlan, instruction: ins.Instruction, state: _State,
                    built: Mapping[int, ImageRecord | None], options: BuildOptions, out: _Output,
                    busted: bool) -> bool:
        """Run one instruction on ``state``; returns whether the cache is busted from here on."""
        _refuse_buildkit_only(instruction)
        if isinstance(instruction, ins.Arg):
            for decl in instruction.args:
                if decl.default is not None:  # after substitution: the value in effect
                    state.args[decl.name] = decl.default
                else:
                    state.args.pop(decl.name, None)
        new_config = config_edit.apply(state.config, instruction, state.cmd_set)
        if isinstance(instruction, ins.Cmd):
            state.cmd_set = True
        sources: list[Source] = []
        with contextlib.ExitStack() as cleanup:
            # An ARG's value reaches the cache only through the RUNs that see it (moby: "|N k=v" in their command).
            text = instruction.original if isinstance(instruction, ins.Arg) else _describe(instruction)
            key_parts: dict[str, Any] = {"text": text}
            if isinstance(instruction, ins.Run):
                key_parts["args"] = self._run_args(state, plan)
            if isinstance(instruction, ins.FileInstruction):
                sources = await self._file_sources(instruction, built, plan, options, cleanup)
                key_parts["sources"] = await asyncio.to_thread(checksum, sources) if sources else ""
            key_parts["config"] = new_config
            step_key = "sha256:" + hashlib.sha256(json.dumps(key_parts, sort_keys=True).encode()).hexdigest()
            if not busted:
                hit = await asyncio.to_thread(self._cached, state.parent_id, step_key)
                if hit is not None:
                    state.image = hit
                    state.config = new_config
                    await out.stream(f" ---> Using cache\n ---> {short(hit.id)}\n")
                    return False
            if isinstance(instruction, ins.Run):
                image = await self._run(instruction, state, new_config, plan, options, out)
            elif isinstance(instruction, ins.FileInstruction):
                image = await asyncio.to_thread(self._copy, instruction, sources, state, new_config,
                                                key_parts["sources"])
            elif isinstance(instruction, ins.Workdir):
                image = await asyncio.to_thread(self._workdir, instruction, state, new_config)
            else:
                history = History(NOP + " " + instruction.original,
                                  author=instruction.name if isinstance(instruction, ins.Maintainer) else "")
                image = await asyncio.to_thread(self._metadata_image, state.image, new_config, history)
        await asyncio.to_thread(self.cache.record, state.parent_id, step_key, image.id)
        state.image = image
        state.config = new_config
        await out.stream(f" ---> {short(image.id)}\n")
        return True

    def _cached(self, parent: str, step_key: str) -> ImageRecord | None:
        image_id = self.cache.lookup(parent, step_key)
        if image_id is None:
            return None
        try:
            return self.images.get(image_id)
        except NotFound:
            self.cache.forget(image_id)
            return None

    def _metadata_image(self, parent: ImageRecord | None, config: dict[str, Any], history: History) -> ImageRecord:
        with self.images.lease() as lease:
            return write_image(self.images, parent, config, history, None, lease)

    @staticmethod
    def _run_args(state: _State, plan: BuildPlan) -> dict[str, str]:
        """Build args RUN sees: declared ARGs with a value, and the proxy args (ENV wins over both)."""
        env = config_edit.env_map(state.config)
        args = {**plan.proxy_env, **state.args}
        return {k: v for k, v in sorted(args.items()) if k not in env}

    # ------------------------------------------------------------------ RUN
    async def _run(self, instruction: ins.Run, state: _State, config: dict[str, Any], plan: BuildPlan,
                   options: BuildOptions, out: _Output) -> ImageRecord:
        if state.image is None:
            raise StepFailed("RUN needs a base image with a shell: this stage starts FROM scratch")
        argv = _run_argv(config, instruction)
        args = self._run_args(state, plan)
        env = [*(config.get("Env") or []), *(f"{k}={v}" for k, v in args.items())]
        container_config: dict[str, Any] = {
            "Image": state.image.id, "Env": env, "Cmd": argv, "Entrypoint": argv[:1],
            "WorkingDir": config.get("WorkingDir") or "", "User": config.get("User") or "",
            "Labels": {BUILD_STEP_LABEL: "RUN"}, "AttachStdout": True, "AttachStderr": True,
        }
        network = instruction.network or options.network_mode or "default"
        record, _ = await self.containers.create(None, container_config, {"NetworkMode": network})
        # Exactly this argv: nothing of the image's ENTRYPOINT/CMD (moby runs RUN with an empty entrypoint).
        record.config["Entrypoint"] = None
        record.config["Cmd"] = argv
        self.containers.store.save(record)
        await out.stream(f" ---> Running in {record.id[:12]}\n")
        from engine.containers.json_log import LogFollower

        follower = LogFollower(self.containers.paths.log_path(record.id))
        try:
            waiter = self.containers.wait(record.id, "next-exit")
            await self.containers.start(record.id)
            while True:  # the step's output as it comes (the json-file log the shim writes)
                done, _ = await asyncio.wait({waiter}, timeout=0.1)
                await self._relay_output(follower, out)
                if done:
                    break
            finished = waiter.result()
            await self._relay_output(follower, out)
            code = finished.state.exit_code
            if code != 0:
                shown = json.dumps(argv) if instruction.json_form else " ".join(argv)
                raise StepFailed(f"The command '{shown}' returned a non-zero code: {code}", code)
            await asyncio.to_thread(drop_mount_placeholders, self.snapshotter, record.snapshot_key)
            prefix = f"|{len(args)} " + " ".join(f"{k}={v}" for k, v in args.items()) + " " if args else ""
            created_by = prefix + (json.dumps(argv) if instruction.json_form else " ".join(argv))
            image = await asyncio.to_thread(
                commit_snapshot, self.images, self.snapshotter, record.snapshot_key, state.image, config,
                History(created_by), keep_snapshot=True)
        finally:
            follower.close()
            with contextlib.suppress(Exception):
                await self.containers.remove(record.id, force=True, volumes=True)
            await out.stream(f"Removing intermediate container {record.id[:12]}\n")
        return image

    @staticmethod
    async def _relay_output(follower: Any, out: _Output) -> None:
        text = "".join(r.text for r in await asyncio.to_thread(lambda: list(follower.poll())))
        if text:
            await out.stream(text)

    # ------------------------------------------------------------------ COPY / ADD / WORKDIR
    async def _file_sources(self, instruction: ins.FileInstruction, built: Mapping[int, ImageRecord | None],
                            plan: BuildPlan, options: BuildOptions, cleanup: contextlib.ExitStack) -> list[Source]:
        scratch = self.work_root / f"src-{uuid.uuid4().hex[:12]}"
        scratch.mkdir(parents=True)
        cleanup.callback(shutil.rmtree, scratch, True)
        sources: list[Source] = []
        for content in instruction.contents:  # COPY <<EOF /dest: the heredoc is a file named after it
            try:
                sources.append(heredoc_source(scratch / "heredoc", content.path, content.data))
            except CopyError as exc:
                raise StepFailed(f"{instruction.keyword} failed: {exc}") from None
        from_ = instruction.from_ if isinstance(instruction, ins.Copy) else None
        if from_:
            root = await self._source_root(from_, built, plan, options, cleanup)
            names = "build context" if root is None else f"stage {from_}"
        else:
            root, names = self.context, "build context"
        assert root is not None
        local = [s for s in instruction.sources if not is_url(s)]
        remote = [s for s in instruction.sources if is_url(s)]
        if remote and not isinstance(instruction, ins.Add):
            raise StepFailed(f"source can't be a URL for COPY: {remote[0]}")
        try:
            sources += await asyncio.to_thread(resolve_sources, root, local, names)
            for url in remote:
                sources.append(await asyncio.to_thread(fetch_url, url, scratch))
        except CopyError as exc:
            raise StepFailed(f"{instruction.keyword} failed: {exc}") from None
        return sources

    async def _source_root(self, from_: str, built: Mapping[int, ImageRecord | None], plan: BuildPlan,
                           options: BuildOptions, cleanup: contextlib.ExitStack) -> Path:
        names = {s.name: s.index for s in plan.stages if s.name}
        index = int(from_) if from_.isdigit() else names.get(from_.lower())
        if index is not None:
            if index not in built:
                raise StepFailed(f"invalid from flag value {from_}: stage {from_} is not built yet")
            image = built[index]
        else:
            image = await self._image(from_, options.pull)
        view = self.work_root / f"view-{uuid.uuid4().hex[:12]}"
        view.mkdir(parents=True)
        cleanup.callback(shutil.rmtree, view, True)
        if image is None or not image.layers:
            return view  # scratch: an empty tree
        key = f"build-view-{uuid.uuid4().hex[:12]}"
        top = await asyncio.to_thread(unpack_image, self.images, self.snapshotter, image.id)
        mounts = await asyncio.to_thread(self.snapshotter.view, key, top)
        cleanup.callback(_quiet, self.snapshotter.remove, key)
        await asyncio.to_thread(mount, mounts, view)
        cleanup.callback(_quiet, unmount, view)
        return view

    @property
    def context(self) -> Path:
        return self._context

    def _write_step(self, state: _State, work: Callable[[Path], None], config: dict[str, Any],
                    history: History) -> ImageRecord:
        """Mount a writable snapshot of the current image, let ``work`` change it, commit the changes."""
        key = f"build-{uuid.uuid4().hex}"
        root = self.work_root / f"rootfs-{key[-12:]}"
        root.mkdir(parents=True)
        try:
            if state.image is not None and state.image.layers:
                mounts = prepare_rootfs(self.images, self.snapshotter, state.image.id, key)
            else:
                mounts = self.snapshotter.prepare(key, None)
            mount(mounts, root)
            try:
                work(root)
            finally:
                unmount(root)
            return commit_snapshot(self.images, self.snapshotter, key, state.image, config, history,
                                   keep_snapshot=True)
        finally:
            _quiet(self.snapshotter.remove, key)
            shutil.rmtree(root, ignore_errors=True)

    def _copy(self, instruction: ins.FileInstruction, sources: list[Source], state: _State,
              config: dict[str, Any], digest: str) -> ImageRecord:
        try:
            chmod = parse_chmod(instruction.chmod)
        except CopyError as exc:
            raise StepFailed(f"{instruction.keyword} failed: {exc}") from None
        workdir = state.config.get("WorkingDir") or "/"
        extract = isinstance(instruction, ins.Add) and instruction.unpack is not False

        def work(root: Path) -> None:
            owner = _ownership(root, instruction.chown)
            dest = Destination(root, owner, chmod)
            try:
                local = [s for s in sources if not is_url(s.written)]
                copy_sources(dest, local, instruction.dest, workdir, extract)
                urls = [s for s in sources if is_url(s.written)]
                copy_sources(dest, urls, instruction.dest, workdir, False)
            except CopyError as exc:
                raise StepFailed(f"{instruction.keyword} failed: {exc}") from None
            except OSError as exc:
                raise StepFailed(f"{instruction.keyword} failed: {exc.strerror or exc}: "
                                 f"{instruction.dest}") from None
            finally:
                dest.close()

        history = History(f"{NOP}{instruction.keyword} {digest} in {instruction.dest} ")
        return self._write_step(state, work, config, history)

    def _workdir(self, instruction: ins.Workdir, state: _State, config: dict[str, Any]) -> ImageRecord:
        from engine.snapshots.rooted import RootedDir, split_clean

        def work(root: Path) -> None:
            with RootedDir(root) as rooted:
                rooted.make_dirs(split_clean(config.get("WorkingDir") or "/"))

        history = History(f"{NOP}WORKDIR {config.get('WorkingDir')}")
        if state.image is None:
            return self._metadata_image(None, config, history)
        return self._write_step(state, work, config, history)


class _Output:
    def __init__(self, emit: Emit, quiet: bool) -> None:
        self.emit = emit
        self.quiet = quiet

    async def stream(self, text: str) -> None:
        if not self.quiet:
            await self.emit({"stream": text})

    async def aux(self, value: dict[str, Any]) -> None:
        await self.emit({"aux": value})


def _quiet(func: Callable[..., Any], *args: Any) -> None:
    try:
        func(*args)
    except Exception as exc:  # cleanup after a failure: the first error is the one to report
        log.warning("build cleanup %s%s: %s", getattr(func, "__name__", func), args, exc)


def _ownership(root: Path, chown: str | None) -> Ownership:
    if not chown:
        return Ownership()
    from engine.containers.users import UserError, resolve_user

    user, sep, group = chown.partition(":")
    try:
        resolved = resolve_user(str(root), f"{user}:{group}" if sep else user)
    except UserError as exc:
        raise StepFailed(f"unable to convert uid/gid chown string to host mapping: {exc}") from None
    # "--chown=user" without a group: the GID is the UID's number (Dockerfile reference, COPY --chown).
    return Ownership(resolved.uid, resolved.gid if sep else resolved.uid)


def _refuse_buildkit_only(instruction: ins.Instruction) -> None:
    """Flags the classic builder rejects rather than ignores (moby: "the --mount option requires BuildKit")."""
    flags: list[str] = []
    if isinstance(instruction, ins.Run):
        flags += ["--mount"] if instruction.mounts else []
        flags += ["--security"] if instruction.security else []
    if isinstance(instruction, ins.FileInstruction):
        flags += ["--link"] if instruction.link else []
        flags += ["--exclude"] if instruction.excludes else []
    if isinstance(instruction, ins.Copy) and instruction.parents:
        flags.append("--parents")
    if isinstance(instruction, ins.Add) and (instruction.checksum or instruction.keep_git_dir):
        flags.append("--checksum" if instruction.checksum else "--keep-git-dir")
    if flags:
        raise StepFailed(f"the {flags[0]} option requires BuildKit, which Berth does not provide: "
                         "use the classic builder's instructions")


def _run_argv(config: dict[str, Any], instruction: ins.Run) -> list[str]:
    if instruction.json_form:
        return list(instruction.command)
    script = " ".join(instruction.command)
    if instruction.heredocs:
        only = script.strip()
        first = instruction.heredocs[0]
        if len(instruction.heredocs) == 1 and only.lstrip("<-").strip("'\"") == first.name:
            script = first.content  # RUN <<EOF ... EOF: the body is the script (BuildKit)
        else:
            script += "\n" + "".join(f"{h.content}{h.name}\n" for h in instruction.heredocs)
    return [*config_edit.shell_of(config), script]


def _describe(instruction: ins.Instruction) -> str:
    """The substituted instruction, as the cache sees it."""
    fields = {k: v for k, v in vars(instruction).items() if k not in ("line", "end_line", "original")}
    return json.dumps(fields, sort_keys=True, default=repr)
