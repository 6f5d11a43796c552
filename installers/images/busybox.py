"""busybox:latest from Debian's busybox-static package: one static binary, every applet linked."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from installers.images import debs
from installers.images.commands import run
from installers.images.errors import BuildStepFailed
from installers.images.image_config import SeedConfig
from installers.images.recipe import SeedRootfs

log = logging.getLogger(__name__)

PACKAGE = "busybox-static"

# Like the official busybox image: a root-owned FHS skeleton with the usual modes.
_DIRS = [
    ("bin", 0o755),
    ("dev", 0o755),
    ("etc", 0o755),
    ("home", 0o755),
    ("proc", 0o555),
    ("root", 0o700),
    ("sbin", 0o755),
    ("sys", 0o555),
    ("tmp", 0o1777),
    ("usr", 0o755),
    ("usr/bin", 0o755),
    ("usr/sbin", 0o755),
    ("usr/share", 0o755),
    ("usr/share/doc", 0o755),
    (f"usr/share/doc/{PACKAGE}", 0o755),
    ("var", 0o755),
    ("var/spool", 0o755),
    ("var/spool/mail", 0o755),
    ("var/tmp", 0o1777),
]

_ETC_FILES = [
    ("etc/passwd", 0o644, "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n"),
    ("etc/group", 0o644, "root:x:0:\nnobody:x:65534:\n"),
    # Locked passwords: nobody logs in to a container with one.
    ("etc/shadow", 0o600, "root:*::0:::::\nnobody:*::0:::::\n"),
]


class BusyboxRecipe:
    name = "busybox"
    repo_tag = "busybox:latest"

    def __init__(self) -> None:
        self._candidate: debs.DebCandidate | None = None

    def _deb(self) -> debs.DebCandidate:
        if self._candidate is None:
            self._candidate = debs.candidate(PACKAGE)
        return self._candidate

    def input_key(self) -> str:
        deb = self._deb()
        return f"{deb.package} {deb.version} sha256:{deb.sha256}"

    def code_files(self) -> list[Path]:
        return [Path(__file__)]

    def build_rootfs(self, workdir: Path) -> SeedRootfs:
        deb = self._deb()
        downloads = workdir / "deb"
        downloads.mkdir()
        extracted = workdir / "extracted"
        debs.extract(debs.download(deb, downloads), extracted)
        binary = extracted / "bin" / "busybox"
        if not binary.is_file():
            raise BuildStepFailed(f"{PACKAGE} {deb.version} has no /bin/busybox")

        rootfs = workdir / "rootfs"
        rootfs.mkdir(mode=0o755)
        rootfs.chmod(0o755)
        for rel, mode in _DIRS:
            (rootfs / rel).mkdir()
            (rootfs / rel).chmod(mode)
        shutil.copyfile(binary, rootfs / "bin" / "busybox")
        (rootfs / "bin" / "busybox").chmod(0o755)
        shutil.copyfile(
            extracted / "usr/share/doc" / PACKAGE / "copyright",
            rootfs / "usr/share/doc" / PACKAGE / "copyright",
        )
        (rootfs / "usr/share/doc" / PACKAGE / "copyright").chmod(0o644)
        for rel, mode, text in _ETC_FILES:
            (rootfs / rel).write_text(text)
            (rootfs / rel).chmod(mode)
        applets = _link_applets(binary, rootfs)
        log.info("busybox %s: %d applets linked", deb.version, applets)

        return SeedRootfs(
            rootfs=rootfs,
            config=SeedConfig(
                cmd=["sh"],
                created_by=f"berth seed image: Debian {PACKAGE} {deb.version}",
                comment="built offline by installers/images from Debian packages",
            ),
            # The package's own file dates: they change only with a new upload.
            epoch=int(binary.stat().st_mtime),
        )


def _link_applets(binary: Path, rootfs: Path) -> int:
    """Links every applet at the path busybox itself lists (bin/ls, usr/bin/wget...).

    Links are absolute (`/bin/busybox`): a relative target computed on this
    merged-/usr host would point elsewhere inside the image.
    """
    count = 0
    for rel in run([str(binary), "--list-full"]).split():
        # `linuxrc` (no directory) is an initrd entry point, not a command.
        if "/" not in rel or rel == "bin/busybox":
            continue
        link = rootfs / rel
        if not link.parent.is_dir():
            raise BuildStepFailed(f"busybox lists {rel} outside the image's skeleton")
        link.symlink_to("/bin/busybox")
        count += 1
    return count
