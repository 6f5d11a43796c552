"""fastargs (the lifecycle verbs without argparse) against the full parser, on the same argument lists."""

from __future__ import annotations

import subprocess
import sys

import pytest

from engine.runtime import fastargs
from engine.runtime.cli import build_parser

PLAIN = [
    ["run", "--bundle", "/b", "c1"],
    ["--root", "/r", "run", "-b", "/b", "c1"],
    ["--root=/r", "--log", "/l", "--log-format", "json", "--debug", "run", "--bundle=/b", "--keep", "c1"],
    ["--systemd-cgroup", "--rootless", "false", "create", "--bundle", "/b", "--pid-file", "/p", "c2"],
    ["create", "c2", "--console-socket", "/s", "--preserve-fds", "3", "--no-pivot", "--no-new-keyring"],
    ["run", "-d", "--detach", "c3"],
    ["run", "c3"],
    ["start", "c4"],
    ["state", "c4"],
    ["delete", "c5"],
    ["delete", "-f", "c5", "c6", "c7"],
    ["delete", "c5", "--force"],
    ["kill", "c8"],
    ["kill", "c8", "KILL"],
    ["kill", "--all", "c8", "9"],
    ["kill", "c8", "SIGUSR1", "-a"],
    ["run", "--bundle", "/b", "--bundle", "/b2", "c9"],  # the last one wins, as in argparse
]

UNUSUAL = [
    [],
    ["--help"],
    ["-v"],
    ["run", "-h"],
    ["rm", "c1"],  # an alias
    ["list"],
    ["exec", "c1", "true"],
    ["--root"],
    ["--log-format", "xml", "state", "c1"],
    ["--roo", "/r", "state", "c1"],  # abbreviations are argparse's to judge
    ["run", "--bund", "/b", "c1"],
    ["run", "-b=/b", "c1"],
    ["run", "--bundle", "-x", "c1"],
    ["run", "--keep=1", "c1"],
    ["run", "--preserve-fds", "x", "c1"],
    ["run", "--", "c1"],
    ["run", "c1", "c2"],
    ["start"],
    ["delete"],
    ["delete", "a", "-f", "b"],
    ["kill", "c1", "-a", "KILL"],
    ["kill", "c1", "KILL", "extra"],
    ["state", "-x", "c1"],
    ["run", "--root", "/r", "c1"],  # a global option after the verb
]


@pytest.mark.parametrize("argv", PLAIN, ids=" ".join)
def test_plain_calls_parse_as_argparse_does(argv: list[str]) -> None:
    fast = fastargs.parse(argv)
    assert fast is not None
    assert vars(fast) == vars(build_parser(argv).parse_args(argv))


@pytest.mark.parametrize("argv", UNUSUAL, ids=" ".join)
def test_anything_else_goes_to_the_full_parser(argv: list[str]) -> None:
    assert fastargs.parse(argv) is None


def test_a_plain_call_does_not_import_argparse() -> None:
    code = ("import sys; from engine.runtime.cli import main; "
            "main(['--root', sys.argv[1], 'state', 'nosuch']); print('argparse' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, "/nonexistent-berth-root"], capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.strip() == "False", out.stderr
