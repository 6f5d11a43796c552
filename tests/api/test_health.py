"""Health checks through berthd, driven by the real docker CLI: State.Health, events, ps, filters, restarts."""

from __future__ import annotations

import hashlib
import io
import json
import signal
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from tests.api.conftest import RunningDaemon, berthd_with_images, load_images, restartable_berthd, seed_archives
from tests.api.test_containers import _wait_for, docker_cli

pytestmark = pytest.mark.needs_root

HEALTHY_IMAGE = "berth-health:latest"


@pytest.fixture(scope="module")
def engine(run_tag: str) -> Iterator[RunningDaemon]:
    with berthd_with_images(run_tag, "busybox") as daemon:
        with tempfile.TemporaryDirectory(prefix=f"{run_tag}-hc-") as tmp:
            image = Path(tmp) / "image.tar"
            _with_image_healthcheck(seed_archives("busybox")[0], image, ["CMD-SHELL", "test -f /tmp/image-ok"])
            load_images(daemon, [image])
        yield daemon


def _with_image_healthcheck(source: Path, target: Path, test: list[str]) -> None:
    """busybox in `docker save` format again, its config carrying a HEALTHCHECK (what a build would write)."""
    with tarfile.open(source) as src:
        manifest = json.load(src.extractfile("manifest.json"))  # type: ignore[arg-type]
        config = json.load(src.extractfile(manifest[0]["Config"]))  # type: ignore[arg-type]
        layers = {name: src.extractfile(name).read() for name in manifest[0]["Layers"]}  # type: ignore[union-attr]
    config["config"]["Healthcheck"] = {"Test": test, "Interval": 1_000_000_000, "Retries": 1}
    raw = json.dumps(config).encode()
    config_name = f"blobs/sha256/{hashlib.sha256(raw).hexdigest()}"
    entries = {config_name: raw, **layers, "manifest.json": json.dumps(
        [{"Config": config_name, "RepoTags": [HEALTHY_IMAGE], "Layers": list(layers)}]).encode()}
    with tarfile.open(target, "w") as out:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))


def _health(daemon: RunningDaemon, name: str) -> dict[str, Any] | None:
    out = docker_cli(daemon, "inspect", "-f", "{{json .State.Health}}", name)
    assert out.returncode == 0, out.stderr
    value: dict[str, Any] | None = json.loads(out.stdout)
    return value


def _status(daemon: RunningDaemon, name: str) -> str | None:
    health = _health(daemon, name)
    return None if health is None else str(health["Status"])


def test_health_goes_starting_unhealthy_healthy(engine: RunningDaemon) -> None:
    since = str(int(time.time()) - 1)
    try:
        # Until /tmp/go exists the first probe waits, so no result can end `starting` before we look.
        check = "until [ -e /tmp/go ]; do sleep 0.05; done; test -f /tmp/ok && echo fine"
        out = docker_cli(engine, "run", "-d", "--name", "hc", "--health-cmd", check, "--health-interval", "1s",
                         "--health-timeout", "120s", "--health-retries", "3", "busybox", "sleep", "300")
        assert out.returncode == 0, out.stderr
        assert _status(engine, "hc") == "starting"
        assert "(health: starting)" in docker_cli(engine, "ps", "--format", "{{.Status}}", "-f", "name=hc").stdout
        assert docker_cli(engine, "exec", "hc", "touch", "/tmp/go").returncode == 0
        _wait_for(lambda: _status(engine, "hc") == "unhealthy", "the failing check to make it unhealthy")
        health = _health(engine, "hc")
        assert health is not None and int(str(health["FailingStreak"])) >= 3
        log = health["Log"]
        assert isinstance(log, list) and 3 <= len(log) <= 5
        assert all(entry["ExitCode"] == 1 for entry in log)
        assert docker_cli(engine, "exec", "hc", "touch", "/tmp/ok").returncode == 0
        _wait_for(lambda: _status(engine, "hc") == "healthy", "the passing check to make it healthy")
        health = _health(engine, "hc")
        assert health is not None and health["FailingStreak"] == 0
        last = health["Log"][-1]  # type: ignore[index]
        assert last["ExitCode"] == 0 and last["Output"] == "fine\n"
        assert last["Start"] <= last["End"]
        ps = docker_cli(engine, "ps", "--filter", "health=healthy", "--format", "{{.Names}}|{{.Status}}").stdout
        assert ps.startswith("hc|Up ") and ps.strip().endswith("(healthy)")
        assert "hc" not in docker_cli(engine, "ps", "-q", "--filter", "health=unhealthy",
                                      "--format", "{{.Names}}").stdout.split()
        events = docker_cli(engine, "events", "--since", since, "--until", str(int(time.time()) + 1),
                            "--filter", "container=hc", "--format", "{{.Action}}").stdout.splitlines()
        statuses = [e for e in events if e.startswith("health_status")]
        assert statuses[:2] == ["health_status: unhealthy", "health_status: healthy"], events
        # Probes run as execs but are not the container's ExecIDs.
        assert docker_cli(engine, "inspect", "-f", "{{json .ExecIDs}}", "hc").stdout.strip() == "null"
    finally:
        docker_cli(engine, "rm", "-f", "hc")


def test_image_healthcheck_applies_and_no_healthcheck_turns_it_off(engine: RunningDaemon) -> None:
    try:
        assert docker_cli(engine, "run", "-d", "--name", "from-image", HEALTHY_IMAGE, "sleep", "300").returncode == 0
        assert docker_cli(engine, "run", "-d", "--name", "unchecked", "--no-healthcheck", HEALTHY_IMAGE,
                          "sleep", "300").returncode == 0
        test = docker_cli(engine, "inspect", "-f", "{{json .Config.Healthcheck.Test}}", "from-image").stdout
        assert json.loads(test) == ["CMD-SHELL", "test -f /tmp/image-ok"]
        _wait_for(lambda: _status(engine, "from-image") == "unhealthy", "the image's check to fail (retries 1)")
        docker_cli(engine, "exec", "from-image", "touch", "/tmp/image-ok")
        _wait_for(lambda: _status(engine, "from-image") == "healthy", "the image's check to pass")
        assert _health(engine, "unchecked") is None
        test = docker_cli(engine, "inspect", "-f", "{{json .Config.Healthcheck.Test}}", "unchecked").stdout
        assert json.loads(test) == ["NONE"]
        none = docker_cli(engine, "ps", "--filter", "health=none", "--format", "{{.Names}}").stdout.split()
        assert "unchecked" in none and "from-image" not in none
        status = docker_cli(engine, "ps", "--filter", "name=unchecked", "--format", "{{.Status}}").stdout
        assert status.startswith("Up ") and "health" not in status
        # Only the interval comes from the command line: the image's test stays (field-by-field merge).
        assert docker_cli(engine, "run", "-d", "--name", "merged", "--health-interval", "2s", HEALTHY_IMAGE,
                          "sleep", "300").returncode == 0
        check = json.loads(docker_cli(engine, "inspect", "-f", "{{json .Config.Healthcheck}}", "merged").stdout)
        assert check["Test"] == ["CMD-SHELL", "test -f /tmp/image-ok"] and check["Interval"] == 2_000_000_000
    finally:
        docker_cli(engine, "rm", "-f", "from-image", "unchecked", "merged")


@pytest.mark.parametrize(("check", "message"), [
    ({"Test": ["CMD", "true"], "Retries": -1}, "Retries in Healthcheck cannot be negative"),
    ({"Test": ["CMD", "true"], "Interval": 1000}, "Interval in Healthcheck cannot be less than 1ms"),
])
def test_bad_healthcheck_options_are_refused(engine: RunningDaemon, check: dict[str, object], message: str) -> None:
    # The CLI checks its own flags; the API must refuse what other clients send (docker-py here).
    client = docker.APIClient(base_url=engine.docker_host)
    try:
        with pytest.raises(docker.errors.APIError) as caught:
            client.create_container("busybox", "true", healthcheck=check)
        assert caught.value.status_code == 400 and message in str(caught.value.explanation)
    finally:
        client.close()


def test_failures_in_the_start_period_do_not_count(engine: RunningDaemon) -> None:
    try:
        assert docker_cli(engine, "run", "-d", "--name", "slow-start", "--health-cmd", "test -f /tmp/ok",
                          "--health-interval", "1s", "--health-start-interval", "0.2s", "--health-retries", "1",
                          "--health-start-period", "300s", "busybox", "sleep", "300").returncode == 0

        def failures() -> int:
            health = _health(engine, "slow-start") or {}
            return sum(1 for entry in health.get("Log") or [] if entry["ExitCode"] == 1)

        _wait_for(lambda: failures() >= 3, "three failed probes (start interval)")
        health = _health(engine, "slow-start")
        assert health is not None and (health["Status"], health["FailingStreak"]) == ("starting", 0)
        docker_cli(engine, "exec", "slow-start", "touch", "/tmp/ok")
        _wait_for(lambda: _status(engine, "slow-start") == "healthy", "a passing probe to end the start period")
    finally:
        docker_cli(engine, "rm", "-f", "slow-start")


def test_a_probe_past_its_timeout_fails(engine: RunningDaemon) -> None:
    try:
        # Each probe notes its pid (in the container's namespace), then becomes the sleep that outlasts it.
        assert docker_cli(engine, "run", "-d", "--name", "stuck", "--health-cmd",
                          "echo $$ >> /tmp/probes; exec sleep 3000",
                          "--health-interval", "1s", "--health-timeout", "1s", "--health-retries", "1",
                          "busybox", "sleep", "300").returncode == 0
        _wait_for(lambda: _status(engine, "stuck") == "unhealthy", "the timed-out probe to count as a failure")
        health = _health(engine, "stuck")
        assert health is not None
        entry = health["Log"][0]
        assert (entry["ExitCode"], entry["Output"]) == (-1, "Health check exceeded timeout (1s)")
        # The first probe was killed (through the pidfd taken as it started): its process is gone.
        first = docker_cli(engine, "exec", "stuck", "head", "-n1", "/tmp/probes").stdout.strip()
        assert first.isdigit(), first

        def first_probe_alive() -> bool:
            state = docker_cli(engine, "exec", "stuck", "sh", "-c", f"cut -d' ' -f3 /proc/{first}/stat 2>/dev/null")
            return state.stdout.strip() not in ("", "Z")

        _wait_for(lambda: not first_probe_alive(), "the timed-out probe to be killed")
        _wait_for(lambda: len((_health(engine, "stuck") or {})["Log"]) >= 3, "three timed-out probes")
        # Each timed-out probe was killed, not left behind: at most the one running now is there.
        assert docker_cli(engine, "top", "stuck").stdout.count("sleep 3000") <= 1
    finally:
        docker_cli(engine, "rm", "-f", "stuck")


def test_unknown_health_filter_value_is_refused(engine: RunningDaemon) -> None:
    out = docker_cli(engine, "ps", "--filter", "health=sickly")
    assert out.returncode != 0 and "Unrecognised filter value for health: sickly" in out.stderr


def test_health_checks_resume_after_a_daemon_restart(run_tag: str) -> None:
    with restartable_berthd(run_tag, "busybox") as berthd:
        docker_cli(berthd.daemon, "run", "-d", "--name", "checked", "--health-cmd", "test -f /tmp/ok",
                   "--health-interval", "1s", "--health-retries", "1", "busybox", "sleep", "300")
        _wait_for(lambda: _status(berthd.daemon, "checked") == "unhealthy", "the check to fail")
        berthd.halt(signal.SIGKILL)
        daemon = berthd.start()
        assert _status(daemon, "checked") == "unhealthy"  # the state was kept
        docker_cli(daemon, "exec", "checked", "touch", "/tmp/ok")
        _wait_for(lambda: _status(daemon, "checked") == "healthy", "probes to resume after the restart")


def test_probe_output_is_kept_to_4096_bytes(engine: RunningDaemon) -> None:
    """moby keeps a probe's first 4096 bytes; the rest is read and dropped (not held by the daemon)."""
    try:
        check = "yes | head -c 1000000"
        out = docker_cli(engine, "run", "-d", "--name", "hc-chatty", "--health-cmd", check, "--health-interval", "1s",
                         "--health-timeout", "60s", "busybox", "sleep", "300")
        assert out.returncode == 0, out.stderr
        _wait_for(lambda: _status(engine, "hc-chatty") == "healthy", "the chatty check to pass")
        health = _health(engine, "hc-chatty")
        assert health is not None
        assert health["Log"][-1]["Output"] == "y\n" * 2048
    finally:
        docker_cli(engine, "rm", "-f", "hc-chatty")
