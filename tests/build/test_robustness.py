"""Seeded random Dockerfiles and ignore files: the front half fails only with its own errors, never a crash."""

from __future__ import annotations

import random

import pytest

from engine.build.dockerfile_parser import parse
from engine.build.dockerignore import ContextFilter, read_patterns
from engine.build.errors import BuildError
from engine.build.stages import resolve

FRAGMENTS = [
    "FROM",
    "from",
    "RUN",
    "CMD",
    "COPY",
    "ADD",
    "ENV",
    "ARG",
    "LABEL",
    "ONBUILD",
    "HEALTHCHECK",
    "SHELL",
    "WORKDIR",
    "USER",
    "EXPOSE",
    "VOLUME",
    "STOPSIGNAL",
    "MAINTAINER",
    "ENTRYPOINT",
    "AS",
    "alpine",
    "x",
    "--from=0",
    "--mount=type=cache,target=/c",
    "--chown=1",
    "--link",
    "--platform=linux/amd64",
    "--interval=1s",
    "$A",
    "${A:-b}",
    "${A:?}",
    "${",
    "}",
    "'",
    '"',
    "\\",
    "`",
    "[",
    "]",
    '["a",',
    '"b"]',
    "<<EOF",
    "<<-'E'",
    "EOF",
    "E",
    "#",
    "# escape=`",
    "=",
    "a=b",
    "NONE",
    "\t",
    "  ",
    "*",
    "**",
    "!",
]


def random_text(rng: random.Random, lines: int) -> str:
    out = []
    for _ in range(lines):
        out.append(" ".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(0, 6))))
    return "\n".join(out) + rng.choice(["", "\n", "\r\n"])


# Python's re warns where Go's regexp would read a pattern differently: treat a warning as a failure.
pytestmark = pytest.mark.filterwarnings("error")


def test_random_dockerfiles_raise_only_build_errors():
    rng = random.Random(20261128)
    parsed = 0
    for _ in range(1500):
        text = rng.choice(["", "FROM alpine AS x\n"]) + random_text(rng, rng.randint(1, 8))
        try:
            dockerfile = parse(text)
            parsed += 1
            resolve(dockerfile, build_args={"A": "1"}, target=rng.choice([None, "x"]))
        except BuildError:
            continue
    assert parsed > 50  # the generator does reach the resolver, not only the parser's errors


def test_random_ignore_patterns_raise_only_build_errors(tmp_path):
    rng = random.Random(7)
    for name in ("a/b/c", "a/x", "EOF", "E/F/G"):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name)
    for _ in range(300):
        try:
            context = ContextFilter(read_patterns(random_text(rng, rng.randint(1, 5))))
            walked = context.walk(tmp_path)
        except BuildError:
            continue
        assert all(not context.excluded(path) or any(p.startswith(path + "/") for p in walked) for path in walked)
