"""The CLI's pure pieces, by themselves: detach keys, exit statuses, tables, sizes, templates, HTTP framing."""

from __future__ import annotations

import pytest

from engine.cli.attach_session import EscapeScanner, parse_detach_keys, start_error_status
from engine.cli.container_options import normalize_caps, ram_in_bytes
from engine.cli.context import UsageError
from engine.cli.formatter import tabwrite
from engine.cli.rows import container_row, ellipsis, go_quote, short_id
from engine.client.http1 import ProtocolError, ResponseReader


def test_detach_sequence_is_found_across_reads() -> None:
    scanner = EscapeScanner()
    assert scanner.feed(b"ls\x10") == (b"ls", False)
    assert scanner.feed(b"\x11") == (b"", True)


def test_broken_detach_sequence_is_replayed() -> None:
    scanner = EscapeScanner()
    assert scanner.feed(b"a\x10") == (b"a", False)
    assert scanner.feed(b"b\x10\x10") == (b"\x10b\x10", False)
    assert scanner.feed(b"\x11") == (b"", True)


def test_detach_keys_syntax() -> None:
    assert parse_detach_keys("ctrl-p,ctrl-q") == b"\x10\x11"
    assert parse_detach_keys("ctrl-@,a") == b"\x00a"
    with pytest.raises(UsageError):
        parse_detach_keys("ctrl-pq")


@pytest.mark.parametrize(("message", "code"), [
    ('exec: "x": executable file not found in $PATH', 127),
    ('stat /x: no such file or directory', 127),
    ('exec: "/etc": permission denied', 126),
    ("read /etc: is a directory", 126),
    ("cgroup setup failed", 125),
])
def test_start_errors_map_to_docker_statuses(message: str, code: int) -> None:
    assert start_error_status(message) == code


def test_tabwriter_pads_like_go() -> None:
    # Column width = max(minwidth 10, widest cell + padding 3); the last cell is never padded.
    assert tabwrite(["A\tBB\tC", "xxxxxxxxxxxx\t\tz"]) == ["A" + " " * 14 + "BB" + " " * 8 + "C",
                                                         "xxxxxxxxxxxx" + " " * 3 + " " * 10 + "z"]


def test_ram_sizes() -> None:
    assert ram_in_bytes("64m") == 64 * 1024**2
    assert ram_in_bytes("1.5GB") == int(1.5 * 1024**3)
    assert ram_in_bytes("1024") == 1024
    with pytest.raises(UsageError):
        ram_in_bytes("lots")


def test_caps_take_docker_cli_form() -> None:
    assert normalize_caps(["net_admin", "CAP_CHOWN", "all"]) == ["CAP_NET_ADMIN", "CAP_CHOWN", "ALL"]


def test_container_row_truncates_like_docker_ps() -> None:
    row = container_row({"Id": "ab" * 32, "Names": ["/web", "/other/alias"], "Image": "sha256:" + "cd" * 32,
                         "ImageID": "sha256:" + "cd" * 32, "Command": "sh -c 'echo a long line'", "Created": 0,
                         "State": "running", "Status": "Up 1 second", "Labels": {"b": "2", "a": "1"}}, now=3600)
    assert row["ID"] == "ab" * 6
    assert row["Image"] == "cd" * 6
    assert row["Command"] == '"sh -c \'echo a long …"'
    assert row["Names"] == "web"
    assert row["Labels"] == "a=1,b=2"
    assert row["RunningFor"] == "About an hour ago"
    assert short_id("sha256:" + "ef" * 32) == "ef" * 6 and ellipsis("abc", 5) == "abc" and go_quote('a"b') == '"a\\"b"'


def _reader(*parts: bytes) -> ResponseReader:
    chunks = list(parts)
    return ResponseReader(lambda _n: chunks.pop(0) if chunks else b"")


def test_http_chunked_body_split_anywhere() -> None:
    reader = _reader(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n5\r\nhel", b"lo\r\n0\r\n\r\n")
    status, headers = reader.read_head()
    assert (status, headers["x-a"]) == (200, "1")
    assert b"".join(reader.body("GET", status, headers)) == b"hello"


def test_http_upgrade_keeps_the_bytes_behind_the_head() -> None:
    reader = _reader(b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\nearly")
    assert reader.read_head()[0] == 101
    assert reader.buffer == b"early"


def test_http_truncated_body_is_an_error() -> None:
    reader = _reader(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort")
    status, headers = reader.read_head()
    with pytest.raises(ProtocolError):
        b"".join(reader.body("GET", status, headers))
