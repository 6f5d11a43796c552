"""The guest kernel: Debian's generic amd64 kernel, fetched through the machine's apt.

The generic flavour, not ``cloud``: only the generic one builds 9p (the share
that carries the host's files into the guest) as modules.  Which ABI version
is current comes from the ``linux-image-amd64`` meta package, so a Debian
point release moves the guest along with it.  The package is unpacked with
``dpkg-deb -x`` (no maintainer scripts, nothing installed on the host) into a
cache directory named after the exact version, and ``depmod -b`` writes its
``modules.dep``.  Concurrent callers serialise on a lock file; a directory is
used only once its stamp file exists, so an interrupted unpack is redone.
"""

from __future__ import annotations

import fcntl
import logging
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from installers.images import debs
from installers.images.commands import require_tool, run
from installers.images.errors import BuildStepFailed

log = logging.getLogger(__name__)

META_PACKAGE = "linux-image-amd64"
_STAMP = ".berth-unpacked"
_IMAGE_PACKAGE = re.compile(r"^\s*Depends:\s*(linux-image-[0-9][\w.+-]*-amd64)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class GuestKernel:
    release: str  # `uname -r` in the guest, e.g. 6.1.0-56-amd64
    vmlinuz: Path
    modules_dir: Path  # <root>/lib/modules/<release>, with modules.dep


def image_package(meta: str = META_PACKAGE) -> str:
    """The versioned image package the meta package points at (``linux-image-6.1.0-56-amd64``)."""
    require_tool("apt-cache", "apt")
    found = _IMAGE_PACKAGE.search(run(["apt-cache", "depends", "--no-recommends", "--no-suggests", meta]))
    if found is None:
        raise BuildStepFailed(f"apt-cache depends {meta} names no linux-image-*-amd64: run 'apt-get update' and retry")
    return found.group(1)


@contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _kernel_in(root: Path) -> GuestKernel:
    images = sorted((root / "boot").glob("vmlinuz-*"))
    if len(images) != 1:
        raise BuildStepFailed(f"expected one kernel in {root / 'boot'}, found {[p.name for p in images]}")
    release = images[0].name.removeprefix("vmlinuz-")
    return GuestKernel(release, images[0], root / "lib" / "modules" / release)


def fetch(cache_dir: Path) -> GuestKernel:
    """The unpacked kernel in ``cache_dir``, downloading and unpacking it when missing."""
    deb = debs.candidate(image_package())
    root = cache_dir / f"{deb.package}_{deb.version}"
    with _locked(cache_dir / ".lock"):
        if (root / _STAMP).is_file():
            return _kernel_in(root)
        require_tool("depmod", "kmod")
        shutil.rmtree(root, ignore_errors=True)  # a run killed halfway left it
        with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".download-") as tmp:
            deb_path = debs.download(deb, Path(tmp))
            debs.extract(deb_path, root)
        kernel = _kernel_in(root)
        run(["depmod", "-b", str(root), kernel.release])
        (root / _STAMP).write_text(f"{deb.package} {deb.version} {deb.sha256}\n")
        log.info("guest kernel %s unpacked in %s", kernel.release, root)
        for old in cache_dir.glob("linux-image-*"):
            if old != root:  # a kernel Debian has since replaced: ~400 MB each
                shutil.rmtree(old, ignore_errors=True)
        return kernel
