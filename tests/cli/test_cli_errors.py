"""Bad input: one line on stderr, docker's exit status, never a traceback."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from engine.client.errors import start_hint
from tests.cli.conftest import BERTH, Tools

pytestmark = pytest.mark.needs_root


def _lines(stderr: str) -> list[str]:
    # The engine's own warnings (bridge networking not implemented) are not the CLI's error.
    return [line for line in stderr.splitlines() if not line.startswith("WARNING:")]


@pytest.mark.parametrize(
    ("args", "code", "start"),
    [
        (["ps", "--bogus"], 125, "berth: unknown flag: --bogus"),
        (["ps", "--al"], 125, "berth: unknown flag: --al. Did you mean '--all'?"),
        (["run", "--memory", "lots", "busybox"], 125, "berth: invalid size: 'lots'"),
        (["stop"], 1, "berth: 'berth stop' requires at least 1 argument."),
        (["run"], 1, "berth: 'berth run' requires at least 1 argument."),
        (["imagez"], 125, "berth: 'imagez' is not a berth command. Did you mean 'image'?"),
        (["image", "lss"], 125, "berth: 'lss' is not a berth image command. Did you mean 'ls'?"),
        (["completion", "tcsh"], 1, "berth: unsupported shell 'tcsh'"),
    ],
)
def test_usage_errors(tools: Tools, args: list[str], code: int, start: str) -> None:
    out = tools.berth(*args)
    assert out.returncode == code
    assert len(_lines(out.stderr)) == 1 and out.stderr.startswith(start), out.stderr


@pytest.mark.parametrize("args", [["ps", "--bogus"], ["stop"], ["run"]])
def test_usage_exit_codes_match_docker(tools: Tools, args: list[str]) -> None:
    assert tools.berth(*args).returncode == tools.docker(*args).returncode


@pytest.mark.parametrize(
    "args",
    [["rm", "nosuch"], ["stop", "nosuch"], ["logs", "nosuch"], ["rmi", "nosuch"], ["start", "nosuch"],
     ["inspect", "nosuch"], ["image", "inspect", "nosuch"], ["history", "nosuch"], ["wait", "nosuch"],
     ["tag", "nosuch", "x:1"], ["attach", "nosuch"], ["kill", "nosuch"]],
)
def test_missing_objects_report_like_docker(tools: Tools, args: list[str]) -> None:
    ours, theirs = tools.berth(*args), tools.docker(*args)
    assert (ours.returncode, ours.stdout, ours.stderr) == (theirs.returncode, theirs.stdout, theirs.stderr)
    # One line per failure; `start` adds docker's summary line ("Error: failed to start containers: ...").
    assert ours.returncode == 1 and len(_lines(ours.stderr)) == (2 if args[0] == "start" else 1)


def test_run_missing_image_says_so_then_fails_with_the_pull_error(tools: Tools) -> None:
    out = tools.berth("run", "--rm", "nosuch:img", "true")
    assert out.returncode == 125
    first, second = _lines(out.stderr)
    assert first == "Unable to find image 'nosuch:img' locally"
    assert second.startswith("Error response from daemon: ")
    theirs = _lines(tools.docker("run", "--rm", "nosuch:img", "true").stderr)[1].removeprefix("docker: ")
    # The engine's message may carry an object address (" at 0x7f..."): that part differs per call.
    assert re.sub(r" at 0x[0-9a-f]+", "", second) == re.sub(r" at 0x[0-9a-f]+", "", theirs)


def test_run_missing_command_exits_127_like_docker(tools: Tools, busybox: str) -> None:
    ours, theirs = tools.berth("run", "--rm", busybox, "/nonexistent"), tools.docker("run", "--rm", busybox,
                                                                                     "/nonexistent")
    assert ours.returncode == theirs.returncode == 127
    assert _lines(ours.stderr) == [line.removeprefix("docker: ") for line in _lines(theirs.stderr)
                                   if line.startswith("docker: ")]


def test_unreachable_engine_is_one_line(tmp_path: Path) -> None:
    for args in (["ps"], ["images"], ["run", "busybox"]):
        out = subprocess.run([BERTH, "-H", f"unix://{tmp_path}/none.sock", *args], capture_output=True, text=True,
                             timeout=30)
        assert out.returncode == 1
        # The words, then how to start the engine here (Linux: berthd runs natively, no VM).
        assert out.stderr == (f"Cannot connect to the Berth daemon at unix://{tmp_path}/none.sock; is it running? "
                              f"{start_hint()} (no socket there)\n")
        assert "Traceback" not in out.stderr


def test_unreachable_engine_hint_depends_on_the_platform() -> None:
    assert start_hint("linux").startswith("Start it with `berthd`")
    assert start_hint("darwin") == start_hint("win32") == "Try `berth machine start`."


def test_run_uncallable_command_exits_126(tools: Tools, busybox: str) -> None:
    assert tools.berth("run", "--rm", busybox, "/etc").returncode == 126
