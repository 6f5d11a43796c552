"""ssh:// engines: `berth -H ssh://...`, ssh contexts, the async client and the docker CLI through a real sshd.

The remote is this machine's loopback: a private sshd (tests/fixtures/sshd.py)
whose sessions have `berth`/`docker` on PATH and BERTH_HOST/DOCKER_HOST at the
module's berthd, so `berth system dial-stdio` there reaches the same engine the
test inspects directly.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.client import AsyncClient, parse_host
from tests.cli.conftest import BERTH, Tools
from tests.cli.test_run_tty import assert_resize_reaches, shell_prompt
from tests.fixtures.sshd import SSHServer, free_port, running_sshd

pytestmark = pytest.mark.needs_root


@pytest.fixture(scope="module")
def sshd(tools: Tools, run_tag: str) -> Iterator[SSHServer]:
    with running_sshd(run_tag, tools.daemon.socket, Path(BERTH).parent) as server:
        yield server


def over_ssh(tools: Tools, sshd: SSHServer, *args: str, tool: str = BERTH, host: str | None = None,
             stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """`tool -H ssh://...` as a client of the test sshd (its HOME, none of the engine's env)."""
    env = sshd.env(tools.daemon.env())
    argv = [tool, "-H", host or sshd.url, *args] if tool == BERTH else [tool, *args]
    if tool != BERTH:
        env["DOCKER_HOST"] = host or sshd.url
    return subprocess.run(argv, env=env, input=stdin, capture_output=True, text=True, timeout=120,
                          stdin=None if stdin is not None else subprocess.DEVNULL)


def ok(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode == 0, f"{out.args}: {out.stderr}"
    return out.stdout


def test_version_ps_and_run_over_ssh(tools: Tools, busybox: str, sshd: SSHServer) -> None:
    version = ok(over_ssh(tools, sshd, "version", "--format", "{{.Server.Version}} {{.Client.ApiVersion}}"))
    assert version.split()[1] == "1.51"
    assert version.split()[0] == ok(tools.berth("version", "--format", "{{.Server.Version}}")).strip()
    assert ok(over_ssh(tools, sshd, "run", "--rm", busybox, "echo", "hi")) == "hi\n"
    tools.ok("docker", "create", "--name", "seen-over-ssh", busybox, "true")
    try:
        assert "seen-over-ssh" in ok(over_ssh(tools, sshd, "ps", "-a", "--format", "{{.Names}}")).split()
        for variable in ("BERTH_HOST", "DOCKER_HOST"):
            by_env = subprocess.run([BERTH, "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True,
                                    env=dict(sshd.env(tools.daemon.env()), **{variable: sshd.url}), timeout=120,
                                    stdin=subprocess.DEVNULL)
            assert "seen-over-ssh" in ok(by_env).split()
    finally:
        tools.ok("docker", "rm", "-f", "seen-over-ssh")


def test_logs_follow_streams_and_exec_over_ssh(tools: Tools, busybox: str, sshd: SSHServer) -> None:
    ok(over_ssh(tools, sshd, "run", "-d", "--name", "ssh-logs", busybox, "sh", "-c",
                "echo first; while [ ! -e /tmp/go ]; do sleep 0.05; done; echo second"))
    follow = subprocess.Popen([BERTH, "-H", sshd.url, "logs", "-f", "ssh-logs"], env=sshd.env(tools.daemon.env()),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        assert follow.stdout is not None
        assert follow.stdout.readline() == "first\n"  # streamed while the container still runs
        # exec -i: stdin's EOF is a half-close through the SSH channel, and cat's output still comes back.
        assert ok(over_ssh(tools, sshd, "exec", "-i", "ssh-logs", "cat", stdin="piped\n")) == "piped\n"
        ok(over_ssh(tools, sshd, "exec", "ssh-logs", "touch", "/tmp/go"))
        assert follow.stdout.readline() == "second\n"
        assert follow.wait(timeout=60) == 0  # the stream ends when the container does
    finally:
        if follow.poll() is None:
            follow.kill()
        follow.wait()
        tools.ok("docker", "rm", "-f", "ssh-logs")


def test_run_it_over_ssh_types_and_resizes(tools: Tools, busybox: str, sshd: SSHServer) -> None:
    argv = [BERTH, "-H", sshd.url, "run", "-it", "--rm", "--name", "ssh-tty", busybox, "sh"]
    with shell_prompt(argv, sshd.env(tools.daemon.env()), "ssh-tty") as shell:
        shell.type(b"echo $((6 * 7))\n")
        assert b"\r\n42\r\n" in shell.expect(b"42\r\n")
        assert_resize_reaches(shell, 31, 97)
        shell.type(b"exit 4\n")
        assert shell.exit_code() == 4


def test_ssh_context_create_use_ps(tools: Tools, busybox: str, sshd: SSHServer) -> None:
    env = sshd.env(tools.daemon.env())

    def berth(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([BERTH, *args], env=env, capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL)

    made = berth("context", "create", "bt-remote", "--docker", f"host={sshd.url}")
    assert (made.returncode, made.stderr) == (0, 'Successfully created context "bt-remote"\n')
    tools.ok("docker", "create", "--name", "ctx-over-ssh", busybox, "true")
    try:
        ok(berth("context", "use", "bt-remote"))
        assert "ctx-over-ssh" in ok(berth("ps", "-a", "--format", "{{.Names}}")).split()
        assert "ctx-over-ssh" in ok(berth("--context", "bt-remote", "ps", "-a", "--format", "{{.Names}}")).split()
        # The same context serves the docker CLI (its own ssh, the wrapper on PATH, docker's dial-stdio there).
        by_docker = subprocess.run(["docker", "--context", "bt-remote", "ps", "-a", "--format", "{{.Names}}"],
                                   env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert "ctx-over-ssh" in ok(by_docker).split()
    finally:
        berth("context", "use", "default")
        berth("context", "rm", "bt-remote")
        tools.ok("docker", "rm", "-f", "ctx-over-ssh")


def test_async_client_streams_events_over_ssh(tools: Tools, busybox: str, sshd: SSHServer,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.client import ssh

    monkeypatch.setenv("HOME", str(sshd.home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    created = threading.Event()

    async def scenario() -> dict:
        client = AsyncClient(parse_host(sshd.url))
        assert await client.version() == "1.51"
        kept = client._idle
        assert kept is not None
        await client.get("/info")
        assert client._idle is kept  # keep-alive: the same channel served the next request
        stream = await client.stream("GET", "/events", {"filters": {"type": ["container"], "event": ["create"]}})
        try:
            for _ in range(400):
                if (await client.get("/info"))["NEventsListener"] >= 1:
                    break
                await asyncio.sleep(0.025)
            await asyncio.to_thread(tools.ok, "docker", "create", "--name", "async-over-ssh", busybox, "true")
            created.set()
            async for event in stream.json_lines():
                if event["Actor"]["Attributes"].get("name") == "async-over-ssh":
                    return event
        finally:
            await stream.close()
            await client.close()
        raise AssertionError("the event stream ended without the create")

    try:
        event = asyncio.run(scenario())
        assert event["Action"] == "create"
    finally:
        ssh.close_all()
        if created.is_set():
            tools.ok("docker", "rm", "-f", "async-over-ssh")


def test_async_exec_over_ssh_half_closes(tools: Tools, busybox: str, sshd: SSHServer,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A hijacked exec through the async client: stdin's EOF (write_eof) crosses the channel, output follows."""
    from engine.client import ssh
    from engine.stdcopy import FrameDecoder

    monkeypatch.setenv("HOME", str(sshd.home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    tools.ok("docker", "run", "-d", "--name", "async-exec", busybox, "sleep", "300")

    async def scenario() -> bytes:
        client = AsyncClient(parse_host(sshd.url))
        made = await client.post("/containers/async-exec/exec", json={
            "AttachStdin": True, "AttachStdout": True, "AttachStderr": True, "Cmd": ["sh", "-c", "cat; echo done"]})
        sock = await client.hijack(f"/exec/{made['Id']}/start", json={"Detach": False, "Tty": False})
        try:
            await sock.write(b"typed\n")
            sock.close_write()
            decoder, out = FrameDecoder(), b""
            while chunk := await sock.read():
                out += b"".join(data for _, data in decoder.feed(chunk))
            return out
        finally:
            await sock.close()

    try:
        assert asyncio.run(scenario()) == b"typed\ndone\n"
    finally:
        ssh.close_all()
        tools.ok("docker", "rm", "-f", "async-exec")


def test_more_streams_than_sshd_allows_per_connection(tools: Tools, busybox: str, sshd: SSHServer,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """sshd's MaxSessions caps channels per connection: the client logs in once more instead of failing."""
    from engine.client import Client, ssh
    from tests.fixtures.sshd import MAX_SESSIONS

    monkeypatch.setenv("HOME", str(sshd.home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    client = Client(parse_host(sshd.url))
    name = "many-streams"
    streams = [client.stream("GET", "/events", {"filters": {"container": [name]}})
               for _ in range(MAX_SESSIONS + 2)]
    try:
        assert len(ssh._SESSIONS[("root", "127.0.0.1", sshd.port)]) == 2
        tools.ok("docker", "create", "--name", name, busybox, "true")
        for stream in streams:  # every one of them is live
            assert next(stream.json_lines())["Action"] == "create"
    finally:
        for stream in streams:
            stream.close()
        tools.docker("rm", "-f", name)
        ssh.close_all()


def test_proxy_jump_from_the_ssh_config(tools: Tools, busybox: str, sshd: SSHServer) -> None:
    assert ok(over_ssh(tools, sshd, "run", "--rm", busybox, "echo", "jumped", host="ssh://bt-jumped")) == "jumped\n"
    before = sshd.log.read_text().count("Connection from ")
    ok(over_ssh(tools, sshd, "ps", host="ssh://bt-jumped"))  # one channel, one login
    # Two logins: the jump host's, and the target's through it (sshd accepts it from itself).
    assert sshd.log.read_text().count("Connection from ") - before == 2


def test_remote_with_only_docker_is_dialled_with_docker(tools: Tools, busybox: str, sshd: SSHServer) -> None:
    assert ok(over_ssh(tools, sshd, "run", "--rm", busybox, "echo", "via-docker", host="ssh://bt-docker-only")) \
        == "via-docker\n"


def test_docker_cli_over_ssh_reaches_berthd(tools: Tools, busybox: str, sshd: SSHServer) -> None:
    """The real docker CLI's own ssh:// path: OpenSSH's client, `docker system dial-stdio` on the remote."""
    assert ok(over_ssh(tools, sshd, "ps", "--format", "{{.ID}}", tool="docker")) == ""
    assert ok(over_ssh(tools, sshd, "run", "--rm", busybox, "echo", "hi", tool="docker")) == "hi\n"


def client_home(sshd: SSHServer, where: Path, known_hosts: str | None, config: str = "") -> Path:
    """A HOME with the server's authorised key, `known_hosts` as given (None: no file) and `config`."""
    dot_ssh = where / ".ssh"
    dot_ssh.mkdir(mode=0o700, parents=True)
    for name in ("id_ed25519", "id_ed25519.pub"):
        (dot_ssh / name).write_bytes((sshd.home / ".ssh" / name).read_bytes())
        (dot_ssh / name).chmod(0o600)
    if known_hosts is not None:
        (dot_ssh / "known_hosts").write_text(known_hosts)
    if config:
        (dot_ssh / "config").write_text(config)
    return where


def berth_ps(tools: Tools, sshd: SSHServer, url: str, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = sshd.env(tools.daemon.env())
    if home is not None:
        env["HOME"] = str(home)
    return subprocess.run([BERTH, "-H", url, "ps"], env=env, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize(("host", "home", "expected"), [
    ("bt-stranger", "", "ssh: permission denied for root@127.0.0.1:"),
    ("bt-neither", "", "has neither `berth` nor `docker` on its PATH"),
    ("bt-no-engine", "", "exited with status 1: Cannot connect to the Berth daemon at unix://"),
    ("", "unknown", "is unknown (not in "),
    ("", "changed", "has CHANGED since it was recorded in"),
    ("closed", "", "connection refused"),
])
def test_ssh_failures_are_one_line(tools: Tools, sshd: SSHServer, tmp_path: Path, host: str, home: str,
                                   expected: str) -> None:
    url = sshd.url if not host else f"ssh://{host}"
    if host == "closed":
        url = f"ssh://root@127.0.0.1:{free_port()}"
    other = None
    if home == "unknown":  # the right key, but no known_hosts entry for the server
        other = client_home(sshd, tmp_path, "")
    elif home == "changed":  # an entry for [127.0.0.1]:port with another key
        stranger = (sshd.home / ".ssh" / "stranger.pub").read_text().split()
        other = client_home(sshd, tmp_path, f"[127.0.0.1]:{sshd.port} {stranger[0]} {stranger[1]}\n")
    out = berth_ps(tools, sshd, url, other)
    assert out.returncode == 1
    assert expected in out.stderr
    assert len(out.stderr.splitlines()) == 1, out.stderr
    assert "Traceback" not in out.stderr
    assert "berthd" not in out.stderr or host == "bt-no-engine"  # the ssh leg failed: no hint to start berthd


def test_strict_host_key_checking_from_the_ssh_config(tools: Tools, sshd: SSHServer, tmp_path: Path) -> None:
    # accept-new: the unknown key is accepted and recorded, as ssh does.
    home = client_home(sshd, tmp_path / "accept-new", None, "Host 127.0.0.1\n    StrictHostKeyChecking accept-new\n")
    assert berth_ps(tools, sshd, sshd.url, home).returncode == 0
    assert (home / ".ssh" / "known_hosts").read_text().startswith(f"[127.0.0.1]:{sshd.port} ssh-ed25519 ")
    # no: accepted with a warning line, nothing recorded.
    home = client_home(sshd, tmp_path / "no", None, "Host 127.0.0.1\n    StrictHostKeyChecking no\n")
    out = berth_ps(tools, sshd, sshd.url, home)
    assert out.returncode == 0, out.stderr
    assert out.stderr.startswith("Warning: accepting the unknown ssh-ed25519 host key of [127.0.0.1]:")
    assert not (home / ".ssh" / "known_hosts").exists()


@pytest.mark.parametrize("close", [True, False])
@pytest.mark.parametrize("path", ["fast", "full"])
def test_dial_stdio_relays_the_engine_on_stdio(tools: Tools, close: bool, path: str) -> None:
    """What the remote end of an ssh:// connection runs: stdin's EOF half-closes, the engine's EOF ends it.
    `-H` sends it down the full path (engine/cli/fast.py serves only the bare command)."""
    request = b"GET /_ping HTTP/1.1\r\nHost: docker\r\n" + (b"Connection: close\r\n" if close else b"") + b"\r\n"
    flags = ["-H", tools.daemon.docker_host] if path == "full" else []
    out = subprocess.run([BERTH, *flags, "system", "dial-stdio"], env=tools.daemon.env(), input=request,
                         capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(b"HTTP/1.1 200 ") and out.stdout.endswith(b"\r\n\r\nOK")


def test_ssh_addresses_parse_like_dockers() -> None:
    from engine.client import ClientError, EngineAddress

    assert parse_host("ssh://me@example.org:2200/ignored/path") == EngineAddress("ssh", host="example.org", port=2200,
                                                                                  user="me")
    bare = parse_host("ssh://example.org")
    assert (bare.user, bare.port, str(bare), bare.host_header) == ("", 0, "ssh://example.org", "docker")
    for bad in ("ssh://", "ssh://me:secret@example.org", "ssh://example.org:port"):
        with pytest.raises(ClientError):
            parse_host(bad)


def test_dial_stdio_completes_and_has_help(tools: Tools) -> None:
    from tests.cli.test_completion import _complete

    assert "dial-stdio" in _complete(tools, ["berth", "system", ""])
    assert "dial-stdio" in tools.ok("berth", "system", "--help")
    assert "Proxy the stdio stream" in tools.ok("berth", "system", "dial-stdio", "--help")


def test_ssh_client_does_not_import_invoke(tools: Tools, sshd: SSHServer) -> None:
    """paramiko wants `invoke` only for `Match exec` (~60 ms of start-up): not imported without one."""
    code = ("import sys; from engine.cli.main import main; code = main(['-H', sys.argv[1], 'ps']); "
            "print(code, 'invoke' in sys.modules, 'paramiko' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, sshd.url], env=sshd.env(tools.daemon.env()), text=True,
                         capture_output=True, timeout=120, cwd=Path(BERTH).parents[2], stdin=subprocess.DEVNULL)
    assert out.stdout.split()[-3:] == ["0", "False", "True"], out.stderr


def test_an_ssh_host_cannot_inject_into_a_proxy_command(tmp_path: Path) -> None:
    """A host (or user) with spaces or shell characters would reach a ProxyCommand's `%h` as extra words
    (paramiko splits the command): refused as an address, as OpenSSH >= 9.6 does; nothing runs."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text("Host *\n    ProxyCommand nice %h\n")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home)}
    for host in ("ssh://touch injected", "ssh://x injected@example.org", "ssh://-oProxyCommand=x"):
        out = subprocess.run([BERTH, "-H", host, "ps"], env=env, cwd=tmp_path, capture_output=True, text=True,
                             timeout=60, stdin=subprocess.DEVNULL)
        assert out.returncode != 0
        assert "invalid ssh engine address" in out.stderr and "characters not allowed" in out.stderr, out.stderr
        assert len(out.stderr.splitlines()) == 1, out.stderr
    assert not (tmp_path / "injected").exists()
    with pytest.raises(Exception, match="characters not allowed in the user"):
        parse_host("ssh://a$(id)@example.org")
    assert parse_host("ssh://deploy.bot@[::1]:2222").host == "::1"


def test_accept_new_appends_to_known_hosts_and_keeps_what_is_there(tools: Tools, sshd: SSHServer,
                                                                   tmp_path: Path) -> None:
    """accept-new adds the new key as ssh does, at the end: the lines paramiko cannot parse (comments, a
    `@revoked` marker, a key type it does not know) stay as they were.  paramiko's AutoAddPolicy rewrote
    the file from what it parsed, so a revocation the user had recorded was silently dropped."""
    stranger = (sshd.home / ".ssh" / "stranger.pub").read_text().split()
    before = (f"# my hosts\n@revoked * {stranger[0]} {stranger[1]}\n"
              "other.example sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29t\n"
              f"old.example {stranger[0]} {stranger[1]}")  # no newline at the end
    home = client_home(sshd, tmp_path, before, "Host 127.0.0.1\n    StrictHostKeyChecking accept-new\n")
    out = berth_ps(tools, sshd, sshd.url, home)
    assert out.returncode == 0, out.stderr
    after = (home / ".ssh" / "known_hosts").read_text()
    assert after.startswith(before + "\n")
    added = after[len(before) + 1:].splitlines()
    assert len(added) == 1 and added[0].startswith(f"[127.0.0.1]:{sshd.port} ssh-ed25519 ")
    assert berth_ps(tools, sshd, sshd.url, home).returncode == 0  # known now: nothing more added
    assert (home / ".ssh" / "known_hosts").read_text() == after


@pytest.mark.parametrize("strict", ["yes", "accept-new", "no"])
def test_a_revoked_host_key_is_refused(tools: Tools, sshd: SSHServer, tmp_path: Path, strict: str) -> None:
    """known_hosts marks the server's key `@revoked`: refused in one line whatever StrictHostKeyChecking
    says, even with a plain entry for it too (paramiko's loader failed on the marker line instead)."""
    server_key = " ".join((sshd.home / ".ssh" / "known_hosts").read_text().split()[1:3])
    known = f"@revoked * {server_key}\n[127.0.0.1]:{sshd.port} {server_key}\n"
    home = client_home(sshd, tmp_path, known, f"Host 127.0.0.1\n    StrictHostKeyChecking {strict}\n")
    out = berth_ps(tools, sshd, sshd.url, home)
    assert out.returncode == 1
    assert "is marked @revoked in known_hosts; refusing to connect" in out.stderr, out.stderr
    assert len(out.stderr.splitlines()) == 1, out.stderr
    assert (home / ".ssh" / "known_hosts").read_text() == known


def test_a_host_hanging_mid_login_does_not_hold_up_other_engines(tools: Tools, sshd: SSHServer,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """One process, two engines: while the login to a host that never sends its SSH banner hangs (up to
    its 30 s ConnectTimeout), a request to the other engine goes through.  The logins shared one global
    lock, so every engine's new connection waited for the hung one."""
    import socket

    from engine.client import Client, ssh

    monkeypatch.setenv("HOME", str(sshd.home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    hung_error: list[BaseException] = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()

        def login_to_hung() -> None:
            try:
                ssh.connect(parse_host(f"ssh://root@127.0.0.1:{listener.getsockname()[1]}"), None)
            except BaseException as exc:  # the hung host's failure, checked below
                hung_error.append(exc)

        hung = threading.Thread(target=login_to_hung, daemon=True)
        hung.start()
        conn, _ = listener.accept()  # the login is under way now, waiting for a banner that never comes
        try:
            answered: list[int] = []
            other = threading.Thread(target=lambda: answered.append(Client(parse_host(sshd.url)).ping().status),
                                     daemon=True)
            other.start()
            other.join(20)  # well under the hung login's 30 s
            assert answered == [200], "the other engine waited for the hung login"
            assert hung.is_alive()
        finally:
            conn.close()  # the hung login ends: no banner
            hung.join(60)
            ssh.close_all()
    assert hung_error and "banner" in str(hung_error[0]).lower()


def _read_or_empty(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:  # a process that ended meanwhile
        return b""


def _descendants(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children] + [d for child in children for d in _descendants(int(child))]


def test_a_channel_open_that_times_out_leaves_the_connections_streams_alone(
        tools: Tools, busybox: str, sshd: SSHServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """A channel open that times out on a connection that is still up (the remote slow: here its sshd
    session processes stopped) fails that one request; the streams already on the connection go on
    once the remote does.  The whole connection was closed for it, cutting every stream of the process."""
    import os
    import signal

    from engine.client import Client, EngineUnreachable, ssh

    monkeypatch.setenv("HOME", str(sshd.home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    name = "slow-remote"
    client = Client(parse_host(sshd.url))
    stream = client.stream("GET", "/events", {"filters": {"container": [name]}})
    config = str(sshd.log.parent / "server" / "sshd_config")
    master = next(int(pid) for pid in os.listdir("/proc")  # its title is rewritten: "sshd: ... [listener] ..."
                  if pid.isdigit() and config.encode() in _read_or_empty(Path(f"/proc/{pid}/cmdline")))
    sessions = [pid for pid in _descendants(master)  # this module's only live SSH connection: the stream's
                if _read_or_empty(Path(f"/proc/{pid}/cmdline")).startswith(b"sshd")]
    assert sessions
    try:
        for pid in sessions:
            os.kill(pid, signal.SIGSTOP)
        try:
            with pytest.raises(EngineUnreachable, match="cannot open a channel"):
                ssh.connect(parse_host(sshd.url), 1)  # the open's timeout
        finally:
            for pid in sessions:
                os.kill(pid, signal.SIGCONT)
        tools.ok("docker", "create", "--name", name, busybox, "true")
        assert next(stream.json_lines())["Action"] == "create"  # the stream lived through it
    finally:
        stream.close()
        tools.docker("rm", "-f", name)
        ssh.close_all()
