"""The pull/push progress renderer (engine/cli/progress.py) against docker's jsonmessage output."""

from __future__ import annotations

import io
from typing import Any

import pytest

from engine.cli.context import StatusError
from engine.cli.progress import display, human_size, progress_bar

STREAM: list[dict[str, Any]] = [
    {"status": "Pulling from library/debian", "id": "bookworm-slim"},
    {"status": "Pulling fs layer", "progressDetail": {}, "id": "aaaaaaaaaaaa"},
    {"status": "Pulling fs layer", "progressDetail": {}, "id": "bbbbbbbbbbbb"},
    {"status": "Downloading", "progressDetail": {"current": 500_000, "total": 2_000_000}, "id": "aaaaaaaaaaaa"},
    {"status": "Download complete", "progressDetail": {}, "id": "aaaaaaaaaaaa"},
    {"status": "Pull complete", "progressDetail": {}, "id": "bbbbbbbbbbbb"},
    {"status": "Digest: sha256:0123"},
]


def test_sizes_and_bars_read_like_docker() -> None:
    assert human_size(999) == "999B" and human_size(1_234_567) == "1.23MB" and human_size(28_000_000) == "28MB"
    bar = progress_bar({"current": 500_000, "total": 2_000_000})
    assert bar == "[============>" + " " * 38 + "]    500kB/2MB"
    assert progress_bar({"current": 500_000, "total": 2_000_000}, columns=80) == "   500kB/2MB"
    assert progress_bar({}) == "" and progress_bar({"current": 10}).strip() == "10B"


def test_piped_output_is_plain_lines_without_bars() -> None:
    out = io.StringIO()
    display(STREAM, out, tty=False)
    assert out.getvalue().splitlines() == [
        "bookworm-slim: Pulling from library/debian",
        "aaaaaaaaaaaa: Pulling fs layer",
        "bbbbbbbbbbbb: Pulling fs layer",
        "aaaaaaaaaaaa: Download complete",
        "bbbbbbbbbbbb: Pull complete",
        "Digest: sha256:0123",
    ]


def test_terminal_output_redraws_each_layer_line_in_place() -> None:
    out = io.StringIO()
    display(STREAM, out, tty=True)
    text = out.getvalue()
    # Layer a owns the first of two progress lines: updating it goes up 2, redraws, comes back down 2.
    assert ("\x1b[2A\x1b[2K\raaaaaaaaaaaa: Downloading [============>" in text
            and "500kB/2MB\r\x1b[2B" in text)
    assert "\x1b[1A\x1b[2K\rbbbbbbbbbbbb: Pull complete\r\x1b[1B" in text
    assert text.endswith("Digest: sha256:0123\n")


def test_an_error_line_ends_the_stream_as_one_message() -> None:
    with pytest.raises(StatusError, match=r"^unauthorized: authentication required$"):
        display([{"status": "Preparing", "progressDetail": {}, "id": "x"},
                 {"errorDetail": {"message": "unauthorized: authentication required"},
                  "error": "unauthorized: authentication required"}], io.StringIO(), tty=True)
