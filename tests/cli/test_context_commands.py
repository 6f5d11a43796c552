"""`berth context ...` shares the docker CLI's context store: each tool sees and uses the other's contexts,
and -H / DOCKER_HOST / --context take precedence as in docker.  `berth machine` says it is not there."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest

from tests.api.test_tls import TLSDaemon, tls_daemon  # noqa: F401 - the fixture, shared
from tests.cli.conftest import BERTH, Tools
from tests.fixtures.tls import TestCA

pytestmark = pytest.mark.needs_root


def _run(tools: Tools, tool: str, *args: str, host: bool = False) -> subprocess.CompletedProcess[str]:
    """Without DOCKER_HOST (unless `host`), so the context store decides where the engine is."""
    env = tools.daemon.env()
    if not host:
        env.pop("DOCKER_HOST")
    return subprocess.run([BERTH if tool == "berth" else tool, *args], env=env, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


@pytest.fixture
def endpoint(tools: Tools) -> str:
    return tools.daemon.env()["DOCKER_HOST"]


def test_context_made_by_either_tool_is_listed_by_both(tools: Tools, endpoint: str) -> None:
    made = _run(tools, "berth", "context", "create", "bt-berth", "--description", "made by berth",
                "--docker", f"host={endpoint}")
    assert (made.returncode, made.stdout, made.stderr) == (0, "bt-berth\n", 'Successfully created context "bt-berth"\n')
    _run(tools, "docker", "context", "create", "bt-docker", "--docker", f"host={endpoint}").check_returncode()
    for args in (["context", "ls"], ["context", "ls", "-q"], ["context", "ls", "--format", "json"],
                 ["context", "inspect", "bt-berth", "bt-docker"], ["context", "show"],
                 ["context", "inspect", "-f", "{{.Name}} {{.Endpoints.docker.Host}}", "bt-docker"]):
        ours, theirs = _run(tools, "berth", *args), _run(tools, "docker", *args)
        if args[:2] == ["context", "ls"] and "-q" not in args:
            # The `default` row differs by design: berth's default engine is berthd's socket, docker's is dockerd's.
            ours_rows = [r for r in ours.stdout.splitlines() if "default" not in r]
            theirs_rows = [r for r in theirs.stdout.splitlines() if "default" not in r]
            assert ours_rows == theirs_rows, args
        else:
            assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout), args
    copied = _run(tools, "berth", "context", "create", "bt-from", "--from", "bt-docker")
    assert copied.returncode == 0, copied.stderr
    assert _run(tools, "docker", "context", "inspect", "-f", "{{.Endpoints.docker.Host}}", "bt-from").stdout == (
        f"{endpoint}\n")
    for name in ("bt-berth", "bt-docker", "bt-from"):
        _run(tools, "berth", "context", "rm", name).check_returncode()


def test_use_switches_both_tools_to_the_engine(tools: Tools, busybox: str, endpoint: str) -> None:
    tools.ok("docker", "create", "--name", "ctx-marker", busybox, "true")
    _run(tools, "docker", "context", "create", "bt-use", "--docker", f"host={endpoint}").check_returncode()
    used = _run(tools, "berth", "context", "use", "bt-use")
    assert (used.returncode, used.stdout, used.stderr) == (0, "bt-use\n", 'Current context is now "bt-use"\n')
    try:
        assert _run(tools, "docker", "context", "show").stdout == "bt-use\n"
        names = _run(tools, "berth", "ps", "-a", "--format", "{{.Names}}")
        assert "ctx-marker" in names.stdout.split(), names.stderr
        listed = _run(tools, "berth", "context", "ls").stdout
        assert any(line.startswith("bt-use *") for line in listed.splitlines())
        in_use = _run(tools, "berth", "context", "rm", "bt-use")
        assert in_use.returncode == 1 and "in use" in in_use.stderr
    finally:
        _run(tools, "berth", "context", "use", "default").check_returncode()
    assert _run(tools, "docker", "context", "show").stdout == "default\n"
    _run(tools, "berth", "context", "rm", "bt-use").check_returncode()


def test_host_flag_and_variables_beat_the_context(tools: Tools, busybox: str, endpoint: str) -> None:
    tools.ok("docker", "create", "--name", "ctx-prec", busybox, "true")
    _run(tools, "berth", "context", "create", "bt-nowhere", "--docker",
         "host=unix:///nonexistent/berthtest.sock").check_returncode()
    try:
        # --context wins over DOCKER_HOST (docker's resolveContextName), and says where it looked.
        out = _run(tools, "berth", "--context", "bt-nowhere", "ps", host=True)
        assert out.returncode == 1 and "unix:///nonexistent/berthtest.sock" in out.stderr
        assert len(out.stderr.splitlines()) == 1
        # DOCKER_HOST beats the current context; -H beats everything.
        _run(tools, "berth", "context", "use", "bt-nowhere").check_returncode()
        assert "ctx-prec" in _run(tools, "berth", "ps", "-a", "--format", "{{.Names}}", host=True).stdout
        assert "ctx-prec" in _run(tools, "berth", "-H", endpoint, "ps", "-a", "--format", "{{.Names}}").stdout
        assert _run(tools, "berth", "ps").returncode == 1
        both = _run(tools, "berth", "-H", endpoint, "--context", "bt-nowhere", "ps")
        assert both.returncode == 1 and "either specify --host or --context" in both.stderr
    finally:
        _run(tools, "berth", "context", "use", "default").check_returncode()
        _run(tools, "berth", "context", "rm", "bt-nowhere").check_returncode()


def test_ssh_context_is_stored_for_both_tools(tools: Tools) -> None:
    """Stored like any other (tests/cli/test_ssh_transport.py drives one against a real sshd)."""
    made = _run(tools, "berth", "context", "create", "bt-ssh", "--docker", "host=ssh://someone@192.0.2.1")
    assert (made.returncode, made.stderr) == (0, 'Successfully created context "bt-ssh"\n')
    try:
        inspected = json.loads(_run(tools, "docker", "context", "inspect", "bt-ssh").stdout)
        assert inspected[0]["Endpoints"]["docker"]["Host"] == "ssh://someone@192.0.2.1"
        bad = _run(tools, "berth", "context", "create", "bt-ssh-bad", "--docker", "host=ssh://:22")
        assert bad.returncode == 1 and "want ssh://[user@]host[:port]" in bad.stderr
        assert len(bad.stderr.splitlines()) == 1
    finally:
        _run(tools, "berth", "context", "rm", "bt-ssh").check_returncode()


def test_context_errors_match_docker(tools: Tools, endpoint: str) -> None:
    for args in (["context", "create", "x", "--docker", f"host={endpoint}"], ["context", "use", "nope-nope"],
                 ["context", "create", "default"]):
        ours, theirs = _run(tools, "berth", *args), _run(tools, "docker", *args)
        assert ours.returncode == theirs.returncode == 1, args
    ours = _run(tools, "berth", "context", "create", "x")
    theirs = _run(tools, "docker", "context", "create", "x")
    assert ours.stderr == theirs.stderr


@pytest.mark.parametrize("sub", ["init", "start", "stop", "status", "ssh", "rm", "set", "logs"])
def test_machine_says_it_is_not_available(tools: Tools, sub: str) -> None:
    out = tools.berth("machine", sub)
    assert (out.returncode, out.stdout) == (1, "")
    assert out.stderr == ("berth machine: not available on this platform yet (the VM backend is not built; "
                          "on Linux berthd runs natively)\n")


def test_new_commands_complete_and_suggest(tools: Tools) -> None:
    script = tools.ok("berth", "completion", "bash")
    for word in ("exec", "stats", "port", "volume", "network", "context", "machine"):
        assert f" {word} " in script or f'"{word} ' in script or f" {word}\"" in script, word
    assert "prune" in script and "disconnect" in script
    for typed, close in (("exce", "exec"), ("volumes", "volume"), ("netwrk", "network"), ("contxt", "context")):
        out = tools.berth(typed)
        assert out.returncode == 125 and f"Did you mean '{close}'?" in out.stderr, out.stderr
    out = tools.berth("--contxt", "x", "ps")
    assert out.returncode == 125 and "Did you mean '--context'?" in out.stderr
    out = tools.berth("exec", "--detatch", "x", "true")
    assert out.returncode == 125 and "Did you mean '--detach'?" in out.stderr


def test_tls_context_reaches_a_mutual_tls_engine(request: pytest.FixtureRequest) -> None:
    """The certificates are copied into the store (docker's layout), so both tools use them by context name."""
    pki: TLSDaemon = request.getfixturevalue("tls_daemon")  # tests/api/test_tls.py's mutual-TLS berthd
    env = pki.daemon.env()
    env.pop("DOCKER_HOST", None)
    endpoint = (f"host=tcp://127.0.0.1:{pki.port},ca={pki.ca.cert_path},cert={pki.client.cert_path},"
                f"key={pki.client.key_path}")

    def run(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([BERTH if tool == "berth" else tool, *args], env=env, capture_output=True, text=True,
                              timeout=60, stdin=subprocess.DEVNULL)

    run("berth", "context", "create", "bt-tls", "--docker", endpoint).check_returncode()
    for tool in ("berth", "docker"):
        out = run(tool, "--context", "bt-tls", "version", "--format", "{{.Server.Platform.Name}}")
        assert (out.returncode, out.stdout) == (0, "Berth Engine\n"), (tool, out.stderr)
    inspected = json.loads(run("docker", "context", "inspect", "bt-tls").stdout)
    assert inspected[0]["TLSMaterial"] == {"docker": ["ca.pem", "cert.pem", "key.pem"]}
    assert json.loads(run("berth", "context", "inspect", "bt-tls").stdout) == inspected
    run("berth", "context", "rm", "bt-tls").check_returncode()


@pytest.mark.parametrize("group", ["volume", "network", "context", "container", "image"])
def test_group_alone_or_with_help_lists_its_subcommands(tools: Tools, group: str) -> None:
    from engine.cli.main import GROUPS

    for args in ([group], [group, "--help"], [group, "-h"]):
        out = tools.berth(*args)
        assert (out.returncode, out.stderr) == (0, ""), args
        assert out.stdout.startswith(f"Usage:  berth {group} COMMAND\n")
        listed = {line.split()[0] for line in out.stdout.split("Commands:\n")[1].split("\n\n")[0].splitlines()}
        assert listed <= set(GROUPS[group]) and "rm" in listed


def test_files_holding_secrets_stay_private(tools: Tools, tmp_path: Path) -> None:
    """config.json keeps registry credentials and a context's TLS dir a private key: both stay 0600."""
    config_dir = Path(tools.daemon.env()["DOCKER_CONFIG"])
    config_dir.mkdir(parents=True, exist_ok=True)
    config = config_dir / "config.json"
    before = json.loads(config.read_text()) if config.exists() else {}
    auths = {"localhost:1": {"auth": "YnQ6c2VjcmV0"}}
    config.write_text(json.dumps({**before, "auths": auths}))
    config.chmod(0o600)
    key = tmp_path / "key.pem"
    key.write_text("not really a key\n")
    try:
        _run(tools, "berth", "context", "use", "default").check_returncode()
        assert stat.S_IMODE(config.stat().st_mode) == 0o600
        assert json.loads(config.read_text())["auths"] == auths
        _run(tools, "berth", "context", "create", "bt-tls", "--docker",
             f"host=tcp://127.0.0.1:1,key={key}").check_returncode()
        [stored] = list(config_dir.glob("contexts/tls/*/docker/key.pem"))
        assert stat.S_IMODE(stored.stat().st_mode) == 0o600 and stored.read_text() == "not really a key\n"
    finally:
        _run(tools, "berth", "context", "rm", "bt-tls")
        config.write_text(json.dumps(before))


def _inspect(tools: Tools, tool: str, name: str) -> dict[str, object]:
    """`context inspect` of one context, without the fields that name where it is stored."""
    out = _run(tools, tool, "context", "inspect", name)
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout)[0]
    found.pop("Storage")
    found.pop("Name")
    return dict(found)


def _tls_files(tmp_path: Path, name: str = "client") -> str:
    """`ca=...,cert=...,key=...` of real PEM files (docker's context create parses them)."""
    ca = TestCA(tmp_path / f"pki-{name}")
    pair = ca.issue_client(name)
    return f"ca={ca.cert_path},cert={pair.cert_path},key={pair.key_path}"


def test_export_and_import_round_trip_between_both_tools(tools: Tools, tmp_path: Path) -> None:
    _run(tools, "berth", "context", "create", "bt-exp", "--description", "exported",
         "--docker", f"host=tcp://192.0.2.1:2376,{_tls_files(tmp_path)}").check_returncode()
    try:
        written = _run(tools, "berth", "context", "export", "bt-exp", str(tmp_path / "bt.tar"))
        assert (written.returncode, written.stderr) == (0, f'Written file "{tmp_path}/bt.tar"\n')
        # berth's archive, imported by docker: docker sees the same context, TLS files included.
        _run(tools, "docker", "context", "import", "bt-imp-docker", str(tmp_path / "bt.tar")).check_returncode()
        assert _inspect(tools, "docker", "bt-imp-docker") == _inspect(tools, "docker", "bt-exp")
        assert _inspect(tools, "docker", "bt-exp")["TLSMaterial"] == {"docker": ["ca.pem", "cert.pem", "key.pem"]}
        # docker's archive (on stdout), imported by berth from stdin.
        exported = subprocess.run(["docker", "context", "export", "bt-exp", "-"], env=tools.daemon.env(),
                                  capture_output=True, timeout=60, check=True).stdout
        imported = subprocess.run([BERTH, "context", "import", "bt-imp-berth", "-"], env=tools.daemon.env(),
                                  input=exported, capture_output=True, timeout=60)
        assert (imported.returncode, imported.stdout, imported.stderr) == (
            0, b"bt-imp-berth\n", b'Successfully imported context "bt-imp-berth"\n')
        assert _inspect(tools, "docker", "bt-imp-berth") == _inspect(tools, "docker", "bt-exp")
        assert _inspect(tools, "berth", "bt-imp-berth") == _inspect(tools, "docker", "bt-imp-berth")
        # Importing over an existing name fails the same way in both.
        ours = _run(tools, "berth", "context", "import", "bt-imp-docker", str(tmp_path / "bt.tar"))
        theirs = _run(tools, "docker", "context", "import", "bt-imp-docker", str(tmp_path / "bt.tar"))
        assert (ours.returncode, ours.stderr) == (theirs.returncode, theirs.stderr) == (
            1, 'context "bt-imp-docker" already exists\n')
    finally:
        _run(tools, "berth", "context", "rm", "bt-exp", "bt-imp-docker", "bt-imp-berth")


def test_update_is_what_docker_sees(tools: Tools, tmp_path: Path) -> None:
    _run(tools, "berth", "context", "create", "bt-upd", "--docker",
         f"host=tcp://192.0.2.1:2376,{_tls_files(tmp_path)}").check_returncode()
    _run(tools, "docker", "context", "create", "bt-upd-docker", "--docker",
         f"host=tcp://192.0.2.1:2376,{_tls_files(tmp_path, 'docker')}").check_returncode()
    try:
        for args in (["--description", "now described"], ["--docker", "host=tcp://192.0.2.2:2375"],
                     ["--docker", "host=tcp://192.0.2.3:2376,skip-tls-verify=true", "--description", "again"],
                     ["--docker", f"host=tcp://192.0.2.4:2376,{_tls_files(tmp_path, 'other')}"], []):
            ours = _run(tools, "berth", "context", "update", "bt-upd", *args)
            theirs = _run(tools, "docker", "context", "update", "bt-upd-docker", *args)
            assert (ours.returncode, ours.stderr) == (0, 'Successfully updated context "bt-upd"\n'), args
            assert theirs.returncode == 0, theirs.stderr
            # docker reads berth's update as it reads its own.
            assert _inspect(tools, "docker", "bt-upd") == _inspect(tools, "docker", "bt-upd-docker"), args
        for name in ("default", "bt-none"):
            ours = _run(tools, "berth", "context", "update", name, "--description", "x")
            assert ours.returncode == _run(tools, "docker", "context", "update", name, "--description", "x").returncode
            assert ours.returncode == 1 and ours.stderr.count("\n") == 1
    finally:
        _run(tools, "berth", "context", "rm", "bt-upd", "bt-upd-docker")


def test_missing_contexts_are_worded_like_docker(tools: Tools) -> None:
    _run(tools, "docker", "context", "create", "bt-inuse", "--docker", "host=tcp://192.0.2.9:2375").check_returncode()
    _run(tools, "docker", "context", "use", "bt-inuse").check_returncode()
    try:
        for args in (["use", "bt-nope"], ["export", "bt-nope", "-"], ["update", "bt-nope", "--description", "x"],
                     ["rm", "bt-nope"], ["rm", "bt-inuse", "bt-nope"], ["create", "bt-x", "--from", "bt-nope"],
                     ["inspect", "bt-nope"], ["inspect", "bt-inuse", "bt-nope"]):
            ours, theirs = _run(tools, "berth", "context", *args), _run(tools, "docker", "context", *args)
            assert (ours.returncode, ours.stdout, ours.stderr) == (theirs.returncode, theirs.stdout,
                                                                   theirs.stderr), args
    finally:
        _run(tools, "docker", "context", "use", "default")
        _run(tools, "docker", "context", "rm", "bt-inuse")
