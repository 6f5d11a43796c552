"""Stage resolution: global ARGs and FROM, --build-arg, platform args, ENV/ARG scope, --target, stage references."""

from __future__ import annotations

import textwrap

import pytest

from engine.build import instructions as ins
from engine.build.build_args import Platform
from engine.build.dockerfile_parser import parse
from engine.build.errors import DockerfileError
from engine.build.stages import BuildPlan, resolve

AMD64 = Platform("linux", "amd64")
ARM_V7 = Platform("linux", "arm", "v7")


def plan(text: str, **kwargs) -> BuildPlan:
    kwargs.setdefault("build_platform", AMD64)
    return resolve(parse(textwrap.dedent(text).lstrip("\n")), **kwargs)


MULTI_STAGE = """
    ARG GO_VERSION=1.22
    ARG BASE=alpine:3.19
    FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
    ARG TARGETOS
    ARG TARGETARCH
    ENV CGO_ENABLED=0 GOOS=$TARGETOS
    WORKDIR /src/$TARGETARCH
    RUN go build -o /out/app .

    FROM build AS test
    RUN go test ./...

    FROM ${BASE}
    ARG GO_VERSION
    LABEL go.version=$GO_VERSION built.with="${BASE:-unset in stage}"
    COPY --from=build /out/app /usr/local/bin/app
    """


def test_global_args_feed_from_lines_only_until_redeclared():
    result = plan(MULTI_STAGE, target_platform=ARM_V7)
    build, test, final = result.stages
    assert (build.base, build.platform, build.name) == ("golang:1.22", "linux/amd64", "build")
    assert final.base == "alpine:3.19"
    label = final.instructions[1]
    assert isinstance(label, ins.Label)
    # GO_VERSION was redeclared in the stage, BASE was not: it is not visible there.
    assert label.pairs == (ins.KeyValue("go.version", "1.22"), ins.KeyValue("built.with", "unset in stage"))
    assert result.target == 2
    assert result.needed == (0, 2)  # the test stage is not reached from the final one
    assert not test.expanded


def test_platform_args_available_after_arg_without_default():
    build = plan(MULTI_STAGE, target_platform=ARM_V7).stages[0]
    env, workdir = build.instructions[2], build.instructions[3]
    assert isinstance(env, ins.Env) and env.pairs == (ins.KeyValue("CGO_ENABLED", "0"), ins.KeyValue("GOOS", "linux"))
    assert isinstance(workdir, ins.Workdir) and workdir.path == "/src/arm"
    assert build.args == {"TARGETOS": "linux", "TARGETARCH": "arm"}
    assert build.env == {"CGO_ENABLED": "0", "GOOS": "linux"}


def test_build_arg_overrides_defaults_global_and_in_stage():
    result = plan(MULTI_STAGE, build_args={"GO_VERSION": "1.23", "BASE": "debian:bookworm"})
    assert result.stages[0].base == "golang:1.23"
    assert result.stages[2].base == "debian:bookworm"
    label = result.stages[2].instructions[1]
    assert isinstance(label, ins.Label) and label.pairs[0] == ins.KeyValue("go.version", "1.23")


def test_target_selects_stage_and_its_dependencies():
    result = plan(MULTI_STAGE, target="TEST")
    assert result.target == 1
    assert result.needed == (0, 1)
    assert result.target_stage.base_stage == 0
    # A stage built on another inherits its ENV.
    assert result.target_stage.env == {"CGO_ENABLED": "0", "GOOS": "linux"}


def test_missing_target_is_an_error():
    with pytest.raises(DockerfileError, match='target stage "nope" could not be found'):
        plan(MULTI_STAGE, target="nope")


def test_copy_from_unknown_name_is_an_image_reference():
    result = plan(
        """
        FROM alpine AS nginx-conf
        FROM alpine
        COPY --from=nginx:latest /etc/nginx/nginx.conf /etc/
        COPY --from=docker.io/library/busybox /bin/busybox /bin/
        """
    )
    assert result.stages[1].depends_on == frozenset()
    copy = result.stages[1].instructions[0]
    assert isinstance(copy, ins.Copy) and copy.from_ == "nginx:latest"


def test_copy_from_own_index_is_circular():
    # The error a single-stage Dockerfile with `COPY --from=0` gets from BuildKit.
    with pytest.raises(DockerfileError, match="circular dependency detected on stage: stage-0"):
        plan("FROM alpine\nCOPY --from=0 /etc/os-release /copy\n")


def test_copy_from_index_and_name_create_dependencies():
    result = plan(
        """
        FROM alpine AS a
        FROM alpine AS b
        FROM scratch
        COPY --from=0 /x /x
        COPY --from=B /y /y
        """
    )
    assert result.stages[2].depends_on == frozenset({0, 1})
    assert result.needed == (0, 1, 2)


def test_copy_from_a_later_stage_is_allowed_but_cycles_are_not():
    ok = plan(
        """
        FROM alpine AS first
        COPY --from=second /x /x
        FROM alpine AS second
        """,
        target="first",
    )
    assert ok.needed == (0, 1)
    with pytest.raises(DockerfileError, match="circular dependency detected on stage: stage0"):
        plan("FROM busybox AS stage0\nCOPY --from=stage0 f1 /sub/\n")


def test_copy_from_expands_global_args_only():
    result = plan(
        """
        ARG SRC=builder
        FROM alpine AS builder
        FROM alpine
        ARG LOCAL=elsewhere
        COPY --from=$SRC /a /a
        COPY --from=${LOCAL:-fallback} /b /b
        """
    )
    first, second = result.stages[1].instructions[1:]
    assert isinstance(first, ins.Copy) and first.from_ == "builder"
    # A stage-local ARG is not visible to --from (moby/buildkit#2374).
    assert isinstance(second, ins.Copy) and second.from_ == "fallback"
    assert result.stages[1].depends_on == frozenset({0})


def test_run_mount_from_names_a_stage():
    result = plan(
        """
        FROM alpine AS deps
        FROM alpine
        RUN --mount=type=bind,from=deps,target=/deps ls /deps
        """
    )
    assert result.stages[1].depends_on == frozenset({0})


def test_env_overrides_arg_and_uses_values_from_before_the_line():
    stage = plan(
        """
        FROM alpine
        ARG NAME=from-arg
        ENV NAME=from-env
        ARG NAME=again
        ENV abc=hello
        ENV abc=bye def=$abc
        ENV ghi=$abc
        WORKDIR /$NAME
        """
    ).stages[0]
    workdir = stage.instructions[-1]
    assert isinstance(workdir, ins.Workdir) and workdir.path == "/from-env"
    assert stage.env == {"NAME": "from-env", "abc": "bye", "def": "hello", "ghi": "bye"}


def test_quotes_and_escapes_removed_in_expanded_instructions():
    stage = plan(
        """
        FROM alpine
        ENV A="hello world" B='$A' C=Rex\\ The\\ Dog
        ENV legacy "quoted value" and more
        LABEL "com.example.vendor"="ACME Inc"
        USER ${UID:-1000}:${GID:-1000}
        EXPOSE ${PORT:-8080}/tcp
        VOLUME ["/data/$A"]
        STOPSIGNAL ${SIG:-SIGTERM}
        RUN echo $A
        CMD echo "$A"
        """
    ).stages[0]
    env, legacy, label, user, expose, volume, stop, run, cmd = stage.instructions
    assert isinstance(env, ins.Env)
    assert env.pairs == (ins.KeyValue("A", "hello world"), ins.KeyValue("B", "$A"), ins.KeyValue("C", "Rex The Dog"))
    assert isinstance(legacy, ins.Env) and legacy.pairs == (ins.KeyValue("legacy", "quoted value and more"),)
    assert isinstance(label, ins.Label) and label.pairs == (ins.KeyValue("com.example.vendor", "ACME Inc"),)
    assert isinstance(user, ins.User) and user.user == "1000:1000"
    assert isinstance(expose, ins.Expose) and expose.ports == ("8080/tcp",)
    assert isinstance(volume, ins.Volume) and volume.paths == ("/data/hello world",)
    assert isinstance(stop, ins.StopSignal) and stop.signal == "SIGTERM"
    # RUN and CMD are left for the shell.
    assert isinstance(run, ins.Run) and run.command == ("echo $A",)
    assert isinstance(cmd, ins.Cmd) and cmd.command == ('echo "$A"',)


def test_onbuild_is_not_expanded():
    stage = plan("FROM alpine\nARG X=1\nONBUILD WORKDIR /$X\n").stages[0]
    onbuild = stage.instructions[1]
    assert isinstance(onbuild, ins.Onbuild) and onbuild.expression == "WORKDIR /$X"


def test_copy_add_flags_and_heredoc_bodies_expanded():
    stage = plan(
        """
        ARG SRC_STAGE=builder
        FROM alpine AS builder
        FROM alpine
        ARG OWNER=app
        ARG PORT=80
        COPY --chown=$OWNER:$OWNER --chmod=${MODE:-0755} --from=$SRC_STAGE /out/$OWNER /srv/
        ADD --checksum=sha256:${SUM:-abc} https://example.com/$OWNER.tgz /tmp/
        COPY <<EOF /etc/app.conf
        listen "$PORT"
        EOF
        COPY <<'EOF' /etc/raw.conf
        listen $PORT
        EOF
        """
    ).stages[1]
    _, _, copy, add, heredoc, raw = stage.instructions
    assert isinstance(copy, ins.Copy)
    assert (copy.chown, copy.chmod, copy.from_, copy.sources) == ("app:app", "0755", "builder", ("/out/app",))
    assert isinstance(add, ins.Add)
    assert (add.checksum, add.sources) == ("sha256:abc", ("https://example.com/app.tgz",))
    assert isinstance(heredoc, ins.Copy)
    assert heredoc.contents == (ins.SourceContent("EOF", 'listen "80"\n', expand=True),)
    assert isinstance(raw, ins.Copy)
    assert raw.contents == (ins.SourceContent("EOF", "listen $PORT\n", expand=False),)


def test_backtick_escape_applies_to_substitution():
    stage = plan("# escape=`\nFROM scratch\nENV A=1\nWORKDIR c:\\`$A\\$A\n").stages[0]
    workdir = stage.instructions[1]
    assert isinstance(workdir, ins.Workdir) and workdir.path == "c:\\$A\\1"


def test_proxy_args_need_no_arg_and_unused_args_are_reported():
    result = plan(
        "FROM alpine\nARG USED\nRUN env\n",
        build_args={"HTTP_PROXY": "http://proxy:3128", "no_proxy": "localhost", "USED": "1", "EXTRA": "2"},
    )
    assert result.proxy_env == {"HTTP_PROXY": "http://proxy:3128", "no_proxy": "localhost"}
    assert result.unconsumed_build_args == ("EXTRA",)
    assert result.stages[0].args == {"USED": "1"}
    # Proxies are not substituted into other instructions.
    workdir = plan("FROM alpine\nWORKDIR /$HTTP_PROXY\n", build_args={"HTTP_PROXY": "p"}).stages[0].instructions[0]
    assert isinstance(workdir, ins.Workdir) and workdir.path == "/"


@pytest.mark.parametrize(
    ("written", "normalized"),
    [
        ("linux/arm64", "linux/arm64"),
        ("Linux/x86_64", "linux/amd64"),
        ("arm64", "linux/arm64"),
        ("linux/arm/v7", "linux/arm/v7"),
    ],
)
def test_from_platform_is_normalized(written, normalized):
    assert plan(f"FROM --platform={written} alpine\n").stages[0].platform == normalized


def test_base_env_callback_seeds_external_base_image_env():
    stage = plan("FROM python:3.12\nWORKDIR $HOME/app\n", base_env=lambda ref: {"HOME": f"/home/{ref[:6]}"}).stages[0]
    workdir = stage.instructions[0]
    assert isinstance(workdir, ins.Workdir) and workdir.path == "/home/python/app"


@pytest.mark.parametrize(
    ("text", "kwargs", "line", "message"),
    [
        ("RUN echo\nFROM a\n", {}, 1, "no build stage in current context"),
        ("ARG ONLY=1\n", {}, None, "dockerfile contains no stages to build"),
        ("ARG B\nFROM ${B}\n", {}, 2, "base name (${B}) should not be blank"),
        ("FROM a AS x\nFROM b AS X\n", {}, 2, "Duplicate stage name 'x', stage names should be unique"),
        ("FROM a\nWORKDIR ${DIR:?set DIR}\n", {}, 2, "DIR: set DIR"),
        ("ARG V=${REQ:?}\nFROM a\n", {}, 1, "REQ: is not allowed to be unset"),
        ("FROM --platform=linux/arm/v7/x a\n", {}, 1, "failed to parse platform linux/arm/v7/x"),
        ("FROM --platform=linux//v7 a\n", {}, 1, "failed to parse platform linux//v7"),
        ("FROM a\nCOPY --from=3 /x /x\n", {}, 2, "invalid stage index 3"),
    ],
)
def test_resolution_errors(text, kwargs, line, message):
    with pytest.raises(DockerfileError) as caught:
        plan(text, **kwargs)
    assert caught.value.line == line
    assert message in str(caught.value)


def test_unreached_stage_errors_do_not_fail_the_build():
    result = plan("FROM a AS broken\nWORKDIR ${X:?}\nFROM b AS good\n", target="good")
    assert result.needed == (1,)
