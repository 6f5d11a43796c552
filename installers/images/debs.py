"""Fetches one Debian package through the machine's apt, checked against apt's index."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from installers.images.commands import require_tool, run
from installers.images.errors import BuildStepFailed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DebCandidate:
    """The version apt would install, as its package index describes it."""

    package: str
    version: str
    sha256: str
    filename: str  # pool path on the mirror; its basename is what apt-get download writes


def candidate(package: str) -> DebCandidate:
    """The candidate version of `package` in apt's index (no download).

    Its SHA256 is what seed images are cached by: a new Debian upload changes it.
    """
    require_tool("apt-cache", "apt")
    fields = _first_paragraph(run(["apt-cache", "show", "--no-all-versions", package]))
    try:
        return DebCandidate(
            package=fields["Package"],
            version=fields["Version"],
            sha256=fields["SHA256"],
            filename=fields["Filename"],
        )
    except KeyError as e:
        raise BuildStepFailed(
            f"apt-cache has no {e.args[0]} for {package}: run 'apt-get update' and retry"
        ) from e


def download(deb: DebCandidate, dest_dir: Path) -> Path:
    """Downloads exactly that version into dest_dir and checks its sha256."""
    require_tool("apt-get", "apt")
    # apt fetches as the unprivileged _apt user when it can write the directory.
    dest_dir.chmod(0o755)
    run(["apt-get", "download", "-q", f"{deb.package}={deb.version}"], cwd=dest_dir)
    path = dest_dir / Path(deb.filename).name
    if not path.is_file():
        # apt-get names the file package_version_arch.deb with the epoch's ':' escaped.
        matches = sorted(dest_dir.glob(f"{deb.package}_*.deb"))
        if len(matches) != 1:
            raise BuildStepFailed(f"apt-get download left {matches} in {dest_dir}, expected one .deb")
        path = matches[0]
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    if actual != deb.sha256:
        raise BuildStepFailed(f"{path.name}: sha256 {actual} differs from apt's index ({deb.sha256})")
    log.info("downloaded %s %s", deb.package, deb.version)
    return path


def extract(deb_path: Path, dest: Path) -> None:
    """Unpacks the package's files (not its maintainer scripts) under dest."""
    require_tool("dpkg-deb", "dpkg")
    run(["dpkg-deb", "-x", str(deb_path), str(dest)])


def _first_paragraph(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        if line[0] in " \t":
            continue  # continuation of a multi-line field (Description)
        key, sep, value = line.partition(":")
        if sep:
            fields[key] = value.strip()
    return fields
