"""The json-file log driver: format, rotation, tail/since/until, follow across rotation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.containers.json_log import (
    JSONLogWriter,
    LogFollower,
    LogOptionError,
    LogOptions,
    log_files,
    parse_rfc3339_nano,
    parse_size,
    read_records,
    rfc3339_nano,
)

T0 = 1_700_000_000_123_456_789


def test_lines_are_dockers_json_shape(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    writer = JSONLogWriter(log)
    writer.write("stdout", b"hello\nworld", now_ns=T0)
    writer.write("stderr", b"oops\n", now_ns=T0 + 1)
    writer.close()
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert lines == [
        {"log": "hello\n", "stream": "stdout", "time": "2023-11-14T22:13:20.123456789Z"},
        {"log": "world", "stream": "stdout", "time": "2023-11-14T22:13:20.123456789Z"},
        {"log": "oops\n", "stream": "stderr", "time": "2023-11-14T22:13:20.123456790Z"},
    ]


def test_time_round_trip() -> None:
    assert parse_rfc3339_nano(rfc3339_nano(T0)) == T0
    assert parse_rfc3339_nano("2023-11-14T22:13:20.5Z") == 1_700_000_000_500_000_000
    assert parse_rfc3339_nano("2023-11-14T23:13:20+01:00") == 1_700_000_000_000_000_000


def test_rotation_keeps_max_file_files(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    writer = JSONLogWriter(log, LogOptions.from_opts({"max-size": "300", "max-file": "3"}))
    for i in range(40):
        writer.write("stdout", f"line {i:02d}\n".encode(), now_ns=T0 + i)
    writer.close()
    files = log_files(log)
    assert [f.name for f in files] == ["c-json.log.2", "c-json.log.1", "c-json.log"]
    assert all(f.stat().st_size <= 300 for f in files)
    texts = [r.text for r in read_records(log)]
    # What the kept files hold is contiguous and ends with the last line written.
    numbers = [int(t.split()[1]) for t in texts]
    assert numbers == list(range(numbers[0], 40))
    assert numbers[0] > 0  # older lines were rotated away


def test_tail_since_until(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    writer = JSONLogWriter(log)
    for i in range(10):
        writer.write("stdout", f"{i}\n".encode(), now_ns=T0 + i * 1_000_000_000)
    writer.close()
    assert [r.text for r in read_records(log, tail=3)] == ["7\n", "8\n", "9\n"]
    assert read_records(log, tail=0) == []
    got = read_records(log, since_ns=T0 + 2_000_000_000, until_ns=T0 + 4_000_000_000)
    assert [r.text for r in got] == ["2\n", "3\n", "4\n"]


def test_follower_sees_appends_and_rotations(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    # Several rotations between polls: the follower must still see every line while
    # the files it missed are kept (max-file large enough for the poll interval).
    writer = JSONLogWriter(log, LogOptions.from_opts({"max-size": "200", "max-file": "4"}))
    writer.write("stdout", b"before\n", now_ns=T0)
    follower = LogFollower(log)
    follower.start_at_end()
    seen: list[str] = []
    for i in range(12):
        writer.write("stdout", f"after {i}\n".encode(), now_ns=T0 + i + 1)
        if i % 3 == 2:
            seen += [r.text for r in follower.poll()]
    seen += [r.text for r in follower.poll()]
    writer.close()
    assert seen == [f"after {i}\n" for i in range(12)]


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        ({"max-size": "ten"}, "invalid max-size"),
        ({"max-file": "3"}, "max-file can only be set with max-size"),
        ({"max-size": "1m", "max-file": "0"}, "max-file cannot be less than 1"),
        ({"nope": "1"}, "unknown log opt 'nope'"),
    ],
)
def test_bad_options_are_clear(opts: dict[str, str], message: str) -> None:
    with pytest.raises(LogOptionError, match=message):
        LogOptions.from_opts(opts)


def test_sizes() -> None:
    assert parse_size("10m") == 10 * 1024 * 1024
    assert parse_size("512k") == 512 * 1024
    assert parse_size("100") == 100
