"""engine/cli/fast.py (what the `berth` launcher runs first) prints what engine/cli/main.py prints.

Each case runs the launcher (fast path) and the full argparse path as separate
processes against the same berthd and compares stdout, stderr and exit status.
The CREATED column ("2 seconds ago") may tick between two calls, so a case runs
fast, full, fast: with at most one tick in between, the full output equals one
of the two fast ones; a real difference never does (the triple is retried a few
times in case a loaded machine let two ticks through).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import fast
from tests.api.conftest import REPO
from tests.cli.conftest import BERTH, Tools

pytestmark = pytest.mark.needs_root

FULL_PATH = "import sys; from engine.cli.main import main; sys.exit(main())"
HANDLED = (["ps"], ["ps", "-a"], ["ps", "-aq"], ["ps", "-q"], ["ps", "--all", "--no-trunc"], ["ps", "-as"],
           ["ps", "-a", "--size", "-q"], ["ps", "-l"], ["ps", "--latest"], ["container", "ls", "-a"],
           ["container", "list"], ["images"], ["images", "-a"], ["images", "-q"], ["images", "--digests"],
           ["images", "--no-trunc"], ["image", "ls", "-aq"], ["version"], ["info"],
           ["system", "info"],
           # The everyday forms with values (issue #8): filters, formats, -n, inspect, logs.
           ["ps", "-a", "--format", "{{.Names}} {{.State}}"], ["ps", "-n", "1"], ["ps", "-a", "-n", "2"],
           ["ps", "--last=2"], ["ps", "-af", "status=exited"], ["ps", "-a", "--filter", "label=tier=web"],
           ["ps", "-a", "-f", "name=fp-", "-f", "status=created", "--format", "table {{.Names}}\t{{.Status}}"],
           ["ps", "-a", "--format", "json"], ["ps", "-a", "--format", "{{json .}}"],
           ["ps", "-a", "--format", '{{.Names}} {{.Label "tier"}}'], ["ps", "-q", "--format", "{{.Names}}"],
           ["ps", "-a", "--format", "table"], ["ps", "-a", "--format", ""], ["ps", "-a", "--no-trunc", "--format",
                                                                                "{{.ID}} {{.Command}}"],
           ["images", "busybox"], ["images", "--format", "json"], ["images", "--format", "{{.Repository}}:{{.Tag}}"],
           ["images", "-f", "reference=fp-repo/*", "--format", "table {{.Repository}}\t{{.Tag}}\t{{.ID}}"],
           ["inspect", "fp-exited"], ["inspect", "fp-running", "fp-created"], ["container", "inspect", "fp-logs"],
           ["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "fp-exited"],
           ["inspect", "--format", "json", "fp-running"], ["inspect", "--format={{json .Config.Labels}}", "fp-running"],
           ["logs", "fp-logs"], ["logs", "-t", "fp-logs"], ["logs", "--tail", "2", "fp-logs"], ["logs", "-n", "1",
                                                                                                  "fp-logs"],
           ["logs", "--details", "fp-logs"], ["container", "logs", "fp-exited"],
           ["inspect", "busybox"], ["inspect", "fp-exited", "busybox:latest"],
           ["image", "inspect", "fp-repo/busybox:v1"],
           ["image", "inspect", "-f", "{{.Id}} {{.RepoTags}}", "busybox"])
FALLBACK = (["ps", "--help"], ["ps", "-x"], ["ps", "stray"], ["ps", "--all=true"], ["images", "-h"], ["ps", "-"],
            ["ps", "--"], ["ps", "-n", "-1"], ["ps", "-f"], ["ps", "-fa", "status=exited"], ["ps", "--filter", "bad"],
            ["ps", "--format", "{{.Nope}}"], ["ps", "--format", "{{.ID"], ["inspect", "fp-none"],
            ["inspect", "--type", "container", "fp-running"], ["inspect", "-f", "{{index .Config.Cmd 9}}", "fp-exited"],
            ["image", "inspect", "fp-exited"], ["container", "inspect", "busybox"], ["logs", "-f", "fp-exited"],
            ["logs", "--since", "1h", "fp-logs"],
            ["logs", "fp-none"],
            ["version", "-f", "{{.Server.Version}}"], ["version", "--format", "json"], ["version", "extra"],
            ["info", "-f", "{{.Containers}}"], ["system", "info", "--bogus"])

def _output(tools: Tools, argv: list[str]) -> tuple[int, str, str]:
    out = subprocess.run(argv, env=tools.daemon.env(), capture_output=True, text=True, timeout=60,
                         stdin=subprocess.DEVNULL, cwd=REPO)
    return out.returncode, out.stdout, out.stderr


def _assert_same(tools: Tools, args: list[str]) -> None:
    for _ in range(4):
        first = _output(tools, [BERTH, *args])
        full = _output(tools, [sys.executable, "-c", FULL_PATH, *args])
        second = _output(tools, [BERTH, *args])
        if full in (first, second):
            return
    assert full == first, f"berth {' '.join(args)}: the fast path and the full path differ"


@pytest.fixture(scope="module")
def listed(tools: Tools, busybox: str) -> Tools:
    """A running, two exited (one with logs on both streams) and a created container (one with a long command),
    two tags of one image."""
    tools.ok("docker", "run", "-d", "--network", "none", "--name", "fp-running", "--label", "tier=web", busybox,
             "sh", "-c", "echo a command longer than twenty characters; sleep 300")
    exited = tools.docker("run", "--network", "none", "--name", "fp-exited", busybox, "sh", "-c", "exit 3")
    assert exited.returncode == 3
    tools.ok("docker", "create", "--name", "fp-created", busybox, "true")
    tools.ok("docker", "run", "--network", "none", "--name", "fp-logs", busybox, "sh", "-c",
             "echo out1; echo err1 >&2; echo out2; echo '<&>'")
    tools.ok("docker", "tag", busybox, "fp-repo/busybox:v1")
    return tools


@pytest.mark.parametrize("args", HANDLED, ids=" ".join)
def test_fast_path_prints_what_the_full_path_prints(listed: Tools, args: list[str]) -> None:
    assert fast.run(args, listed.daemon.env()) is not None  # this path really answers the case
    _assert_same(listed, args)


@pytest.mark.parametrize("args", FALLBACK, ids=" ".join)
def test_other_forms_fall_back_to_the_full_path(listed: Tools, args: list[str]) -> None:
    try:
        answered = fast.run(args, listed.daemon.env())
    except Exception:  # fast.main runs the full path for any of them
        answered = None
    assert answered is None
    _assert_same(listed, args)


def test_errors_are_the_full_paths(tools: Tools, tmp_path: Path) -> None:
    # No engine at the address: the fast path's connect fails and the full path words the error.
    env = dict(tools.daemon.env(), DOCKER_HOST=f"unix://{tmp_path}/none.sock")
    ours = subprocess.run([BERTH, "ps"], env=env, capture_output=True, text=True, timeout=60)
    full = subprocess.run([sys.executable, "-c", FULL_PATH, "ps"], env=env, capture_output=True, text=True,
                          timeout=60, cwd=REPO)
    assert (ours.returncode, ours.stdout, ours.stderr) == (full.returncode, full.stdout, full.stderr)
    assert ours.returncode == 1 and "Cannot connect to the Berth daemon" in ours.stderr


def test_engine_resolution_matches_the_full_paths(tmp_path: Path) -> None:
    from engine import paths
    from engine.client.protocol import CLIENT_API_VERSION

    assert ".".join(map(str, fast.API_VERSION)) == CLIENT_API_VERSION
    config = os.path.join(tmp_path, "config.json")
    env = {"DOCKER_CONFIG": str(tmp_path)}
    assert fast.engine_socket(env) == str(paths.default_socket())
    with open(config, "w") as f:
        f.write('{"currentContext": "default", "auths": {}}')
    assert fast.engine_socket(env) == str(paths.default_socket())
    with open(config, "w") as f:
        f.write('{"currentContext": "remote"}')
    assert fast.engine_socket(env) is None  # a named context: the full path reads the store
    assert fast.engine_socket({"DOCKER_HOST": "unix:///run/x.sock", **env}) == "/run/x.sock"
    assert fast.engine_socket({"BERTH_HOST": "/run/y.sock", "DOCKER_HOST": "unix:///run/x.sock"}) == "/run/y.sock"
    assert fast.engine_socket({"DOCKER_HOST": "tcp://127.0.0.1:2375"}) is None
    assert fast.engine_socket({"DOCKER_CONTEXT": "remote", "DOCKER_CONFIG": str(tmp_path)}) is None


@pytest.mark.parametrize("indent", [None, 4])
@pytest.mark.parametrize("ensure_ascii", [True, False])
def test_json_writer_writes_what_json_writes(indent: int | None, ensure_ascii: bool) -> None:
    import json

    from engine.cli.gojson import dumps

    value = {"a": [1, -2.5e3, 1e100, "x\u00e9\n\"<&>\u2603", None, True, False, {}, [], [[{}]]],
             "b": float("nan"), "c": float("-inf"), "Ünï": {"k": (1, 2)}, "": ""}
    separators = (",", ":") if indent is None else None
    assert dumps(value, indent, ensure_ascii) == json.dumps(value, indent=indent, ensure_ascii=ensure_ascii,
                                                            separators=separators)
    scalars: list[object] = ["s", 0, 1.5, None, [], {}]
    for scalar in scalars:
        assert dumps(scalar, indent, ensure_ascii) == json.dumps(scalar, indent=indent, separators=separators)


def test_json_scanner_reads_what_json_reads() -> None:
    import json

    body = b' {"a": [1, -2.5e3, "x\\u00e9\\n", null, true, false, {}], "b": NaN} \n'
    parsed = fast.parse_json(body)
    assert parsed["a"] == json.loads(body)["a"] and parsed["b"] != parsed["b"]
    with pytest.raises(fast.Unhandled):
        fast.parse_json(b"[1] [2]")


def test_logs_into_a_closed_pipe_end_quietly(listed: Tools) -> None:
    listed.ok("docker", "run", "--network", "none", "--name", "fp-biglog", "busybox", "seq", "200000")
    out = subprocess.run(["sh", "-c", f"{BERTH} logs fp-biglog | head -n 2"],
                         env=listed.daemon.env(), capture_output=True, text=True, timeout=60)
    assert (out.stdout, out.stderr) == ("1\n2\n", "")
    status = subprocess.run(["bash", "-c", f"{BERTH} logs fp-biglog | head -n 1 >/dev/null; "
                                           "echo ${PIPESTATUS[0]}"], env=listed.daemon.env(), capture_output=True,
                            text=True, timeout=60)
    assert status.stdout == "0\n" and status.stderr == ""
