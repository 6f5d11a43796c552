"""Reads the machine's apt sources, to build Debian images from the mirror it already uses.

Both formats apt reads (sources.list(5)): one-line `deb [opts] URI SUITE COMPONENT...`
in `sources.list` and `sources.list.d/*.list`, and deb822 paragraphs in
`sources.list.d/*.sources`.  Files with other suffixes are ignored, as apt does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from installers.images.errors import AptSourceNotFound

log = logging.getLogger(__name__)

DEFAULT_APT_DIR = Path("/etc/apt")


@dataclass(frozen=True)
class AptSource:
    """One `deb` source: a mirror URI with its suites and components."""

    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]
    origin: Path


@dataclass(frozen=True)
class SuiteSource:
    """One suite of one mirror, the unit mmdebstrap takes as a `deb URI SUITE COMPONENTS` line."""

    uri: str
    suite: str
    components: tuple[str, ...]

    def sources_line(self) -> str:
        return f"deb {self.uri} {self.suite} {' '.join(self.components)}"


def read_apt_sources(apt_dir: Path = DEFAULT_APT_DIR) -> list[AptSource]:
    """Every enabled binary (`deb`) source configured under apt_dir, in apt's file order."""
    sources: list[AptSource] = []
    main_list = apt_dir / "sources.list"
    if main_list.is_file():
        sources += parse_one_line(main_list.read_text(), main_list)
    parts = apt_dir / "sources.list.d"
    if parts.is_dir():
        for path in sorted(parts.iterdir()):
            if path.suffix == ".list":
                sources += parse_one_line(path.read_text(), path)
            elif path.suffix == ".sources":
                sources += parse_deb822(path.read_text(), path)
    return sources


def parse_one_line(text: str, origin: Path) -> list[AptSource]:
    sources = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if "[" in line:
            # Options (`[arch=amd64 signed-by=...]`) do not change where packages come from.
            before, _, after = line.partition("[")
            line = before + after.partition("]")[2]
        fields = line.split()
        if len(fields) < 3 or fields[0] != "deb":
            continue  # deb-src, or a malformed line apt would reject anyway
        sources.append(
            AptSource(uri=fields[1], suites=(fields[2],), components=tuple(fields[3:]), origin=origin)
        )
    return sources


def parse_deb822(text: str, origin: Path) -> list[AptSource]:
    sources = []
    for paragraph in _deb822_paragraphs(text):
        if paragraph.get("enabled", "yes").lower() == "no":
            continue
        if "deb" not in paragraph.get("types", "").split():
            continue
        suites = tuple(paragraph.get("suites", "").split())
        components = tuple(paragraph.get("components", "").split())
        for uri in paragraph.get("uris", "").split():
            sources.append(AptSource(uri=uri, suites=suites, components=components, origin=origin))
    return sources


def _deb822_paragraphs(text: str) -> list[dict[str, str]]:
    """Field names lower-cased (deb822 names are case-insensitive); continuation lines joined."""
    paragraphs: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last_key = ""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        if not line.strip():
            if current:
                paragraphs.append(current)
            current, last_key = {}, ""
            continue
        if line[0] in " \t" and last_key:
            current[last_key] += " " + line.strip()
            continue
        key, sep, value = line.partition(":")
        if not sep:
            log.warning("ignoring malformed deb822 line %r", line)
            continue
        last_key = key.strip().lower()
        current[last_key] = value.strip()
    if current:
        paragraphs.append(current)
    return paragraphs


def debian_release_sources(
    sources: list[AptSource], release: str, component: str = "main"
) -> list[SuiteSource]:
    """The release's own suite plus its -updates and -security suites, from the configured mirrors.

    Like Docker's official Debian images, which ship with security and point
    updates applied, from `main` only.  Backports are left out: nothing in a
    base image should come from them.  The first mirror naming a suite wins.
    """
    wanted = (release, f"{release}-updates", f"{release}-security")
    chosen: dict[str, SuiteSource] = {}
    for source in sources:
        if component not in source.components:
            continue
        for suite in source.suites:
            if suite in wanted and suite not in chosen:
                chosen[suite] = SuiteSource(uri=source.uri.rstrip("/"), suite=suite, components=(component,))
    if release not in chosen:
        raise AptSourceNotFound(
            f"no apt source for Debian {release!r} ({component}) in /etc/apt/sources.list or "
            f"/etc/apt/sources.list.d/: add one, e.g. 'deb <mirror> {release} {component}'"
        )
    return [chosen[s] for s in wanted if s in chosen]
