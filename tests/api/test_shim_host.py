"""The shared shim host: many containers in one supervisor process (engine/containers/shim_host.py)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.api.conftest import RunningDaemon, restartable_berthd
from tests.api.test_containers import _wait_for, docker_cli
from tests.api.test_shim_zygote import _cmdline, _parent, _processes_under

pytestmark = pytest.mark.needs_root


def _hosts(daemon: RunningDaemon) -> list[int]:
    titled = [p for p in _processes_under(daemon.root, b"berth-shim") if _cmdline(p).startswith(b"berth-shim-host")]
    # A container's init (or a create child) carries its host's title until it execs: not a host.
    return [p for p in titled if _parent_or_zero(p) not in titled and Path(f"/proc/{p}").exists()]


def _parent_or_zero(pid: int) -> int:
    try:
        return _parent(pid)
    except OSError:  # gone meanwhile
        return 0


def _inspect(daemon: RunningDaemon, name: str, field: str) -> str:
    return docker_cli(daemon, "inspect", "-f", "{{" + field + "}}", name).stdout.strip()


def _logs(daemon: RunningDaemon, name: str) -> str:
    return docker_cli(daemon, "logs", name).stdout


def test_two_containers_share_one_host_and_one_failing_spares_the_other(run_tag: str) -> None:
    with restartable_berthd(run_tag, "busybox") as berthd:
        daemon = berthd.daemon
        ticker = "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.05; done"
        for name in ("victim", "bystander"):
            out = docker_cli(daemon, "run", "-d", "--name", name, "--log-opt", "max-size=2k", "busybox",
                             "sh", "-c", ticker)
            assert out.returncode == 0, out.stderr
        [host] = _hosts(daemon)
        # One process supervises both: it is the subreaper that both inits were reparented to.
        for name in ("victim", "bystander"):
            assert _parent(int(_inspect(daemon, name, ".State.Pid"))) == host
            assert _inspect(daemon, name, ".State.Status") == "running"
        assert not [p for p in _processes_under(daemon.root, b"berth-shim") if _parent(p) != host and p != host]

        # The victim's log directory disappears: its next log rotation fails inside the host.
        victim_id = _inspect(daemon, "victim", ".Id")
        shutil.rmtree(daemon.root / "data" / "containers" / victim_id)
        host_log = next((daemon.root / "run" / "shimhosts").glob("*.log"))
        _wait_for(lambda: "cannot write its log" in host_log.read_text(), "the host to hit the victim's log fault")

        # The bystander goes on: its log still grows and rotates, exec and stop work, its exit is recorded.
        seen = _logs(daemon, "bystander").split()
        _wait_for(lambda: _logs(daemon, "bystander").split()[-1:] != seen[-1:], "the bystander's log to go on")
        assert docker_cli(daemon, "exec", "bystander", "echo", "still served").stdout == "still served\n"
        # The victim is still supervised too: exec reaches it, and its process is killed with a real status.
        assert docker_cli(daemon, "exec", "victim", "echo", "alive").stdout == "alive\n"
        assert docker_cli(daemon, "kill", "victim").returncode == 0
        assert docker_cli(daemon, "wait", "victim").stdout.strip() == "137"
        assert _inspect(daemon, "bystander", ".State.Status") == "running"
        assert docker_cli(daemon, "exec", "bystander", "true").returncode == 0
        assert docker_cli(daemon, "stop", "-t", "0", "bystander").returncode == 0
        assert _inspect(daemon, "bystander", ".State.ExitCode") == "137"
        assert Path(f"/proc/{host}").exists()


def test_containers_in_the_host_survive_a_killed_berthd(run_tag: str, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    with restartable_berthd(run_tag, "busybox") as berthd:
        daemon = berthd.daemon
        out = docker_cli(daemon, "run", "-d", "--name", "talker", "busybox", "sh", "-c",
                         "i=0; while true; do i=$((i+1)); echo line $i; sleep 0.05; done")
        assert out.returncode == 0, out.stderr
        out = docker_cli(daemon, "run", "-d", "--name", "quitter", "-v", f"{gate}:/gate", "busybox", "sh", "-c",
                         "while [ ! -e /gate/go ]; do sleep 0.05; done; exit 7")
        assert out.returncode == 0, out.stderr
        [host] = _hosts(daemon)
        quitter_pid = int(_inspect(daemon, "quitter", ".State.Pid"))

        berthd.halt(signal.SIGKILL)
        # While berthd is gone the host records the quitter's real exit code.
        (gate / "go").touch()
        _wait_for(lambda: not Path(f"/proc/{quitter_pid}").exists(), "the quitter to exit")
        assert Path(f"/proc/{host}").exists()
        daemon = berthd.start()

        assert _inspect(daemon, "quitter", ".State.Status") == "exited"
        assert _inspect(daemon, "quitter", ".State.ExitCode") == "7"
        seen = _logs(daemon, "talker").split()
        _wait_for(lambda: _logs(daemon, "talker").split()[-1:] != seen[-1:], "the talker's logs to continue")
        # The restarted berthd gives new containers to the host that is already running.
        assert docker_cli(daemon, "run", "-d", "--name", "late", "busybox", "sleep", "300").returncode == 0
        assert _hosts(daemon) == [host]
        assert _parent(int(_inspect(daemon, "late", ".State.Pid"))) == host
        assert docker_cli(daemon, "stop", "-t", "1", "talker").returncode == 0
        assert _inspect(daemon, "talker", ".State.ExitCode") == "137"
        (gate / "go").unlink()
        assert docker_cli(daemon, "start", "quitter").returncode == 0
        assert docker_cli(daemon, "exec", "quitter", "echo", "back").stdout == "back\n"


def test_a_full_host_is_retired_and_its_death_takes_only_its_containers(run_tag: str) -> None:
    with restartable_berthd(run_tag, "busybox", config={"shim-host-max-containers": 2}) as berthd:
        daemon = berthd.daemon
        for name in ("a1", "a2", "b1"):
            assert docker_cli(daemon, "run", "-d", "--name", name, "busybox", "sleep", "300").returncode == 0
        parents = {n: _parent(int(_inspect(daemon, n, ".State.Pid"))) for n in ("a1", "a2", "b1")}
        assert parents["a1"] == parents["a2"] != parents["b1"]
        assert sorted(_hosts(daemon)) == sorted({parents["a1"], parents["b1"]})

        # The cost of sharing: a dead host takes all its containers (exit 255, like a killed shim), no others.
        os.kill(parents["a1"], signal.SIGKILL)
        for name in ("a1", "a2"):
            _wait_for(lambda n=name: _inspect(daemon, n, ".State.Status") == "exited", f"{name}'s run to end")
            assert _inspect(daemon, name, ".State.ExitCode") == "255"
            assert "supervisor disappeared" in _inspect(daemon, name, ".State.Error")
        assert _inspect(daemon, "b1", ".State.Status") == "running"
        assert docker_cli(daemon, "exec", "b1", "echo", "spared").stdout == "spared\n"

        # A retired host exits with its last container; berthd's own host waits for more.
        assert docker_cli(daemon, "run", "-d", "--name", "b2", "busybox", "sleep", "300").returncode == 0
        assert _parent(int(_inspect(daemon, "b2", ".State.Pid"))) == parents["b1"]
        assert docker_cli(daemon, "rm", "-f", "b1", "b2").returncode == 0
        _wait_for(lambda: not Path(f"/proc/{parents['b1']}").exists(), "the retired host to exit")
        assert docker_cli(daemon, "run", "-d", "--name", "c1", "busybox", "sleep", "300").returncode == 0
        [c_host] = _hosts(daemon)
        assert c_host not in parents.values()
        assert docker_cli(daemon, "rm", "-f", "c1").returncode == 0
        assert _hosts(daemon) == [c_host]
        berthd.halt(signal.SIGTERM)
        # An idle host berthd let go of exits: nothing is left behind.
        _wait_for(lambda: not Path(f"/proc/{c_host}").exists(), "the idle host to follow berthd out")


def test_without_a_host_each_container_gets_its_own_shim(run_tag: str) -> None:
    with restartable_berthd(run_tag, "busybox") as berthd:
        berthd.halt(signal.SIGTERM)
        shutil.rmtree(berthd.root / "run" / "shimhosts", ignore_errors=True)  # no host ran yet: nothing to stop
        (berthd.root / "run" / "shimhosts").write_text("not a directory: no host can listen here")
        daemon = berthd.start()
        out = docker_cli(daemon, "run", "-d", "--name", "plain", "busybox", "sleep", "300")
        assert out.returncode == 0, out.stderr
        container_id = out.stdout.strip()
        shims = [p for p in _processes_under(daemon.root, b"berth-shim") if container_id.encode() in _cmdline(p)]
        assert len(shims) == 1 and not _hosts(daemon)
        assert "shim host unavailable" in daemon.log_text()
        assert docker_cli(daemon, "exec", "plain", "echo", "ok").stdout == "ok\n"


@pytest.mark.parametrize(("setting", "message"), [
    ('{"shim-mode": "sometimes"}', "invalid shim-mode 'sometimes'"),
    ('{"shim-host-max-containers": -1}', "invalid shim-host-max-containers -1"),
])
def test_bad_shim_settings_are_refused(run_tag: str, setting: str, message: str) -> None:
    with tempfile.TemporaryDirectory(prefix=f"{run_tag}-") as tmp:
        root = Path(tmp)
        (root / "daemon.json").write_text(setting)
        out = subprocess.run([sys.executable, "-m", "engine.daemon.main", "--config-file", str(root / "daemon.json"),
                              "--data-root", str(root / "data"), "--exec-root", str(root / "run"),
                              "-H", f"unix://{root}/b.sock", "--bridge=none", "--iptables=false"],
                             capture_output=True, text=True, timeout=60, cwd=Path(__file__).resolve().parents[2])
        assert out.returncode == 1
        assert message in out.stderr
        assert not (root / "data").exists()


def test_the_host_gives_back_what_ended_containers_held(run_tag: str) -> None:
    with restartable_berthd(run_tag, "busybox") as berthd:
        daemon = berthd.daemon
        assert docker_cli(daemon, "run", "-d", "--name", "anchor", "busybox", "sleep", "300").returncode == 0
        [host] = _hosts(daemon)

        def one_round(round_: int) -> None:
            # Pipes and a pty, an exec of each kind, a finished attach: all of it must go with the container.
            out = docker_cli(daemon, "run", "--name", f"pipes{round_}", "-i", "busybox", "sh", "-c", "cat; echo done",
                             input="fed\n")
            assert out.stdout == "fed\ndone\n", out.stderr
            assert docker_cli(daemon, "run", "-d", "-t", "--name", f"tty{round_}", "busybox", "sleep",
                              "300").returncode == 0
            assert docker_cli(daemon, "exec", f"tty{round_}", "echo", "x").stdout == "x\n"
            assert docker_cli(daemon, "exec", "-t", f"tty{round_}", "echo", "y").stdout.strip() == "y"
            assert docker_cli(daemon, "rm", "-f", f"pipes{round_}", f"tty{round_}").returncode == 0

        # A container leaves the host's books after its last client is done (its exit is recorded earlier).
        # Asked on one control connection, kept open: the host's fds do not change by the asking.
        [path] = (daemon.root / "run" / "shimhosts").glob("*.sock")
        control = socket.socket(socket.AF_UNIX)
        control.connect(str(path))
        replies = control.makefile("rb")

        def supervised() -> int:
            control.sendall(b'{"op": "hello"}\n')
            return int(json.loads(replies.readline())["containers"])

        def only_anchor_left() -> None:
            _wait_for(lambda: supervised() == 1, "the host to let go of the removed containers")

        one_round(0)  # the first round fills what the host keeps for good (the runtime's cgroup detection cache)
        only_anchor_left()
        before = _fd_targets(host)
        for round_ in (1, 2, 3):
            one_round(round_)
        only_anchor_left()
        assert _hosts(daemon) == [host]
        assert _fd_targets(host) == before
        replies.close()
        control.close()


def _fd_targets(pid: int) -> list[str]:
    """`fd:target` of each open fd, but the runtime's cgroup detection cache (one mountinfo fd, reopened
    under a new number whenever any mount on the host changes)."""
    targets = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if not target.endswith("/mountinfo"):
                targets.append(f"{fd}:{target}")
    return sorted(targets)


def test_a_container_that_does_not_read_its_stdin_stalls_no_other(run_tag: str) -> None:
    with restartable_berthd(run_tag, "busybox") as berthd, \
            tempfile.TemporaryFile() as flood:
        daemon = berthd.daemon
        assert docker_cli(daemon, "run", "-d", "--name", "bystander", "busybox", "sleep", "300").returncode == 0
        flood.write(b"x" * (4 << 20))  # far more than a pipe or pty holds
        flood.seek(0)
        # `sleep` never reads: the host's write to its stdin pipe would block, and a blocked host serves no one.
        stuck = subprocess.Popen(["docker", "run", "-i", "--name", "stuck", "busybox", "sleep", "300"],
                                 env=daemon.env(), stdin=flood, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_for(lambda: _inspect(daemon, "stuck", ".State.Status") == "running", "the stuck container to run")
            for _ in range(3):
                assert docker_cli(daemon, "exec", "bystander", "echo", "served").stdout == "served\n"
            assert docker_cli(daemon, "run", "--rm", "busybox", "echo", "new ones too").stdout == "new ones too\n"
            assert docker_cli(daemon, "rm", "-f", "stuck").returncode == 0
        finally:
            stuck.kill()
            stuck.wait()


def test_control_sockets_are_private_from_their_creation(run_tag: str, tmp_path: Path) -> None:
    if shutil.which("runc") is None:
        pytest.skip("runc not installed")
    # The runtime is a wrapper that records the mode of the console socket it is handed, as it is
    # then: a socket chmod'ed after bind would show the umask's mode (berthd runs under umask 000).
    modes = tmp_path / "modes"
    spy = tmp_path / "spy-runc"
    spy.write_text("#!/bin/sh\nprev=\nfor a; do [ \"$prev\" = --console-socket ] && stat -c %a \"$a\" >> "
                   f"{modes}; prev=$a; done\nexec {shutil.which('runc')} \"$@\"\n")
    spy.chmod(0o755)
    with contextlib.ExitStack() as stack:
        old = os.umask(0)
        try:
            berthd = stack.enter_context(restartable_berthd(run_tag, "busybox",
                                                            config={"runtimes": {"spy": {"path": str(spy)}}}))
        finally:
            os.umask(old)
        daemon = berthd.daemon
        for name, runtime in (("lib", "berth"), ("ext", "spy")):
            out = docker_cli(daemon, "run", "-d", "-t", "--runtime", runtime, "--name", name, "busybox",
                             "sleep", "300")
            assert out.returncode == 0, out.stderr
            assert docker_cli(daemon, "exec", "-t", name, "echo", "x").stdout.strip() == "x"
        assert modes.read_text().split() == ["600", "600"]  # the create's, the exec's

        sockets = [p for p in (daemon.root / "run").rglob("*") if p.is_socket()]
        names = {p.name for p in sockets}
        assert {"shim.sock", "berth.sock"} <= names and any(p.parent.name == "shimhosts" for p in sockets)
        for path in sockets:
            mode = path.stat().st_mode & 0o777
            assert mode & 0o007 == 0, f"{path} is {mode:o}"
            if path.name != "berth.sock":  # the API socket is 0660 (docker's group)
                assert mode == 0o600, f"{path} is {mode:o}"


def _wait_long(predicate, what: str) -> None:  # type: ignore[no-untyped-def]
    """Polled with a generous deadline (60 s): these prove an outcome, not a speed."""
    _wait_for(predicate, what, tries=1200)


def test_a_killed_host_leaves_nothing_that_trips_new_containers_or_a_restart(run_tag: str) -> None:
    with restartable_berthd(run_tag, "busybox") as berthd:
        daemon = berthd.daemon
        hosts_dir = daemon.root / "run" / "shimhosts"
        assert docker_cli(daemon, "run", "-d", "--name", "first", "busybox", "sleep", "300").returncode == 0
        [host] = _hosts(daemon)
        [stale] = hosts_dir.glob("*.sock")

        # berthd holds a control connection to this host: the next start must not be sent down it.
        os.kill(host, signal.SIGKILL)
        _wait_long(lambda: _inspect(daemon, "first", ".State.Status") == "exited", "first's run to end")
        assert _inspect(daemon, "first", ".State.ExitCode") == "255"
        assert "supervisor disappeared" in _inspect(daemon, "first", ".State.Error")
        out = docker_cli(daemon, "run", "--rm", "busybox", "echo", "fresh")
        assert (out.returncode, out.stdout) == (0, "fresh\n"), out.stderr
        assert docker_cli(daemon, "run", "-d", "--name", "second", "busybox", "sleep", "300").returncode == 0
        [new_host] = _hosts(daemon)
        assert new_host != host and _parent(int(_inspect(daemon, "second", ".State.Pid"))) == new_host
        assert not stale.exists()  # the dead host's socket was recognised (refused) and removed

        # A crash of both: berthd and then the host. The restarted berthd records the host's container
        # at once (its shim.sock refuses), and starts new ones in a new host.
        berthd.halt(signal.SIGKILL)
        os.kill(new_host, signal.SIGKILL)
        _wait_long(lambda: not Path(f"/proc/{new_host}").exists(), "the host to die")
        daemon = berthd.start()
        assert _inspect(daemon, "second", ".State.Status") == "exited"
        assert _inspect(daemon, "second", ".State.ExitCode") == "255"
        out = docker_cli(daemon, "run", "--rm", "busybox", "echo", "after")
        assert (out.returncode, out.stdout) == (0, "after\n"), out.stderr
        assert docker_cli(daemon, "start", "second").returncode == 0
        assert docker_cli(daemon, "exec", "second", "echo", "back").stdout == "back\n"
        assert {p.name for p in hosts_dir.glob("*.sock")} == {next(hosts_dir.glob("*.sock")).name}


def test_containers_handed_to_hosts_at_their_bound_all_land(run_tag: str) -> None:
    # Two containers per host, each exiting at once: the next container's adopt meets a host that
    # is retired, or exiting with its last container, or gone: every one must still run, in a live host.
    import concurrent.futures

    with restartable_berthd(run_tag, "busybox", config={"shim-host-max-containers": 2}) as berthd:
        daemon = berthd.daemon

        def run_one(i: int) -> tuple[int, str]:
            out = docker_cli(daemon, "run", "--rm", "busybox", "sh", "-c", f"echo ran {i}; exit {i % 7}")
            return out.returncode, out.stdout

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            results = list(pool.map(run_one, range(24)))
        assert results == [(i % 7, f"ran {i}\n") for i in range(24)]
        # Every retired host followed its last container out; the one left (if any) still takes more.
        _wait_long(lambda: len(_hosts(daemon)) <= 1, "retired hosts to exit")
        assert docker_cli(daemon, "run", "--rm", "busybox", "true").returncode == 0
        sockets = list((daemon.root / "run" / "shimhosts").glob("*.sock"))
        _wait_long(lambda: len([s for s in sockets if s.exists()]) <= 1, "exited hosts' sockets to go")


def _zombie_children(pid: int) -> list[int]:
    zombies = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (p / "stat").read_text()
            state, ppid = stat[stat.rindex(")") + 2:].split()[:2]
            if int(ppid) == pid and state == "Z":
                zombies.append(int(p.name))
    return zombies


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_many_finished_containers_leave_no_zombies_fds_or_state_in_the_host(run_tag: str) -> None:
    import concurrent.futures

    # The anchor keeps berthd's host alive; every other container runs and ends in it (no K bound).
    with restartable_berthd(run_tag, "busybox", config={"shim-host-max-containers": 0}) as berthd:
        daemon = berthd.daemon
        assert docker_cli(daemon, "run", "-d", "--name", "anchor", "busybox", "sleep", "600").returncode == 0
        [host] = _hosts(daemon)
        [path] = (daemon.root / "run" / "shimhosts").glob("*.sock")
        control = socket.socket(socket.AF_UNIX)
        control.connect(str(path))
        replies = control.makefile("rb")

        def supervised() -> int:
            control.sendall(b'{"op": "hello"}\n')
            return int(json.loads(replies.readline())["containers"])

        def run_one(i: int) -> tuple[int, str]:
            # A process left behind in the background (the init's orphan, killed with the container)
            # and the runtime's own double fork both end up the host's children to reap.
            out = docker_cli(daemon, "run", "--rm", "busybox", "sh", "-c", f"sleep 30 & echo {i}; exit {i % 5}")
            return out.returncode, out.stdout

        def batch(start: int, count: int) -> None:
            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                results = list(pool.map(run_one, range(start, start + count)))
            assert results == [(i % 5, f"{i}\n") for i in range(start, start + count)]
            assert docker_cli(daemon, "exec", "anchor", "true").returncode == 0
            _wait_long(lambda: supervised() == 1, "the host to let go of the ended containers")

        batch(0, 20)  # warm-up: what the host keeps for good (imports, caches, the loop's own buffers)
        fds, rss = _fd_targets(host), _rss_kib(host)
        batch(20, 200)
        assert _hosts(daemon) == [host]
        _wait_long(lambda: not _zombie_children(host), "the host to reap every child")
        assert _fd_targets(host) == fds
        # Noise allowed (allocator arenas, the log's buffers): not 200 containers' worth of state.
        assert _rss_kib(host) - rss < 4096, (rss, _rss_kib(host))
        assert _inspect(daemon, "anchor", ".State.Status") == "running"
        replies.close()
        control.close()


def test_a_stopped_host_does_not_hold_up_a_daemon_restart(run_tag: str) -> None:
    """A host under SIGSTOP takes connections and answers nothing: the restarted berthd still comes up
    and serves, its containers stay running, and once the host runs again they are managed as before."""
    with restartable_berthd(run_tag, "busybox") as berthd:
        daemon = berthd.daemon
        for name in ("one", "two", "three"):
            assert docker_cli(daemon, "run", "-d", "--name", name, "busybox", "sleep", "300").returncode == 0
        [host] = _hosts(daemon)
        berthd.halt(signal.SIGKILL)
        os.kill(host, signal.SIGSTOP)
        try:
            daemon = berthd.start()  # listening means restore is done: it waited on no shim
            out = docker_cli(daemon, "ps", "--format", "{{.Names}} {{.State}}")
            assert sorted(out.stdout.split("\n")[:-1]) == ["one running", "three running", "two running"], out
        finally:
            os.kill(host, signal.SIGCONT)
        assert docker_cli(daemon, "stop", "-t", "1", "two").returncode == 0
        assert _inspect(daemon, "two", ".State.ExitCode") == "137"
        assert docker_cli(daemon, "exec", "one", "echo", "back").stdout == "back\n"
