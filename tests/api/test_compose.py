"""Debian's docker-compose 1.29 (Python, docker-py) against berthd through DOCKER_HOST."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import RunningDaemon, berthd_with_images
from tests.api.test_containers import _wait_for, docker_cli

pytestmark = [pytest.mark.needs_root,
              pytest.mark.skipif(shutil.which("docker-compose") is None,
                                 reason="docker-compose missing: installers/linux/host-deps.sh test")]

# network_mode none: no user network needed, so this project runs whether or not berthd serves /networks.
ONE_SERVICE = """\
version: "2.4"
services:
  web:
    image: busybox
    command: ["sh", "-c", "echo serving /www; exec httpd -f -v -p 8080 -h /www"]
    network_mode: none
    volumes:
      - site:/www
    labels:
      berth.test.role: "static site"
volumes:
  site:
"""

# The client starts only once web's health check passes (compose polls State.Health), so one fetch must do.
TWO_SERVICES = """\
version: "2.4"
services:
  web:
    image: busybox
    command: ["sh", "-c", "mkdir -p /www && echo hello from web > /www/index.html && exec httpd -f -p 80 -h /www"]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1/"]
      interval: 1s
  client:
    image: busybox
    depends_on:
      web:
        condition: service_healthy
    command: ["wget", "-q", "-O-", "http://web/"]
"""


@pytest.fixture(scope="module")
def engine(run_tag: str) -> Iterator[RunningDaemon]:
    with berthd_with_images(run_tag, "busybox") as daemon:
        yield daemon


@pytest.fixture
def project(run_tag: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=f"{run_tag}-compose-") as tmp:
        yield Path(tmp)


def compose(daemon: RunningDaemon, project_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # The project's name carries the run tag, so every object compose creates does too.
    name = project_dir.name.replace("-", "").lower()
    return subprocess.run(["docker-compose", "-p", name, *args], cwd=project_dir, env=daemon.env(),
                          capture_output=True, text=True, timeout=120)


def test_one_service_project_up_ps_logs_down(engine: RunningDaemon, project: Path) -> None:
    (project / "docker-compose.yml").write_text(ONE_SERVICE)
    name = project.name.replace("-", "").lower()
    up = compose(engine, project, "up", "-d")
    try:
        assert up.returncode == 0, up.stderr
        container = f"{name}_web_1"
        state = json.loads(docker_cli(engine, "inspect", container).stdout)[0]
        assert state["State"]["Status"] == "running"
        labels = state["Config"]["Labels"]
        assert labels["berth.test.role"] == "static site"
        assert labels["com.docker.compose.project"] == name and labels["com.docker.compose.service"] == "web"
        [mount] = state["Mounts"]
        assert (mount["Type"], mount["Name"], mount["Destination"]) == ("volume", f"{name}_site", "/www")
        ps = compose(engine, project, "ps")
        assert ps.returncode == 0, ps.stderr
        assert any(line.startswith(container) and " Up " in line for line in ps.stdout.splitlines()), ps.stdout
        _wait_for(lambda: "serving /www" in compose(engine, project, "logs", "--no-color").stdout,
                  "the service's output in `docker-compose logs`")
        # The volume is the service's: what the container writes there is in the volume's directory.
        wrote = compose(engine, project, "exec", "-T", "web", "sh", "-c", "echo compose > /www/index.html")
        assert wrote.returncode == 0, wrote.stderr
        assert (Path(mount["Source"]) / "index.html").read_text() == "compose\n"
        top = docker_cli(engine, "top", container).stdout
        assert "httpd -f -v -p 8080 -h /www" in top
        down = compose(engine, project, "down", "-v")
        assert down.returncode == 0, down.stderr
        assert docker_cli(engine, "ps", "-aq", "--filter", f"label=com.docker.compose.project={name}").stdout == ""
        assert f"{name}_site" not in docker_cli(engine, "volume", "ls", "-q").stdout.split()
    finally:
        compose(engine, project, "down", "-v")


def test_two_services_reach_each_other_by_name(engine: RunningDaemon, project: Path) -> None:
    (project / "docker-compose.yml").write_text(TWO_SERVICES)
    name = project.name.replace("-", "").lower()
    up = compose(engine, project, "up", "-d")
    try:
        assert up.returncode == 0, up.stderr
        client = f"{name}_client_1"
        wait = docker_cli(engine, "wait", client, timeout=120)
        assert wait.stdout.strip() == "0", wait.stderr
        logs = compose(engine, project, "logs", "--no-color", "client")
        assert "hello from web" in logs.stdout, logs.stdout + logs.stderr
        networks = docker_cli(engine, "network", "ls", "--format", "{{.Name}}").stdout.split()
        assert f"{name}_default" in networks
        down = compose(engine, project, "down")
        assert down.returncode == 0, down.stderr
        assert f"{name}_default" not in docker_cli(engine, "network", "ls", "--format", "{{.Name}}").stdout.split()
        assert docker_cli(engine, "ps", "-aq", "--filter", f"label=com.docker.compose.project={name}").stdout == ""
    finally:
        compose(engine, project, "down")


LIFECYCLE = """\
version: "2.4"
services:
  web:
    image: busybox
    command: ["httpd", "-f", "-p", "8080", "-h", "/"]
    ports: ["8080"]
    environment:
      GREETING: hello
    stop_signal: SIGKILL
"""


def test_project_lifecycle_commands(engine: RunningDaemon, project: Path) -> None:
    (project / "docker-compose.yml").write_text(LIFECYCLE)
    name = project.name.replace("-", "").lower()
    first, second = f"{name}_web_1", f"{name}_web_2"

    def state(container: str) -> str:
        return docker_cli(engine, "inspect", "-f", "{{.State.Status}}", container).stdout.strip()

    def ok(*args: str) -> str:
        out = compose(engine, project, *args)
        assert out.returncode == 0, (args, out.stderr)
        return out.stdout

    try:
        ok("up", "-d")
        host, _, port = ok("port", "web", "8080").strip().rpartition(":")
        assert host == "0.0.0.0" and int(port) > 0
        assert ok("exec", "-T", "web", "sh", "-c", "echo $GREETING") == "hello\n"
        started = docker_cli(engine, "inspect", "-f", "{{.State.StartedAt}}", first).stdout
        ok("stop")
        assert state(first) == "exited"
        ok("start")
        assert state(first) == "running"
        ok("restart")
        assert docker_cli(engine, "inspect", "-f", "{{.State.StartedAt}}", first).stdout != started
        ok("pause")
        assert state(first) == "paused"
        ok("unpause")
        assert state(first) == "running"
        assert "httpd -f -p 8080 -h /" in ok("top")
        ok("up", "-d", "--scale", "web=2")
        assert state(second) == "running"
        assert ok("run", "--rm", "-T", "web", "echo", "one-off") == "one-off\n"
        ok("kill")
        assert docker_cli(engine, "inspect", "-f", "{{.State.ExitCode}}", first).stdout.strip() == "137"
        ok("rm", "-f")
        assert docker_cli(engine, "ps", "-aq", "--filter", f"label=com.docker.compose.project={name}").stdout == ""
    finally:
        compose(engine, project, "down")
