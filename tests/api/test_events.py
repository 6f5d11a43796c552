"""`docker events` against berthd: replay with --since/--until, live stream, filters."""

from __future__ import annotations

import json
import signal
import subprocess
import time

from engine.api.events import parse_timestamp
from tests.api.conftest import RunningDaemon


def _events(daemon: RunningDaemon, *args: str) -> list[dict]:
    out = subprocess.run(["docker", "events", "--format", "{{json .}}", *args],
                         env=daemon.env(), capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def test_reload_event_is_replayed_with_since_until(reloadable_berthd: RunningDaemon) -> None:
    start = time.time() - 1
    reloadable_berthd.proc.send_signal(signal.SIGHUP)
    # The CLI's --until ends the stream by itself; poll until the reload is in the history.
    for _ in range(100):
        got = _events(reloadable_berthd, "--since", f"{start:.0f}", "--until", f"{time.time():.3f}")
        if got:
            break
        time.sleep(0.05)
    assert [(e["Type"], e["Action"]) for e in got] == [("daemon", "reload")]
    assert got[0]["Actor"]["Attributes"]["debug"] == "false"
    assert _events(reloadable_berthd, "--since", f"{start:.0f}", "--until", f"{time.time():.3f}",
                   "--filter", "type=container") == []


def test_live_stream_delivers_and_filters(reloadable_berthd: RunningDaemon) -> None:
    watcher = subprocess.Popen(
        ["docker", "events", "--filter", "type=daemon", "--filter", "event=reload",
         "--format", "{{.Type}} {{.Action}}"],
        env=reloadable_berthd.env(), stdout=subprocess.PIPE, text=True,
    )
    try:
        # The subscription exists once the daemon counts the listener.
        for _ in range(200):
            info = subprocess.run(["docker", "info", "--format", "{{.NEventsListener}}"],
                                  env=reloadable_berthd.env(), capture_output=True, text=True)
            if info.stdout.strip() == "1":
                break
            time.sleep(0.025)
        reloadable_berthd.proc.send_signal(signal.SIGHUP)
        assert watcher.stdout is not None
        assert watcher.stdout.readline().strip() == "daemon reload"
    finally:
        watcher.terminate()
        watcher.wait(10)
    # The hang-up is noticed and the subscription released.
    for _ in range(200):
        info = subprocess.run(["docker", "info", "--format", "{{.NEventsListener}}"],
                              env=reloadable_berthd.env(), capture_output=True, text=True)
        if info.stdout.strip() == "0":
            break
        time.sleep(0.025)
    assert info.stdout.strip() == "0"


def test_bad_filters_and_timestamps_are_400(reloadable_berthd: RunningDaemon) -> None:
    from tests.api.test_system import raw_get

    status, _, body = raw_get(reloadable_berthd.socket, '/events?filters={"nope":["x"]}')
    assert status == 400 and json.loads(body)["message"] == "invalid filter 'nope'"
    status, _, body = raw_get(reloadable_berthd.socket, "/events?since=yesterday")
    assert status == 400 and "invalid timestamp" in json.loads(body)["message"]


def test_parse_timestamp_forms() -> None:
    assert parse_timestamp("1700000000") == 1_700_000_000_000_000_000
    assert parse_timestamp("1700000000.5") == 1_700_000_000_500_000_000
    assert parse_timestamp("2023-11-14T22:13:20Z") == 1_700_000_000_000_000_000
    assert parse_timestamp(None) is None
