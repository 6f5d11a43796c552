"""installers/images/apt_sources.py: the Debian mirror comes from the machine's apt configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from installers.images.apt_sources import (
    SuiteSource,
    debian_release_sources,
    read_apt_sources,
)
from installers.images.errors import AptSourceNotFound

ONE_LINE = """\
# the main archive
deb http://mirror.example/debian bookworm main contrib
deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] http://mirror.example/debian bookworm-updates main
deb-src http://mirror.example/debian bookworm main
deb http://mirror.example/debian bookworm-backports main
"""

DEB822 = """\
Types: deb deb-src
URIs: http://security.example/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

# a disabled stanza apt skips
Enabled: no
Types: deb
URIs: http://disabled.example/debian
Suites: bookworm
Components: main

Types: deb
URIs: http://other.example/debian
Suites: bookworm
  trixie
Components: main
"""


def _apt_dir(tmp_path: Path) -> Path:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(ONE_LINE)
    (tmp_path / "sources.list.d/security.sources").write_text(DEB822)
    # apt ignores files with other suffixes; so must we.
    (tmp_path / "sources.list.d/old.list.disabled").write_text("deb http://ignored.example/ bookworm main\n")
    return tmp_path


def test_both_formats_are_read_and_disabled_entries_skipped(tmp_path: Path) -> None:
    uris = {s.uri for s in read_apt_sources(_apt_dir(tmp_path))}
    assert uris == {
        "http://mirror.example/debian",
        "http://security.example/debian-security",
        "http://other.example/debian",
    }


def test_deb822_continuation_lines_extend_a_field(tmp_path: Path) -> None:
    other = [s for s in read_apt_sources(_apt_dir(tmp_path)) if s.uri == "http://other.example/debian"]
    assert other[0].suites == ("bookworm", "trixie")


def test_release_sources_pick_release_updates_and_security_but_not_backports(tmp_path: Path) -> None:
    chosen = debian_release_sources(read_apt_sources(_apt_dir(tmp_path)), "bookworm")
    assert chosen == [
        SuiteSource("http://mirror.example/debian", "bookworm", ("main",)),
        SuiteSource("http://mirror.example/debian", "bookworm-updates", ("main",)),
        SuiteSource("http://security.example/debian-security", "bookworm-security", ("main",)),
    ]
    assert chosen[0].sources_line() == "deb http://mirror.example/debian bookworm main"


def test_missing_release_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(AptSourceNotFound, match="forky"):
        debian_release_sources(read_apt_sources(_apt_dir(tmp_path)), "forky")


def test_this_machine_has_a_bookworm_mirror() -> None:
    """The debian seed image builds from whatever mirror this host's apt uses."""
    if not Path("/etc/apt").is_dir():
        pytest.skip("not a Debian host: /etc/apt is missing")
    chosen = debian_release_sources(read_apt_sources(), "bookworm")
    assert chosen[0].suite == "bookworm"
    assert chosen[0].uri.startswith(("http://", "https://", "file:"))
