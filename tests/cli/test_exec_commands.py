"""`berth exec`, `berth stats`, `berth port`: side by side with the real docker CLI on one berthd, and
`exec -it` under a real pty (typing, resize, ctrl-p ctrl-q, exit status)."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator

import pytest

from tests.cli.conftest import BERTH, Tools
from tests.cli.test_run_tty import DEADLINE, Terminal, assert_resize_reaches, shell_prompt

pytestmark = pytest.mark.needs_root


@pytest.fixture(scope="module")
def sleeper(tools: Tools, busybox: str) -> str:
    """A running container the exec tests share (its state is not changed by them)."""
    tools.ok("docker", "run", "-d", "--name", "sleeper", "--label", "com.example.x=forty-two", busybox,
             "sleep", "3600")
    return "sleeper"


def test_exec_output_and_exit_code_match_docker(tools: Tools, sleeper: str) -> None:
    for args in (["sh", "-c", "echo out; echo err >&2; exit 3"], ["true"], ["/nonexistent"]):
        ours = tools.berth("exec", sleeper, *args)
        theirs = tools.docker("exec", sleeper, *args)
        assert ours.returncode == theirs.returncode, (args, ours.stderr, theirs.stderr)
        assert ours.stdout == theirs.stdout
        assert "Traceback" not in ours.stderr
    out = tools.berth("exec", sleeper, "sh", "-c", "echo err >&2; exit 5")
    assert (out.returncode, out.stderr) == (5, "err\n")


def test_exec_env_workdir_user_reach_the_process(tools: Tools, sleeper: str, tmp_path: os.PathLike[str]) -> None:
    env_file = os.path.join(tmp_path, "env")
    with open(env_file, "w") as f:
        f.write("# comment\nFROM_FILE=yes\n")
    args = ["-e", "A=1", "--env-file", env_file, "-w", "/tmp", "-u", "1000:1000", sleeper,
            "sh", "-c", 'echo "$A $FROM_FILE $(pwd) $(id -u):$(id -g)"']
    assert tools.ok("berth", "exec", *args) == tools.ok("docker", "exec", *args) == "1 yes /tmp 1000:1000\n"


def test_exec_interactive_pipes_stdin(tools: Tools, sleeper: str) -> None:
    out = tools.berth("exec", "-i", sleeper, "sh", "-c", "tr a-z A-Z; echo done", stdin="hello\n")
    assert (out.returncode, out.stdout) == (0, "HELLO\ndone\n")


def test_exec_detached_runs_in_the_background(tools: Tools, sleeper: str) -> None:
    out = tools.berth("exec", "-d", sleeper, "sh", "-c", "echo ran > /tmp/detached-mark")
    assert (out.returncode, out.stdout) == (0, "")
    # The detached process records its own end; read back until the file is there (bounded).
    end = time.monotonic() + DEADLINE
    while tools.docker("exec", sleeper, "cat", "/tmp/detached-mark").stdout != "ran\n":
        assert time.monotonic() < end, "the detached exec never ran"


def test_exec_errors_are_docker_lines(tools: Tools, busybox: str, sleeper: str) -> None:
    missing = tools.berth("exec", "no-such-container", "true")
    assert missing.returncode == tools.docker("exec", "no-such-container", "true").returncode == 1
    assert missing.stderr.startswith("Error response from daemon: ") and "no-such-container" in missing.stderr
    tools.ok("docker", "create", "--name", "exec-stopped", busybox, "true")
    stopped = tools.berth("exec", "exec-stopped", "true")
    assert stopped.returncode == 1 and stopped.stderr.startswith("Error response from daemon: ")
    assert len(stopped.stderr.splitlines()) == 1
    usage = tools.berth("exec", sleeper)
    assert usage.returncode == 1 and "requires at least 2 arguments" in usage.stderr


def test_exec_it_without_a_terminal_is_refused_like_docker(tools: Tools, sleeper: str) -> None:
    ours = tools.berth("exec", "-it", sleeper, "true", stdin="")
    theirs = tools.docker("exec", "-it", sleeper, "true", stdin="")
    assert ours.returncode == theirs.returncode == 1
    assert "the input device is not a TTY" in ours.stderr and "the input device is not a TTY" in theirs.stderr


@pytest.fixture
def exec_shell(tools: Tools, sleeper: str) -> Iterator[Terminal]:
    with shell_prompt([BERTH, "exec", "-it", sleeper, "sh"], tools.daemon.env(), sleeper) as term:
        yield term


def test_exec_it_typed_command_runs(exec_shell: Terminal) -> None:
    exec_shell.type(b"echo $((6 * 7))\n")
    assert b"\r\n42\r\n" in exec_shell.expect(b"42\r\n")


def test_exec_it_resize_reaches_the_process(exec_shell: Terminal) -> None:
    assert_resize_reaches(exec_shell, 31, 97)


def test_exec_it_exit_status_is_the_shells(exec_shell: Terminal) -> None:
    exec_shell.type(b"exit 4\n")
    assert exec_shell.exit_code() == 4


def test_exec_it_ctrl_p_ctrl_q_detaches(exec_shell: Terminal, tools: Tools, sleeper: str) -> None:
    exec_shell.type(b"\x10\x11")
    assert exec_shell.exit_code() == 0
    assert tools.ok("docker", "inspect", "-f", "{{.State.Running}}", sleeper) == "true\n"


def test_exec_it_custom_detach_keys(tools: Tools, sleeper: str) -> None:
    argv = [BERTH, "container", "exec", "-it", "--detach-keys", "ctrl-x,x", sleeper, "sh"]
    with shell_prompt(argv, tools.daemon.env(), sleeper) as term:
        term.type(b"\x10\x11echo still-here\n")  # ctrl-p ctrl-q is just input now
        term.expect(b"still-here\r\n")
        term.type(b"\x18x")
        assert term.exit_code() == 0


# ---------------------------------------------------------------- stats
STATS_COLUMNS = ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS"]


def _columns(line: str) -> list[str]:
    return re.split(r"\s{3,}", line.strip())


def test_stats_no_stream_table_agrees_with_docker(tools: Tools, sleeper: str) -> None:
    ours = tools.ok("berth", "stats", "--no-stream", sleeper).splitlines()
    theirs = tools.ok("docker", "stats", "--no-stream", sleeper).splitlines()
    assert _columns(ours[0]) == _columns(theirs[0]) == STATS_COLUMNS
    assert len(ours) == len(theirs) == 2
    mine, docker_row = _columns(ours[1]), _columns(theirs[1])
    # Samples differ from one read to the next; what must agree is who, the limit, and the shapes.
    assert mine[:2] == docker_row[:2]
    assert mine[3].split(" / ")[1] == docker_row[3].split(" / ")[1]
    assert mine[7] == docker_row[7]  # PIDS: the sleeper plus any shells the exec tests detached from
    for value in (mine[2], mine[4]):
        assert re.fullmatch(r"\d+\.\d\d%", value)
    assert re.fullmatch(r"[\d.]+[KMG]?i?B / [\d.]+[KMG]?i?B", mine[3])


def test_stats_format_and_all(tools: Tools, busybox: str, sleeper: str) -> None:
    tools.ok("docker", "create", "--name", "stats-stopped", busybox, "true")
    fmt = "{{.Name}} {{.PIDs}} {{.MemPerc}}"
    ours = sorted(tools.ok("berth", "stats", "--no-stream", "-a", "--format", fmt).splitlines())
    theirs = sorted(tools.ok("docker", "stats", "--no-stream", "-a", "--format", fmt).splitlines())
    assert [line.split()[:2] for line in ours] == [line.split()[:2] for line in theirs]
    assert "-- -- --" in ours  # a stopped container: no sample, docker's dashes
    full = tools.ok("berth", "stats", "--no-stream", "--no-trunc", "--format", "{{.ID}}", sleeper).strip()
    assert full == tools.ok("docker", "inspect", "-f", "{{.Id}}", sleeper).strip()
    rows = [json.loads(line) for line in tools.ok("berth", "stats", "--no-stream", "--format", "json",
                                                   sleeper).splitlines()]
    assert rows[0]["Name"] == sleeper and set(rows[0]) >= {"CPUPerc", "MemUsage", "NetIO", "BlockIO", "PIDs"}


def test_stats_streams_redrawn_tables(tools: Tools, sleeper: str) -> None:
    # The live view: read two full redraws from a real stream, then stop it.
    import subprocess

    proc = subprocess.Popen([BERTH, "stats", sleeper], env=tools.daemon.env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        seen = b""
        end = time.monotonic() + DEADLINE
        while seen.count(b"\033[2J\033[H") < 3:
            assert time.monotonic() < end, seen
            seen += os.read(proc.stdout.fileno(), 4096)
    finally:
        proc.kill()
        proc.wait()
    frames = [f for f in seen.decode().split("\033[2J\033[H") if f]
    assert _columns(frames[1].splitlines()[0]) == STATS_COLUMNS
    assert _columns(frames[1].splitlines()[1])[1] == sleeper


def test_live_stats_pick_up_containers_started_later(tools: Tools, busybox: str, sleeper: str) -> None:
    import subprocess

    proc = subprocess.Popen([BERTH, "stats", "--format", "table {{.Name}}"], env=tools.daemon.env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        seen = b""
        end = time.monotonic() + DEADLINE
        while b"\033[2J\033[H" not in seen:  # the first frame is drawn
            assert time.monotonic() < end, seen
            seen += os.read(proc.stdout.fileno(), 4096)
        tools.ok("docker", "run", "-d", "--name", "late-comer", busybox, "sleep", "3600")
        while b"late-comer" not in seen.rpartition(b"\033[2J\033[H")[0]:  # in a finished frame
            assert time.monotonic() < end, seen[-500:]
            seen += os.read(proc.stdout.fileno(), 4096)
    finally:
        proc.kill()
        proc.wait()
        tools.docker("rm", "-f", "late-comer")


def test_a_busy_container_shows_cpu_use_in_both_tools(tools: Tools, busybox: str) -> None:
    tools.ok("docker", "run", "-d", "--name", "busy", busybox, "sh", "-c", "while :; do :; done")
    try:
        fmt = "{{.CPUPerc}}"
        ours = float(tools.ok("berth", "stats", "--no-stream", "--format", fmt, "busy").strip().rstrip("%"))
        theirs = float(tools.ok("docker", "stats", "--no-stream", "--format", fmt, "busy").strip().rstrip("%"))
        # A spinning shell uses about one CPU (100%); on a loaded host less, but never next to nothing.
        assert ours > 10.0 and theirs > 10.0, (ours, theirs)
    finally:
        tools.ok("docker", "rm", "-f", "busy")


def test_cpu_percent_is_dockers_formula() -> None:
    from engine.cli.commands.stats import cpu_percent, stats_row

    sample = {
        "cpu_stats": {"cpu_usage": {"total_usage": 3_000_000}, "system_cpu_usage": 20_000_000, "online_cpus": 2},
        "precpu_stats": {"cpu_usage": {"total_usage": 1_000_000}, "system_cpu_usage": 10_000_000},
        "memory_stats": {"usage": 10 * 1024 * 1024, "limit": 100 * 1024 * 1024,
                         "stats": {"inactive_file": 2 * 1024 * 1024}},
        "networks": {"eth0": {"rx_bytes": 1500, "tx_bytes": 648}},
        "blkio_stats": {"io_service_bytes_recursive": [{"op": "read", "value": 4096}, {"op": "write", "value": 0}]},
        "pids_stats": {"current": 3},
    }
    assert cpu_percent(sample) == pytest.approx(40.0)  # 2/10 of the host's time, times 2 CPUs
    row = stats_row(sample, "c", "a" * 64, "/web")
    assert row == {"Container": "c", "ID": "a" * 12, "Name": "web", "CPUPerc": "40.00%",
                   "MemUsage": "8MiB / 100MiB", "MemPerc": "8.00%", "NetIO": "1.5kB / 648B",
                   "BlockIO": "4.1kB / 0B", "PIDs": "3"}


# ---------------------------------------------------------------- templates over ps rows
def _ps_formats_agree(tools: Tools, container: str, *formats: str) -> None:
    for fmt in formats:
        ours = tools.berth("ps", "--filter", f"name={container}", "--format", fmt)
        theirs = tools.docker("ps", "--filter", f"name={container}", "--format", fmt)
        assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout), fmt


def test_ps_label_method_and_functions_agree_with_docker(tools: Tools, sleeper: str) -> None:
    _ps_formats_agree(tools, sleeper, '{{.Label "com.example.x"}}', '{{.Label "nope"}}|{{upper .Names}}',
                      '{{json .Labels}}', '{{join (split .Labels "=") ","}}', '{{printf "%s-%s" .Names .State}}',
                      '{{title .State}} {{lower .State}} {{truncate .Names 3}}', '{{pad .State 1 2}}|')


def test_inspect_json_of_labels_agrees_with_docker(tools: Tools, sleeper: str) -> None:
    fmt = "{{json .Config.Labels}} {{index .Config.Labels \"com.example.x\"}}"
    assert tools.ok("berth", "inspect", "-f", fmt, sleeper) == tools.ok("docker", "inspect", "-f", fmt, sleeper)


def test_template_errors_read_like_docker(tools: Tools, sleeper: str) -> None:
    for fmt in ("{{.Names | nosuchfunc}}", "{{.Names", '{{.Names "x"}}'):
        ours = tools.berth("ps", "--format", fmt)
        theirs = tools.docker("ps", "--format", fmt)
        assert ours.returncode == theirs.returncode == 1, fmt
        assert ours.stderr.split(": template: ")[0] == theirs.stderr.split(": template: ")[0], fmt
    parse = tools.berth("ps", "--format", "{{.Names | nosuchfunc}}").stderr
    assert parse == 'failed to parse template: template: :1: function "nosuchfunc" not defined\n'
    # inspect words it as docker's inspect does.
    ours = tools.berth("inspect", "-f", "{{.Name | nosuchfunc}}", sleeper)
    theirs = tools.docker("inspect", "-f", "{{.Name | nosuchfunc}}", sleeper)
    assert ours.returncode != 0 and theirs.returncode != 0
    assert "template parsing error: " in ours.stderr and "template parsing error: " in theirs.stderr


def test_more_template_functions_agree_with_docker(tools: Tools, sleeper: str) -> None:
    _ps_formats_agree(tools, sleeper, '{{printf "%-10s|%5d|%q|%v|%x" .Names 42 .State .Labels 255}}',
                      '{{printf "%s %%" .Names}}', '{{title "hello world"}}', '{{println .Names}}',
                      '{{range split .Labels ","}}<{{.}}>{{end}}', '{{if eq .State "running"}}up{{else}}down{{end}}',
                      '{{len .Names}}')
    for fmt in ('{{printf "%q" .Name}}', '{{.State.Pid | printf "%T"}}', '{{join .Config.Cmd " "}}',
                '{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}'):
        assert tools.ok("berth", "inspect", "-f", fmt, sleeper) == tools.ok("docker", "inspect", "-f", fmt, sleeper)


def test_unknown_fields_of_a_list_are_errors_like_docker(tools: Tools, sleeper: str) -> None:
    for fmt, says in (("{{.Nope}}", "can't evaluate field Nope in type "),
                      ("{{.Label}}", "wrong number of args for Label: want 1 got 0")):
        ours = tools.berth("ps", "--format", fmt)
        theirs = tools.docker("ps", "--format", fmt)
        assert ours.returncode == theirs.returncode == 1
        assert ours.stderr.startswith("failed to execute template: ") and says in ours.stderr and says in theirs.stderr
