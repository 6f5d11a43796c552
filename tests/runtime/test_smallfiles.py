"""smallfiles reads whole files, procfs's page-at-a-time ones included, as open().read() would."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.runtime.smallfiles import read_bytes, read_text


def test_a_file_longer_than_one_read_comes_back_whole(tmp_path: Path) -> None:
    data = bytes(range(256)) * 1000  # 256 000 bytes: four 64 KiB reads and the EOF one
    (tmp_path / "big").write_bytes(data)
    assert read_bytes(str(tmp_path / "big")) == data


def test_procfs_files_longer_than_a_page_match_a_buffered_read() -> None:
    # kallsyms: megabytes that do not change between two reads, served a page or so per read(2).
    with open("/proc/kallsyms", encoding="utf-8") as f:
        expected = f.read()
    assert len(expected) > 65536
    assert read_text("/proc/kallsyms") == expected


def test_empty_files_and_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    assert read_text(str(tmp_path / "empty")) == ""
    with pytest.raises(FileNotFoundError):
        read_text(str(tmp_path / "missing"))
    with pytest.raises(IsADirectoryError):
        read_text(str(tmp_path))
    (tmp_path / "latin").write_bytes(b"caf\xe9")
    with pytest.raises(UnicodeDecodeError):
        read_text(str(tmp_path / "latin"))
    assert read_text(str(tmp_path / "latin"), errors="replace") == "caf\ufffd"
