"""debian:bookworm-slim: mmdebstrap's minbase from this machine's Debian mirror, slimmed like Docker's.

Docker's official `-slim` images come from debuerreotype: minbase, then dpkg
told never to install docs, man pages and translations, and apt configured for
containers (no cache kept, no translations).  The same choices are made here
with mmdebstrap, whose output is reproducible when SOURCE_DATE_EPOCH is set.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path

from installers.images.apt_sources import (
    DEFAULT_APT_DIR,
    SuiteSource,
    debian_release_sources,
    read_apt_sources,
)
from installers.images.commands import require_tool, run
from installers.images.errors import BuildStepFailed, SeedImageError
from installers.images.image_config import SeedConfig
from installers.images.recipe import SeedRootfs

log = logging.getLogger(__name__)

RELEASE = "bookworm"
_MERGED_USR_HOOKS = Path("/usr/share/mmdebstrap/hooks/merged-usr")

# dpkg path filters (dpkg(1) --path-exclude), kept in the image as
# /etc/dpkg/dpkg.cfg.d/99mmdebstrap so packages installed later stay slim too.
_DPKG_FILTERS = [
    "path-exclude=/usr/share/doc/*",
    # Licences stay: they are what the image is allowed to be redistributed under.
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/groff/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/lintian/*",
    "path-exclude=/usr/share/linda/*",
    "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/locale.alias",
]

# apt settings for containers, as Docker's Debian images ship them.
_APT_CONF = {
    "docker-clean": (
        'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb '
        '/var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\n'
        'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb '
        '/var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\n'
        'Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";\n'
    ),
    "docker-no-languages": 'Acquire::Languages "none";\n',
    "docker-gzip-indexes": 'Acquire::GzipIndexes "true"; Acquire::CompressionTypes::Order:: "gz";\n',
    "docker-autoremove-suggests": 'Apt::AutoRemove::SuggestsImportant "false";\n',
}


@dataclass(frozen=True)
class _SuiteRelease:
    source: SuiteSource
    sha256: str
    date: int


class DebianSlimRecipe:
    name = "debian-bookworm-slim"
    repo_tag = f"debian:{RELEASE}-slim"

    def __init__(self, apt_dir: Path = DEFAULT_APT_DIR) -> None:
        self._apt_dir = apt_dir
        self._releases: list[_SuiteRelease] | None = None

    def _suite_releases(self) -> list[_SuiteRelease]:
        """Each suite's signed Release file, fetched once: its digest pins the whole package set."""
        if self._releases is None:
            sources = debian_release_sources(read_apt_sources(self._apt_dir), RELEASE)
            self._releases = [_fetch_release(s) for s in sources]
        return self._releases

    def input_key(self) -> str:
        mmdebstrap = require_tool("mmdebstrap", "mmdebstrap")
        lines = [run([mmdebstrap, "--version"]).strip()]
        lines += [f"{r.source.sources_line()} sha256:{r.sha256}" for r in self._suite_releases()]
        return "\n".join(lines)

    def code_files(self) -> list[Path]:
        return [Path(__file__), Path(__file__).with_name("apt_sources.py")]

    def build_rootfs(self, workdir: Path) -> SeedRootfs:
        if os.geteuid() != 0:
            # Other modes (unshare, fakechroot) map owners to subordinate ids on disk,
            # which a directory-based layer writer would then record.
            raise SeedImageError(f"{self.repo_tag} needs root: mmdebstrap runs in root mode")
        mmdebstrap = require_tool("mmdebstrap", "mmdebstrap")
        releases = self._suite_releases()
        # The newest suite date: the image is as old as the newest package it could hold.
        epoch = max(r.date for r in releases)
        rootfs = workdir / "rootfs"
        # Root mode mounts /proc, /sys and /dev inside the tree; a private mount
        # namespace keeps those mounts off the host and makes them vanish with
        # the process even if it is killed half-way.
        unshare = require_tool("unshare", "util-linux")
        argv = [unshare, "--mount", "--propagation", "private", "--"]
        argv += [mmdebstrap, "--quiet", "--mode=root", "--variant=minbase", "--format=directory"]
        if _MERGED_USR_HOOKS.is_dir():
            # Merges /usr itself instead of installing `usrmerge`, which drags in perl (~50 MB).
            argv.append(f"--hook-dir={_MERGED_USR_HOOKS}")
        argv += [f"--dpkgopt={f}" for f in _DPKG_FILTERS]
        argv += [RELEASE, str(rootfs)]
        argv += [r.source.sources_line() for r in releases]
        log.info("mmdebstrap %s from %s", RELEASE, ", ".join(r.source.uri for r in releases))
        run(argv, env={**os.environ, "SOURCE_DATE_EPOCH": str(epoch)})
        _slim(rootfs)
        return SeedRootfs(
            rootfs=rootfs,
            config=SeedConfig(
                cmd=["bash"],
                created_by=f"berth seed image: mmdebstrap --variant=minbase {RELEASE}",
                comment="built offline by installers/images from Debian packages",
            ),
            epoch=epoch,
            owner=None,  # mmdebstrap set the real owners (shadow group, mail spool...)
        )


def _fetch_release(source: SuiteSource) -> _SuiteRelease:
    base = f"{source.uri}/dists/{source.suite}"
    last_error: Exception | None = None
    for name in ("InRelease", "Release"):
        try:
            with urllib.request.urlopen(f"{base}/{name}", timeout=60) as response:
                data: bytes = response.read()
        except (urllib.error.URLError, OSError) as e:
            last_error = e
            continue
        return _SuiteRelease(source, hashlib.sha256(data).hexdigest(), _release_date(data, base))
    raise BuildStepFailed(f"cannot fetch {base}/InRelease or Release: {last_error}")


def _release_date(data: bytes, where: str) -> int:
    for line in data.decode("utf-8", "replace").splitlines():
        if line.startswith("Date:"):
            return int(parsedate_to_datetime(line[len("Date:") :].strip()).timestamp())
    raise BuildStepFailed(f"{where}: Release file has no Date field")


def _slim(rootfs: Path) -> None:
    """The container-specific trimming mmdebstrap does not do itself."""
    # The runtime mounts /dev (a tmpfs with its own nodes); the image ships it empty.
    for entry in (rootfs / "dev").iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    apt_conf = rootfs / "etc/apt/apt.conf.d"
    for name, text in _APT_CONF.items():
        (apt_conf / name).write_text(text)
        (apt_conf / name).chmod(0o644)
    # Package lists come back with the first `apt-get update`; shipping them only dates the image.
    lists = rootfs / "var/lib/apt/lists"
    for entry in lists.iterdir():
        if entry.is_file() and entry.name != "lock":
            entry.unlink()
