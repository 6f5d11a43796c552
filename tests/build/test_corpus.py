"""Whole Dockerfiles of common real-world shapes, parsed and resolved end to end."""

from __future__ import annotations

import textwrap

from engine.build import instructions as ins
from engine.build.build_args import Platform
from engine.build.dockerfile_parser import parse
from engine.build.stages import resolve

NODE_APP = r"""
# syntax=docker/dockerfile:1

ARG NODE_VERSION=20
FROM node:${NODE_VERSION}-alpine AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm \
    npm ci --omit=dev

FROM node:${NODE_VERSION}-alpine AS runtime
ENV NODE_ENV=production \
    PORT=3000
WORKDIR /app
COPY --from=deps --chown=node:node /app/node_modules ./node_modules
COPY --chown=node:node . .
USER node
EXPOSE ${PORT}
HEALTHCHECK --interval=30s --timeout=3s \
  CMD wget -qO- http://localhost:${PORT}/health || exit 1
CMD ["node", "server.js"]
"""

PYTHON_HEREDOCS = """
FROM python:3.12-slim
ARG APP_USER=app
RUN <<EOF
set -eux
useradd --create-home "$APP_USER"
pip install --no-cache-dir uvicorn
EOF
COPY <<-EOT /etc/app/settings.ini
\t[server]
\tuser = ${APP_USER}
\tEOT
COPY <<"PY" /app/main.py
print("$not_expanded")
PY
ENTRYPOINT ["python", "/app/main.py"]
"""

WINDOWS = r"""
# escape=`

FROM mcr.microsoft.com/windows/servercore:ltsc2022
SHELL ["powershell", "-Command", "$ErrorActionPreference = 'Stop';"]
ENV TOOLS=C:\tools
RUN New-Item -ItemType Directory -Path $env:TOOLS ; `
    # comment between continuation lines `
    Write-Host done
WORKDIR ${TOOLS}\bin
COPY app\ C:\app\
"""

ONBUILD_BASE = """
FROM golang:1.22
ONBUILD ARG VERSION=dev
ONBUILD COPY . /src
ONBUILD RUN go build -ldflags "-X main.version=$VERSION" -o /bin/app /src
LABEL maintainer="team@example.com" \\
      org.opencontainers.image.source=https://example.com/repo
MAINTAINER Legacy Person
STOPSIGNAL SIGINT
VOLUME /data
"""


def summary(instructions: tuple[ins.Instruction, ...]) -> list[tuple[str, int, int]]:
    return [(i.keyword, i.line, i.end_line) for i in instructions]


def test_node_app():
    dockerfile = parse(NODE_APP.lstrip("\n"))
    assert dockerfile.directives.syntax == "docker/dockerfile:1"
    assert summary(dockerfile.instructions) == [
        ("ARG", 3, 3),
        ("FROM", 4, 4),
        ("WORKDIR", 5, 5),
        ("COPY", 6, 6),
        ("RUN", 7, 8),
        ("FROM", 10, 10),
        ("ENV", 11, 12),
        ("WORKDIR", 13, 13),
        ("COPY", 14, 14),
        ("COPY", 15, 15),
        ("USER", 16, 16),
        ("EXPOSE", 17, 17),
        ("HEALTHCHECK", 18, 19),
        ("CMD", 20, 20),
    ]
    plan = resolve(dockerfile, build_platform=Platform("linux", "amd64"))
    deps, runtime = plan.stages
    assert (deps.base, runtime.base) == ("node:20-alpine", "node:20-alpine")
    assert runtime.depends_on == frozenset({0})
    assert plan.needed == (0, 1)
    expose = runtime.instructions[5]
    assert isinstance(expose, ins.Expose) and expose.ports == ("3000",)
    health = runtime.instructions[6]
    assert isinstance(health, ins.Healthcheck)
    # HEALTHCHECK is not substituted by the builder: the shell sees ${PORT} at run time.
    assert health.test == ("CMD-SHELL", "wget -qO- http://localhost:${PORT}/health || exit 1")
    assert (health.interval_ns, health.timeout_ns) == (30 * 10**9, 3 * 10**9)


def test_python_heredocs():
    dockerfile = parse(PYTHON_HEREDOCS.lstrip("\n"))
    assert summary(dockerfile.instructions) == [
        ("FROM", 1, 1),
        ("ARG", 2, 2),
        ("RUN", 3, 7),
        ("COPY", 8, 11),
        ("COPY", 12, 14),
        ("ENTRYPOINT", 15, 15),
    ]
    stage = resolve(dockerfile).stages[0]
    run, settings, main = stage.instructions[1:4]
    assert isinstance(run, ins.Run)
    script = 'set -eux\nuseradd --create-home "$APP_USER"\npip install --no-cache-dir uvicorn\n'
    assert run.heredocs[0].content == script  # left for the shell: $APP_USER is the RUN environment's
    assert isinstance(settings, ins.Copy)
    assert settings.contents == (ins.SourceContent("EOT", "[server]\nuser = app\n", expand=True),)
    assert isinstance(main, ins.Copy)
    assert main.contents == (ins.SourceContent("PY", 'print("$not_expanded")\n', expand=False),)


def test_windows_backtick_escape():
    dockerfile = parse(textwrap.dedent(WINDOWS).lstrip("\n"))
    assert dockerfile.directives.escape == "`"
    assert summary(dockerfile.instructions) == [
        ("FROM", 3, 3),
        ("SHELL", 4, 4),
        ("ENV", 5, 5),
        ("RUN", 6, 8),
        ("WORKDIR", 9, 9),
        ("COPY", 10, 10),
    ]
    stage = resolve(dockerfile).stages[0]
    shell, env, run, workdir, copy = stage.instructions
    assert isinstance(shell, ins.Shell) and shell.shell[-1] == "$ErrorActionPreference = 'Stop';"
    assert isinstance(env, ins.Env) and env.pairs == (ins.KeyValue("TOOLS", "C:\\tools"),)
    assert isinstance(run, ins.Run)
    assert run.command == ("New-Item -ItemType Directory -Path $env:TOOLS ;     Write-Host done",)
    assert isinstance(workdir, ins.Workdir) and workdir.path == "C:\\tools\\bin"
    assert isinstance(copy, ins.Copy) and (copy.sources, copy.dest) == (("app\\",), "C:\\app\\")


def test_onbuild_base_image():
    dockerfile = parse(ONBUILD_BASE.lstrip("\n"))
    onbuilds = [i for i in dockerfile.instructions if isinstance(i, ins.Onbuild)]
    assert [o.expression for o in onbuilds] == [
        "ARG VERSION=dev",
        "COPY . /src",
        'RUN go build -ldflags "-X main.version=$VERSION" -o /bin/app /src',
    ]
    assert [type(o.trigger).__name__ for o in onbuilds] == ["Arg", "Copy", "Run"]
    stage = resolve(dockerfile).stages[0]
    label, maintainer, stop, volume = stage.instructions[3:]
    assert isinstance(label, ins.Label)
    assert label.pairs == (
        ins.KeyValue("maintainer", "team@example.com"),
        ins.KeyValue("org.opencontainers.image.source", "https://example.com/repo"),
    )
    assert isinstance(maintainer, ins.Maintainer) and maintainer.name == "Legacy Person"
    assert isinstance(stop, ins.StopSignal) and stop.signal == "SIGINT"
    assert isinstance(volume, ins.Volume) and volume.paths == ("/data",)
