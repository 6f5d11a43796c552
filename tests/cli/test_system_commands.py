"""`berth version/info/events` and the CLI's error conventions, beside the real docker CLI."""

from __future__ import annotations

import json
import select
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import REPO, RunningDaemon, start_berthd, stop

BERTH = str(REPO / ".venv" / "bin" / "berth")


@pytest.fixture(scope="module")
def daemon(run_tag: str) -> Iterator[RunningDaemon]:
    with tempfile.TemporaryDirectory(prefix=f"{run_tag}-cli-") as tmp:
        root = Path(tmp)
        (root / "daemon.json").write_text(json.dumps({"debug": False}))
        running = start_berthd(root, "--config-file", str(root / "daemon.json"))
        try:
            yield running
        finally:
            stop(running)


def run(daemon: RunningDaemon | None, *args: str, tool: str = BERTH) -> subprocess.CompletedProcess[str]:
    env = daemon.env() if daemon else None
    return subprocess.run([tool, *args], env=env, capture_output=True, text=True, timeout=30)


def test_version_and_info_agree_with_docker(daemon: RunningDaemon) -> None:
    for args in (["version", "--format", "{{.Server.Version}} {{.Server.Os}}"], ["info", "--format", "{{.ID}}"]):
        ours, theirs = run(daemon, *args), run(daemon, *args, tool="docker")
        assert ours.returncode == theirs.returncode == 0, ours.stderr + theirs.stderr
        assert ours.stdout == theirs.stdout


def test_version_default_layout_names_both_sides(daemon: RunningDaemon) -> None:
    out = run(daemon, "version")
    assert out.returncode == 0
    assert out.stdout.startswith("Client:\n Version:")
    assert "Server: Berth Engine" in out.stdout
    assert " API version:      1.51\n" in out.stdout


def test_json_format(daemon: RunningDaemon) -> None:
    out = run(daemon, "info", "--format", "json")
    assert json.loads(out.stdout)["Name"]


def test_events_streams_reload(daemon: RunningDaemon) -> None:
    watcher = subprocess.Popen([BERTH, "events", "--filter", "type=daemon", "--format", "{{.Type}}/{{.Action}}"],
                               env=daemon.env(), stdout=subprocess.PIPE, text=True)
    try:
        # The reload must come after the watcher subscribed (a condition, polled; never a delay).
        for _ in range(2400):
            if run(daemon, "info", "--format", "{{.NEventsListener}}").stdout.strip() == "1":
                break
            time.sleep(0.025)
        else:
            raise AssertionError("`berth events` never subscribed")
        daemon.proc.send_signal(signal.SIGHUP)
        assert watcher.stdout is not None
        # Bounded, so a lost event fails the test instead of hanging the run.
        assert select.select([watcher.stdout], [], [], 60)[0], "no event within 60 s of the SIGHUP"
        assert watcher.stdout.readline().strip() == "daemon/reload"
    finally:
        watcher.terminate()
        watcher.wait(10)


def test_past_events_agree_with_docker(daemon: RunningDaemon) -> None:
    """`events`/`system events` over a closed window (--since/--until): the same lines from both CLIs."""
    since = run(daemon, "version", "--format", "{{.Server.Os}}")  # a request, so the clock below is berthd's too
    assert since.returncode == 0
    start = f"{time.time() - 1:.0f}"
    for name in ("ev-one", "ev-two"):
        assert run(daemon, "volume", "create", "--label", "ev=1", name).returncode == 0
        assert run(daemon, "volume", "rm", name).returncode == 0
    end = f"{time.time() + 1:.0f}"
    for args in ([], ["--format", "{{.Type}} {{.Action}} {{.Actor.ID}}"], ["--format", "json"],
                 ["--filter", "type=volume", "--filter", "event=create", "--format", "{{.Actor.ID}}"]):
        window = ["--since", start, "--until", end, *args]
        ours, theirs = run(daemon, "events", *window), run(daemon, "events", *window, tool="docker")
        assert (ours.returncode, ours.stdout, ours.stderr) == (theirs.returncode, theirs.stdout, theirs.stderr), args
        assert run(daemon, "system", "events", *window).stdout == ours.stdout
    assert "volume create ev-two" in run(daemon, "events", "--since", start, "--until", end, "--format",
                                         "{{.Type}} {{.Action}} {{.Actor.ID}}").stdout


@pytest.mark.parametrize(
    ("args", "code", "line"),
    [
        (["verson"], 125, "berth: 'verson' is not a berth command."),
        (["version", "--bogus"], 125, "berth: unknown flag: --bogus"),
        (["--nope", "version"], 125, "berth: unknown flag: --nope"),
        # docker 28: a --format that does not parse exits 64.
        (["version", "--format", "{{.Server.Version"], 64, "template parsing error: template: version:1: "),
    ],
)
def test_usage_errors_are_one_line_exit_125(daemon: RunningDaemon, args: list[str], code: int, line: str) -> None:
    out = run(daemon, *args)
    assert out.returncode == code
    assert out.stderr.startswith(line)
    assert "Traceback" not in out.stderr


def test_suggests_the_closest_command(daemon: RunningDaemon) -> None:
    assert "Did you mean 'version'?" in run(daemon, "verson").stderr


def test_unreachable_engine_is_one_line(tmp_path: Path) -> None:
    out = subprocess.run([BERTH, "-H", f"unix://{tmp_path}/none.sock", "version"], capture_output=True, text=True)
    assert out.returncode == 1
    assert out.stderr.count("\n") == 1
    assert out.stderr.startswith(f"Cannot connect to the Berth daemon at unix://{tmp_path}/none.sock; is it running? ")
