"""live-restore: containers outlive a berthd restart by default; `"live-restore": false` stops them like dockerd."""

from __future__ import annotations

import json
import os
import signal

from tests.api.conftest import RunningDaemon, restartable_berthd
from tests.api.test_containers import _wait_for, docker_cli


def _info(daemon: RunningDaemon) -> dict[str, object]:
    result = docker_cli(daemon, "info", "--format", "{{json .}}")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_default_berthd_reports_live_restore_and_keeps_containers_over_sigterm(run_tag: str) -> None:
    with restartable_berthd(run_tag, "busybox") as berthd:
        assert _info(berthd.daemon)["LiveRestoreEnabled"] is True
        docker_cli(berthd.daemon, "run", "-d", "--name", "stays", "busybox", "sleep", "300")
        pid = int(docker_cli(berthd.daemon, "inspect", "-f", "{{.State.Pid}}", "stays").stdout)
        berthd.halt(signal.SIGTERM)
        assert os.path.exists(f"/proc/{pid}")
        daemon = berthd.start()
        assert docker_cli(daemon, "inspect", "-f", "{{.State.Status}}", "stays").stdout.strip() == "running"


def test_live_restore_false_stops_containers_at_shutdown_and_policies_bring_them_back(run_tag: str) -> None:
    with restartable_berthd(run_tag, "busybox", config={"live-restore": False}) as berthd:
        daemon = berthd.daemon
        assert _info(daemon)["LiveRestoreEnabled"] is False
        # sh as PID 1 ignores SIGTERM: the stop timeout's SIGKILL ends it, as dockerd's shutdown does.
        docker_cli(daemon, "run", "-d", "--name", "phoenix", "--restart", "always", "--stop-timeout", "1",
                   "busybox", "sleep", "300")
        docker_cli(daemon, "run", "-d", "--name", "polite", "busybox", "sh", "-c",
                   "trap 'exit 3' TERM; while :; do sleep 0.1; done")
        docker_cli(daemon, "run", "-d", "--name", "paused", "--stop-timeout", "1", "busybox", "sleep", "300")
        assert docker_cli(daemon, "pause", "paused").returncode == 0
        pids = {name: int(docker_cli(daemon, "inspect", "-f", "{{.State.Pid}}", name).stdout)
                for name in ("phoenix", "polite", "paused")}
        berthd.halt(signal.SIGTERM)
        _wait_for(lambda: not any(os.path.exists(f"/proc/{p}") for p in pids.values()), "the containers to stop")
        daemon = berthd.start()

        def state(name: str) -> list[str]:
            return docker_cli(daemon, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", name).stdout.split()

        assert state("polite") == ["exited", "3"]  # its own stop signal handler ran
        assert state("paused") == ["exited", "137"]  # thawed, then killed after its stop timeout
        # A shutdown is not a user's stop: `always` brings phoenix back with the daemon.
        _wait_for(lambda: state("phoenix")[0] == "running", "the always-restart container to come back")
        assert int(docker_cli(daemon, "inspect", "-f", "{{.State.Pid}}", "phoenix").stdout) != pids["phoenix"]
