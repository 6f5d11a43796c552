"""`berth pull/push/login/logout/search` against berthd and real local registries.

The pull progress is checked on a real pty (in-place redraws: cursor up, clear
line, a bar) and piped (plain lines, no escape sequences); pushes are read back
with skopeo; login/logout are checked in the config.json they write.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.test_containers import _drive_pty
from tests.api.test_push import registry_berthd, skopeo_inspect
from tests.cli.conftest import BERTH, Tools
from tests.fixtures.registry import LocalRegistry

pytestmark = [pytest.mark.needs_root, pytest.mark.needs_registry]


@pytest.fixture(scope="module")
def tools(seeded_registry: LocalRegistry, run_tag: str) -> Iterator[Tools]:
    with registry_berthd(run_tag, seeded_registry) as daemon:
        yield Tools(daemon)


def _config(tools: Tools) -> dict[str, object]:
    parsed: dict[str, object] = json.loads((Path(tools.daemon.env()["DOCKER_CONFIG"]) / "config.json").read_text())
    return parsed


def _final_screen(output: str) -> list[str]:
    """What a terminal shows after `output`: enough of VT100 for docker's progress
    (cursor up/down `ESC[nA`/`ESC[nB`, erase line `ESC[2K`, CR, LF)."""
    lines, row, col = [""], 0, 0
    for token in re.findall(r"\x1b\[(\d*)([ABK])|(\r\n|\n)|(\r)|([^\x1b\r\n]+)", output):
        count, code, newline, cr, text = token
        if code == "A":
            row = max(0, row - int(count or 1))
        elif code == "B":
            row += int(count or 1)
        elif code == "K":
            lines[row] = ""
        elif newline:
            row, col = row + 1, 0
        elif cr:
            col = 0
        elif text:
            current = lines[row]
            lines[row] = current[:col] + text + current[col + len(text):]
            col += len(text)
        while len(lines) <= row:
            lines.append("")
    return [line.rstrip() for line in lines if line.strip()]


def test_pull_on_a_tty_draws_per_layer_progress(tools: Tools, seeded_registry: LocalRegistry) -> None:
    name = f"{seeded_registry.host}/library/debian:bookworm-slim"
    screen, status = _drive_pty([BERTH, "pull", name], tools.daemon.env(), b"", rows=40, cols=160)
    assert status == 0, screen
    assert "\x1b[1A" in screen and "\x1b[1B" in screen  # the layer's line is revisited in place
    assert "\x1b[2K" in screen  # ... and cleared before each redraw
    assert re.search(r"[0-9a-f]{12}: Downloading \[=*>? *\] +[0-9.]+[kMG]?B/[0-9.]+[kMG]?B", screen), screen
    assert re.search(r"[0-9a-f]{12}: Pull complete", screen)
    assert screen.rstrip().endswith(name)
    # Redrawn in place: the final screen has one line per layer, each at its last state.
    final = _final_screen(screen)
    layer_lines = [line for line in final if re.match(r"[0-9a-f]{12}: ", line)]
    assert layer_lines and all(line.endswith(": Pull complete") for line in layer_lines), final
    assert len({line[:12] for line in layer_lines}) == len(layer_lines), final
    assert final[0] == "bookworm-slim: Pulling from library/debian" and final[-1] == name


def test_push_on_a_tty_redraws_layer_lines(tools: Tools, seeded_registry: LocalRegistry,
                                           make_registry: object) -> None:
    target = make_registry()  # type: ignore[operator]
    name = f"{target.host}/berthtest/tty:v1"
    tools.berth("pull", f"{seeded_registry.host}/library/debian:bookworm-slim")
    tools.berth("tag", f"{seeded_registry.host}/library/debian:bookworm-slim", name)
    screen, status = _drive_pty([BERTH, "push", name], tools.daemon.env(), b"", rows=40, cols=160)
    assert status == 0, screen
    final = _final_screen(screen)
    assert final[0] == f"The push refers to repository [{target.host}/berthtest/tty]"
    layer_lines = [line for line in final if re.match(r"[0-9a-f]{12}: ", line)]
    assert layer_lines and all(line.endswith(": Pushed") for line in layer_lines), final
    assert re.fullmatch(r"v1: digest: sha256:[0-9a-f]{64} size: \d+", final[-1]), final


def test_pull_piped_prints_plain_lines(tools: Tools) -> None:
    tools.berth("rmi", "-f", "busybox")
    out = tools.berth("pull", "busybox")
    assert out.returncode == 0, out.stderr
    assert "\x1b" not in out.stdout and "Downloading" not in out.stdout  # no bars when piped
    lines = out.stdout.splitlines()
    assert lines[:2] == ["Using default tag: latest", "latest: Pulling from library/busybox"]
    assert any(re.fullmatch(r"[0-9a-f]{12}: Pull complete", line) for line in lines)
    assert any(line.startswith("Digest: sha256:") for line in lines)
    assert lines[-2:] == ["Status: Downloaded newer image for busybox:latest", "docker.io/library/busybox:latest"]


def test_run_pulls_with_progress_on_stderr(tools: Tools, seeded_registry: LocalRegistry) -> None:
    image = f"{seeded_registry.host}/library/hello-world"
    tools.berth("rmi", "-f", image)
    out = tools.berth("run", "--rm", image)
    assert out.returncode == 0, out.stderr
    assert "Hello from Berth!" in out.stdout
    lines = out.stderr.splitlines()
    assert lines[:2] == [f"Unable to find image '{image}:latest' locally", "latest: Pulling from library/hello-world"]
    assert any(re.fullmatch(r"[0-9a-f]{12}: Pull complete", line) for line in lines)
    assert f"Status: Downloaded newer image for {image}:latest" in lines
    bad = tools.berth("run", "--rm", f"{seeded_registry.host}/library/nosuch")
    assert bad.returncode == 125
    assert bad.stderr.splitlines()[-1].startswith("Error response from daemon: ")


def test_pull_all_tags_and_up_to_date(tools: Tools, make_registry: object) -> None:
    target = make_registry()  # type: ignore[operator]
    tools.berth("pull", "busybox")
    repo = f"{target.host}/berthtest/tags"
    for tag in ("one", "two"):
        tools.berth("tag", "busybox", f"{repo}:{tag}")
    assert tools.berth("push", "--all-tags", repo).returncode == 0
    for tag in ("one", "two"):
        tools.berth("rmi", f"{repo}:{tag}")
    out = tools.berth("pull", "--all-tags", repo)
    assert out.returncode == 0, out.stderr
    assert "one: Pulling from berthtest/tags" in out.stdout and "two: Pulling from berthtest/tags" in out.stdout
    assert out.stdout.splitlines()[-1] == repo
    # Filtered by repository, the image's other names (busybox:latest) are not listed, as in docker.
    listed = tools.berth("images", "--format", "{{.Repository}}:{{.Tag}}", repo).stdout.split()
    assert sorted(listed) == [f"{repo}:one", f"{repo}:two"]
    again = tools.berth("pull", f"{repo}:one")
    assert f"Status: Image is up to date for {repo}:one" in again.stdout


def test_push_then_skopeo_reads_the_manifest(tools: Tools, make_registry: object) -> None:
    target = make_registry()  # type: ignore[operator]
    tools.berth("pull", "busybox")
    name = f"{target.host}/berthtest/cli:v2"
    assert tools.berth("tag", "busybox", name).returncode == 0
    out = tools.berth("push", name)
    assert out.returncode == 0, out.stderr
    digest = skopeo_inspect(target, "berthtest/cli:v2")["Digest"]
    assert out.stdout.splitlines()[0] == f"The push refers to repository [{target.host}/berthtest/cli]"
    assert re.search(r"^[0-9a-f]{12}: Pushed$", out.stdout, re.M)
    assert f"v2: digest: {digest} size: " in out.stdout
    assert "\x1b" not in out.stdout


def test_push_of_an_unknown_image_is_one_line(tools: Tools) -> None:
    out = tools.berth("push", "localhost:1/berthtest/nope:v1")
    assert out.returncode == 1
    assert out.stderr.strip() == ("Error response from daemon: An image does not exist locally with the tag: "
                                  "localhost:1/berthtest/nope")


def test_login_push_logout(tools: Tools, registry_basic_auth: LocalRegistry) -> None:
    auth = registry_basic_auth.auth
    assert auth is not None
    host = registry_basic_auth.host
    wrong = tools.berth("login", "-u", auth.username, "--password-stdin", host, stdin="not-it\n")
    assert wrong.returncode == 1
    assert wrong.stderr.strip() == (f"Error response from daemon: login attempt to http://{host}/v2/ failed with "
                                    "status: 401 Unauthorized")
    ok = tools.berth("login", "-u", auth.username, "--password-stdin", host, stdin=auth.password + "\n")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == "Login Succeeded"
    entry = _config(tools)["auths"][host]  # type: ignore[index]
    assert base64.b64decode(entry["auth"]).decode() == f"{auth.username}:{auth.password}"
    # The stored credentials go with the push (X-Registry-Auth).
    tools.berth("pull", "busybox")
    name = f"{host}/berthtest/private-cli:v1"
    tools.berth("tag", "busybox", name)
    pushed = tools.berth("push", name)
    assert pushed.returncode == 0, pushed.stderr
    assert skopeo_inspect(registry_basic_auth, "berthtest/private-cli:v1")["Digest"]
    assert tools.berth("logout", host).stdout.strip() == f"Removing login credentials for {host}"
    assert host not in _config(tools)["auths"]  # type: ignore[operator]
    assert tools.berth("logout", host).stdout.strip() == f"Not logged in to {host}"
    denied = tools.berth("push", name)
    assert denied.returncode == 1 and len(denied.stderr.strip().splitlines()) == 1


def test_pull_bad_input_is_one_line(tools: Tools, seeded_registry: LocalRegistry) -> None:
    for args, wanted in (
        (["pull", f"{seeded_registry.host}/library/nosuch:v1"], "Error response from daemon: "),
        (["pull", "127.0.0.1:1/berthtest/x"], "Error response from daemon: "),
        (["pull", "Bad/Name"], "invalid reference format"),
        (["pull", "-a", "busybox:latest"], "tag can't be used with --all-tags/-a"),
    ):
        out = tools.berth(*args)
        assert out.returncode == 1, (args, out.stderr)
        assert len(out.stderr.strip().splitlines()) == 1 and wanted in out.stderr, (args, out.stderr)
        assert "Traceback" not in out.stderr


def test_login_bad_input(tools: Tools) -> None:
    out = tools.berth("login", "--password-stdin", "localhost:1", stdin="x\n")
    assert out.returncode == 1 and out.stderr.strip() == "berth: Must provide --username with --password-stdin"
    out = tools.berth("login", "localhost:1")
    assert out.returncode == 1
    assert out.stderr.strip() == "Error: Cannot perform an interactive login from a non TTY device"


def test_search_lists_a_local_registry(tools: Tools, seeded_registry: LocalRegistry) -> None:
    out = tools.berth("search", f"{seeded_registry.host}/deb")
    assert out.returncode == 0, out.stderr
    header, *rows = out.stdout.splitlines()
    assert header.split() == ["NAME", "DESCRIPTION", "STARS", "OFFICIAL"]
    assert [row.split()[0] for row in rows] == [f"{seeded_registry.host}/library/debian"]
    hub = tools.berth("search", "busybox")  # Docker Hub is offline here: no results, no hang
    assert hub.returncode == 0 and hub.stdout.split() == header.split()


HELPER = """#!/usr/bin/env python3
# docker-credential-helpers protocol, kept in a JSON file beside this script.
import json, pathlib, sys
store = pathlib.Path(__file__).with_name("store.json")
saved = json.loads(store.read_text()) if store.exists() else {}
action, payload = sys.argv[1], sys.stdin.read().strip()
if action == "store":
    entry = json.loads(payload)
    saved[entry["ServerURL"]] = entry
elif action == "get":
    if payload not in saved:
        print("credentials not found in native keychain")
        sys.exit(1)
    print(json.dumps(saved[payload]))
elif action == "erase":
    saved.pop(payload, None)
store.write_text(json.dumps(saved))
"""


def test_login_with_a_credential_helper(tools: Tools, registry_basic_auth: LocalRegistry, tmp_path: Path) -> None:
    import os
    import subprocess

    auth = registry_basic_auth.auth
    assert auth is not None
    host = registry_basic_auth.host
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-berthtest"
    helper.write_text(HELPER)
    helper.chmod(0o755)
    config_dir = tmp_path / "docker-config"
    config_dir.mkdir()
    (config_dir / "config.json").write_text(json.dumps({"credsStore": "berthtest"}))
    env = dict(tools.daemon.env(), DOCKER_CONFIG=str(config_dir), PATH=f"{bin_dir}:{os.environ['PATH']}")

    def run(*argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(argv), env=env, input=stdin, capture_output=True, text=True, timeout=120)

    ok = run(BERTH, "login", "-u", auth.username, "--password-stdin", host, stdin=auth.password + "\n")
    assert ok.returncode == 0 and ok.stdout.strip() == "Login Succeeded", ok.stderr
    assert "unencrypted" not in ok.stderr
    assert json.loads((config_dir / "config.json").read_text())["auths"] == {host: {}}
    assert json.loads((bin_dir / "store.json").read_text())[host]["Secret"] == auth.password
    # Both CLIs find the secret through the helper.
    name = f"{host}/berthtest/helped:v1"
    tools.berth("pull", "busybox")
    tools.berth("tag", "busybox", name)
    assert run(BERTH, "push", name).returncode == 0
    assert run("docker", "push", name).returncode == 0
    assert run(BERTH, "logout", host).stdout.strip() == f"Removing login credentials for {host}"
    assert json.loads((bin_dir / "store.json").read_text()) == {}
    denied = run(BERTH, "push", name)
    assert denied.returncode == 1 and len(denied.stderr.strip().splitlines()) == 1


def test_login_logout_are_shared_with_docker(tools: Tools, registry_basic_auth: LocalRegistry) -> None:
    """One credential store: a login by either CLI lets the other push; a logout by either ends it for both."""
    auth = registry_basic_auth.auth
    assert auth is not None
    host = registry_basic_auth.host
    wrong = [tools.run(tool, "login", "-u", auth.username, "--password-stdin", host, stdin="not-it\n")
             for tool in (BERTH, "docker")]
    assert wrong[0].returncode == wrong[1].returncode == 1
    assert wrong[0].stderr.strip() == wrong[1].stderr.strip().splitlines()[-1]
    if tools.docker("image", "inspect", "busybox").returncode:
        tools.ok("docker", "pull", "busybox")  # from the seeded registry mirror, as test_login_push_logout does
    name = f"{host}/berthtest/shared-login:v1"
    tools.ok("docker", "tag", "busybox", name)
    for first, second in ((BERTH, "docker"), ("docker", BERTH)):
        logged = tools.run(first, "login", "-u", auth.username, "--password-stdin", host, stdin=auth.password + "\n")
        assert logged.returncode == 0 and "Login Succeeded" in logged.stdout, logged.stderr
        pushed = tools.run(second, "push", name)
        assert pushed.returncode == 0, pushed.stderr
        out = tools.run(second, "logout", host)
        assert (out.returncode, out.stdout.strip()) == (0, f"Removing login credentials for {host}")
        assert host not in _config(tools)["auths"]  # type: ignore[operator]
        denied = tools.run(first, "push", name)
        assert denied.returncode == 1
