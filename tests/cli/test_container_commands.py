"""Container commands: `berth` and `docker` against one berthd must agree on every effect."""

from __future__ import annotations

import json
import re
import signal
import subprocess

import pytest

from tests.cli.conftest import BERTH, Tools

pytestmark = pytest.mark.needs_root


def _names(tools: Tools, tool: str, *args: str) -> list[str]:
    return tools.ok(tool, "ps", *args, "--format", "{{.Names}}").split()


def test_berth_run_detached_is_running_for_docker(tools: Tools, busybox: str) -> None:
    cid = tools.ok("berth", "run", "-d", "--name", "b-detached", busybox, "sleep", "300").strip()
    assert re.fullmatch(r"[0-9a-f]{64}", cid)
    assert "b-detached" in _names(tools, "docker")
    assert tools.ok("docker", "inspect", "-f", "{{.State.Running}} {{.Id}}", "b-detached").split() == ["true", cid]


def test_docker_run_detached_is_listed_by_berth(tools: Tools, busybox: str) -> None:
    tools.ok("docker", "run", "-d", "--name", "d-detached", busybox, "sleep", "300")
    assert "d-detached" in _names(tools, "berth")
    full_id = tools.ok("docker", "inspect", "-f", "{{.Id}}", "d-detached")
    assert tools.ok("berth", "ps", "-q", "--no-trunc", "--filter", "name=d-detached") == full_id


def test_ps_columns_and_values_agree_with_docker(tools: Tools, busybox: str) -> None:
    tools.ok("docker", "run", "-d", "--name", "ps-long", "--label", "tier=web", busybox, "sh", "-c",
             "echo a long command line that docker truncates; sleep 300")
    assert tools.docker("run", "--name", "ps-exited", busybox, "sh", "-c", "exit 4").returncode == 4
    # Time columns ("2 seconds ago") may tick between the two calls: compare everything else.
    stable = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.Names}}\t{{.State}}\t{{.Labels}}\t{{.Ports}}"
    for args in (["-a"], [], ["-a", "--no-trunc"], ["-a", "--filter", "status=exited"],
                 ["-a", "--filter", "label=tier=web"]):
        assert tools.ok("berth", "ps", *args, "--format", stable) == tools.ok("docker", "ps", *args, "--format", stable)
        assert tools.ok("berth", "ps", *args, "-q") == tools.ok("docker", "ps", *args, "-q")
    ours, theirs = tools.ok("berth", "ps", "-a").splitlines(), tools.ok("docker", "ps", "-a").splitlines()
    assert ours[0].split() == theirs[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS",
                                                    "PORTS", "NAMES"]
    long_row = next(line for line in ours if "ps-long" in line)
    assert '"sh -c \'echo a long …"' in long_row
    exited_row = next(line for line in ours if "ps-exited" in line)
    assert "Exited (4)" in exited_row and " ago " in exited_row


def test_ps_last_counts_stopped_containers_too(tools: Tools, busybox: str) -> None:
    assert tools.docker("run", "--name", "last-exited", busybox, "true").returncode == 0
    assert tools.ok("berth", "ps", "-l", "--format", "{{.Names}}") == "last-exited\n"
    assert tools.ok("berth", "ps", "-n", "1", "--format", "{{.Names}}") == "last-exited\n"


def test_ps_last_agrees_with_docker(tools: Tools, busybox: str) -> None:
    assert tools.docker("run", "--name", "last-exited-2", busybox, "true").returncode == 0
    assert tools.ok("docker", "ps", "-l", "--format", "{{.Names}}") == "last-exited-2\n"


def test_ps_json_rows_match_docker_fields(tools: Tools, busybox: str) -> None:
    tools.ok("docker", "run", "-d", "--name", "ps-json", busybox, "sleep", "300")
    ours = json.loads(tools.ok("berth", "ps", "--filter", "name=ps-json", "--format", "json"))
    theirs = json.loads(tools.ok("docker", "ps", "--filter", "name=ps-json", "--format", "json"))
    assert set(ours) <= set(theirs)
    for key in ("ID", "Image", "Command", "Names", "State", "Labels", "Mounts", "Size", "CreatedAt"):
        assert ours[key] == theirs[key], key


def test_inspect_format_agrees(tools: Tools, busybox: str) -> None:
    tools.ok("berth", "run", "-d", "--name", "insp", "-e", "K=v", busybox, "sleep", "300")
    for fmt in ("{{.Name}} {{.State.Status}} {{.Config.Image}}", "{{json .Config.Env}}", "{{.Id}}",
                "{{range .Config.Cmd}}[{{.}}]{{end}}", "{{.HostConfig.NetworkMode}}"):
        for extra in ([], ["--type", "container"]):
            ours = tools.berth("inspect", *extra, "-f", fmt, "insp")
            theirs = tools.docker("inspect", *extra, "-f", fmt, "insp")
            assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout), fmt
    assert tools.ok("berth", "container", "inspect", "-f", "{{.Name}}", "insp") == "/insp\n"
    ours_json = json.loads(tools.ok("berth", "inspect", "insp"))
    assert ours_json == json.loads(tools.ok("docker", "inspect", "insp"))


def test_create_flags_reach_the_engine_like_docker(tools: Tools, busybox: str) -> None:
    flags = ["-e", "A=1", "-l", "k=v", "-w", "/tmp", "-u", "1000", "-h", "hh", "-m", "64m", "--cpus", "0.5",
             "--pids-limit", "50", "--cap-add", "net_admin", "--cap-drop", "CHOWN", "--read-only", "--restart",
             "on-failure:2", "--tmpfs", "/run:size=1m", "-v", "/tmp:/mnt:ro", "--init", "--stop-signal", "SIGINT",
             "--entrypoint", "/bin/sh", "-i", "-t"]
    tools.ok("berth", "create", "--name", "flags-berth", *flags, busybox, "-c", "echo $A")
    tools.ok("docker", "create", "--name", "flags-docker", *flags, busybox, "-c", "echo $A")
    fields = ["Config.Hostname", "Config.User", "Config.Env", "Config.Cmd", "Config.Entrypoint", "Config.WorkingDir",
              "Config.Labels", "Config.StopSignal", "Config.Tty", "Config.OpenStdin", "Config.AttachStdin",
              "Config.AttachStdout", "Config.StdinOnce", "HostConfig.Binds", "HostConfig.RestartPolicy",
              "HostConfig.CapAdd", "HostConfig.CapDrop", "HostConfig.ReadonlyRootfs", "HostConfig.Tmpfs",
              "HostConfig.Memory", "HostConfig.NanoCpus", "HostConfig.PidsLimit", "HostConfig.Init",
              "HostConfig.Privileged", "HostConfig.AutoRemove"]
    fmt = "\n".join(f"{{{{json .{f}}}}}" for f in fields)
    ours = tools.ok("docker", "inspect", "-f", fmt, "flags-berth").splitlines()
    theirs = tools.ok("docker", "inspect", "-f", fmt, "flags-docker").splitlines()
    assert dict(zip(fields, ours, strict=True)) == dict(zip(fields, theirs, strict=True))


def test_start_attach_runs_with_the_created_settings(tools: Tools, busybox: str) -> None:
    tools.ok("berth", "create", "--name", "sa", "-e", "A=1", "-w", "/tmp", "-u", "1000", "-h", "hh", busybox,
             "sh", "-c", 'echo "$A $(pwd) $(id -u) $(hostname)"; echo to-stderr >&2; exit 6')
    out = tools.berth("start", "-a", "sa")
    assert (out.returncode, out.stdout) == (6, "1 /tmp 1000 hh\n")
    assert "to-stderr\n" in out.stderr
    assert tools.ok("docker", "inspect", "-f", "{{.State.ExitCode}}", "sa") == "6\n"


def test_run_exit_codes_and_streams_match_docker(tools: Tools, busybox: str) -> None:
    for args in (["sh", "-c", "echo out; echo err >&2; exit 3"], ["/nonexistent"], ["true"]):
        ours = tools.berth("run", "--rm", busybox, *args)
        theirs = tools.docker("run", "--rm", busybox, *args)
        assert ours.returncode == theirs.returncode, args
        assert ours.stdout == theirs.stdout
        assert "Traceback" not in ours.stderr
    assert tools.berth("run", "--rm", busybox, "/nonexistent").returncode == 127


def test_run_rm_removes_the_container(tools: Tools, busybox: str) -> None:
    assert tools.ok("berth", "run", "--rm", "--name", "gone", busybox, "echo", "bye") == "bye\n"
    assert tools.docker("inspect", "gone").returncode == 1


def test_run_interactive_reads_stdin_until_eof(tools: Tools, busybox: str) -> None:
    out = tools.berth("run", "-i", "--rm", busybox, "sh", "-c", "tr a-z A-Z; echo done", stdin="hello\nworld\n")
    assert (out.returncode, out.stdout) == (0, "HELLO\nWORLD\ndone\n")


def test_lifecycle_verbs_are_seen_by_docker(tools: Tools, busybox: str) -> None:
    tools.ok("docker", "run", "-d", "--name", "life", busybox, "sleep", "300")

    def state() -> str:
        return tools.ok("docker", "inspect", "-f", "{{.State.Status}}", "life").strip()

    assert tools.ok("berth", "pause", "life") == "life\n" and state() == "paused"
    assert tools.ok("berth", "unpause", "life") == "life\n" and state() == "running"
    assert tools.ok("berth", "stop", "-t", "1", "life") == "life\n" and state() == "exited"
    assert tools.ok("berth", "start", "life") == "life\n" and state() == "running"
    assert tools.ok("berth", "restart", "-t", "1", "life") == "life\n" and state() == "running"
    assert tools.ok("berth", "kill", "-s", "KILL", "life") == "life\n"
    assert tools.ok("berth", "wait", "life") == "137\n"
    assert tools.ok("docker", "inspect", "-f", "{{.State.ExitCode}}", "life") == "137\n"
    assert tools.ok("berth", "rm", "life") == "life\n"
    assert tools.docker("inspect", "life").returncode == 1


def test_rm_force_removes_a_running_container(tools: Tools, busybox: str) -> None:
    tools.ok("docker", "run", "-d", "--name", "forced", busybox, "sleep", "300")
    refused = tools.berth("rm", "forced")
    assert refused.returncode == 1 and refused.stderr.startswith("Error response from daemon:")
    assert tools.ok("berth", "rm", "-f", "forced") == "forced\n"
    assert "forced" not in _names(tools, "docker", "-a")


def test_logs_agree_with_docker(tools: Tools, busybox: str) -> None:
    tools.ok("docker", "run", "--name", "chatty", busybox, "sh", "-c", "echo one; echo two >&2; echo three")
    for args in ([], ["--tail", "1"], ["-t"], ["--since", "1h"], ["--until", "1h"], ["-f"]):
        ours, theirs = tools.berth("logs", *args, "chatty"), tools.docker("logs", *args, "chatty")
        assert (ours.returncode, ours.stdout, ours.stderr) == (theirs.returncode, theirs.stdout, theirs.stderr), args


def test_attach_pipes_stdin_and_returns_the_exit_code(tools: Tools, busybox: str) -> None:
    tools.ok("docker", "run", "-d", "-i", "--name", "att", busybox, "sh")
    out = tools.berth("attach", "att", stdin="echo attached\nexit 5\n")
    assert (out.returncode, out.stdout) == (5, "attached\n")


def test_wait_prints_each_exit_code(tools: Tools, busybox: str) -> None:
    assert tools.docker("run", "--name", "w1", busybox, "sh", "-c", "exit 2").returncode == 2
    tools.ok("berth", "create", "--name", "w2", busybox, "true")
    tools.ok("berth", "start", "w2")
    assert tools.ok("berth", "wait", "w1", "w2") == tools.ok("docker", "wait", "w1", "w2") == "2\n0\n"


def test_signals_to_an_attached_run_reach_the_container(tools: Tools, busybox: str) -> None:
    script = 'trap "echo got-term; exit 9" TERM; echo ready; while true; do sleep 0.1; done'
    proc = subprocess.Popen([BERTH, "run", "--rm", busybox, "sh", "-c", script], env=tools.daemon.env(),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGTERM)
        assert proc.stdout.read() == "got-term\n"
        assert proc.wait(60) == 9
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
