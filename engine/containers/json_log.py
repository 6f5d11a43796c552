"""Docker's json-file log driver: one JSON object per line, rotated by size.

Format (moby daemon/logger/jsonfilelog): `{"log":"hello\\n","stream":"stdout",
"time":"2024-01-02T03:04:05.123456789Z"}`.  With `max-size`, the file is
rotated when the next line would push it past the limit: `x.log` becomes
`x.log.1`, older ones shift up, and at most `max-file` files are kept, so
`docker logs` after rotation still shows what the kept files hold.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmg]?)b?$", re.I)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


class LogOptionError(ValueError):
    """A log-opt value the json-file driver cannot use."""


def parse_size(value: str) -> int:
    """`max-size` values like docker's: "10m", "512k", "1g", "100" (bytes)."""
    match = _SIZE.match(value.strip())
    if not match:
        raise LogOptionError(f"invalid max-size {value!r}: want a number with an optional k, m or g unit")
    size = int(float(match.group(1)) * _UNITS[match.group(2).lower()])
    if size <= 0:
        raise LogOptionError(f"invalid max-size {value!r}: must be positive")
    return size


@dataclass(frozen=True)
class LogOptions:
    max_size: int | None = None  # bytes; None = never rotate
    max_file: int = 1

    @classmethod
    def from_opts(cls, opts: dict[str, str]) -> LogOptions:
        unknown = set(opts) - {"max-size", "max-file", "compress", "labels", "env", "tag"}
        if unknown:
            raise LogOptionError(f"unknown log opt '{sorted(unknown)[0]}' for json-file log driver")
        max_size = parse_size(opts["max-size"]) if opts.get("max-size") else None
        try:
            max_file = int(opts.get("max-file", "1"))
        except ValueError as exc:
            raise LogOptionError(f"invalid max-file {opts['max-file']!r}: want a positive integer") from exc
        if max_file < 1:
            raise LogOptionError("max-file cannot be less than 1")
        if max_file > 1 and max_size is None:
            raise LogOptionError("max-file can only be set with max-size")
        return cls(max_size, max_file)


def rfc3339_nano(ns: int) -> str:
    seconds, nanos = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z"


def parse_rfc3339_nano(text: str) -> int:
    """Inverse of rfc3339_nano, also accepting fewer fraction digits and offsets."""
    main, _, rest = text.partition(".")
    if rest:
        digits = re.match(r"\d*", rest)
        fraction = digits.group(0) if digits else ""
        zone = rest[len(fraction):]
    else:
        fraction, zone = "", main[19:]
        main = main[:19]
    parsed = datetime.fromisoformat(main + (zone.replace("Z", "+00:00") or "+00:00"))
    return int(parsed.timestamp()) * 1_000_000_000 + int((fraction + "000000000")[:9] or 0)


class JSONLogWriter:
    """Appends lines; used by the process that owns the container's stdio."""

    def __init__(self, path: Path, options: LogOptions | None = None) -> None:
        self.path = path
        self.options = options or LogOptions()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        self._size = os.fstat(self._fd).st_size

    def write(self, stream: str, data: bytes, now_ns: int | None = None) -> None:
        """One record per line; a trailing partial line is its own record, like dockerd."""
        stamp = rfc3339_nano(now_ns if now_ns is not None else time.time_ns())
        for line in data.splitlines(keepends=True):
            record = json.dumps({"log": line.decode("utf-8", "replace"), "stream": stream, "time": stamp},
                                separators=(",", ":")).encode() + b"\n"
            if self.options.max_size is not None and self._size and self._size + len(record) > self.options.max_size:
                self._rotate()
            os.write(self._fd, record)
            self._size += len(record)

    def _rotate(self) -> None:
        # -1 until reopened: a failed rotation (its dir removed) must not leave a number that a
        # process supervising other containers (the shim host) reuses for their fds.
        os.close(self._fd)
        self._fd = -1
        keep = self.options.max_file
        if keep > 1:
            for n in range(keep - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{n}")
                if older.exists():
                    if n + 1 >= keep:
                        older.unlink()
                    else:
                        os.replace(older, self.path.with_name(f"{self.path.name}.{n + 1}"))
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        self._size = 0

    def close(self) -> None:
        """Idempotent: the fd number is never closed twice (it may belong to someone else by then)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


@dataclass(frozen=True)
class LogRecord:
    stream: str
    text: str
    time_ns: int


def log_files(path: Path) -> list[Path]:
    """Oldest first: x.log.N ... x.log.1, x.log."""
    rotated = sorted(
        (p for p in path.parent.glob(f"{path.name}.*") if p.suffix[1:].isdigit()),
        key=lambda p: int(p.suffix[1:]),
        reverse=True,
    )
    return [*rotated, *([path] if path.exists() else [])]


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None


def _parse(line: bytes) -> LogRecord | None:
    try:
        raw = json.loads(line)
        return LogRecord(raw["stream"], raw["log"], parse_rfc3339_nano(raw["time"]))
    except (ValueError, KeyError):
        return None  # a torn last line while the writer appends; skipped like dockerd does


def read_records(path: Path, since_ns: int | None = None, until_ns: int | None = None,
                 tail: int | None = None) -> list[LogRecord]:
    records: list[LogRecord] = []
    for file in log_files(path):
        try:
            with open(file, "rb") as f:
                for line in f:
                    record = _parse(line)
                    if record is None:
                        continue
                    if since_ns is not None and record.time_ns < since_ns:
                        continue
                    if until_ns is not None and record.time_ns > until_ns:
                        continue
                    records.append(record)
        except FileNotFoundError:
            continue  # rotated away between listing and opening
    if tail is not None:
        records = records[-tail:] if tail > 0 else []
    return records


class LogFollower:
    """Reads new records as the writer appends, across rotations (for `logs -f`).

    The current file stays open between polls, so what was written before the
    container was removed (and its log deleted) is still delivered.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: BinaryIO | None = None
        self._inode: int | None = None
        self._partial = b""

    def start_at_end(self) -> None:
        try:
            self._file = open(self.path, "rb")  # noqa: SIM115 - kept open across polls on purpose
        except FileNotFoundError:
            return
        self._file.seek(0, os.SEEK_END)
        self._inode = os.fstat(self._file.fileno()).st_ino

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def poll(self) -> Iterator[LogRecord]:
        if self._file is not None:
            yield from self._drain()
        current = _inode(self.path)
        if current is None or current == self._inode:
            return
        # Rotated (maybe several times) since the last poll: every file newer than the one
        # we held, read whole, oldest first; then the current one stays open.
        files = log_files(self.path)
        inodes = [_inode(f) for f in files]
        start = inodes.index(self._inode) + 1 if self._inode in inodes else 0
        for newer in files[start:]:
            self.close()
            try:
                self._file = open(newer, "rb")  # noqa: SIM115
            except FileNotFoundError:
                continue
            self._inode = os.fstat(self._file.fileno()).st_ino
            self._partial = b""
            yield from self._drain()

    def _drain(self) -> Iterator[LogRecord]:
        assert self._file is not None
        data = self._partial + self._file.read()
        *lines, self._partial = data.split(b"\n")
        for line in lines:
            record = _parse(line)
            if record is not None:
                yield record
