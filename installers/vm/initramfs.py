"""The test guest's initramfs: static busybox, a few kernel modules, and guest_init.sh as /init.

Written as an uncompressed cpio "newc" archive (the format the kernel unpacks,
Documentation/driver-api/early-userspace/buffer-format.rst) by Python itself,
so no cpio tool is needed; uncompressed because under TCG unpacking is
emulated and the archive is only a few MB.  The modules are the ones the
guest needs before it can reach the host's files (virtio PCI and 9p) and its
scratch disk, with their dependencies resolved from the kernel's modules.dep.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from installers.images.errors import BuildStepFailed, HostToolMissing
from installers.vm.kernel import GuestKernel

#: Modules the guest loads, in this order, by name; their dependencies come first automatically.
#: 9p reaches the host's files; virtio_blk + ext4 the scratch disk that backs /tmp (crc32c_generic
#: first: ext4 and libcrc32c ask the crypto API for crc32c, and there is no modprobe to autoload
#: it); nf_tables lets the host's iptables (nft backend) work in the guest, as the tests' cleanup
#: sweep expects.
GUEST_MODULES = ("virtio_pci", "9pnet_virtio", "9p", "virtio_blk", "crc32c_generic", "ext4", "nf_tables")
INIT_SCRIPT = Path(__file__).with_name("guest_init.sh")
BUSYBOX = Path("/bin/busybox")  # Debian's busybox-static (installers/linux/host-deps.sh)

_TRAILER = "TRAILER!!!"


@dataclass(frozen=True)
class Entry:
    name: str  # path inside the archive, without a leading "/"
    mode: int  # file type and permission bits
    data: bytes = b""


def _header(ino: int, entry: Entry, nlink: int) -> bytes:
    name = entry.name.encode() + b"\0"
    fields = [ino, entry.mode, 0, 0, nlink, 0, len(entry.data), 0, 0, 0, 0, len(name), 0]
    return b"070701" + b"".join(f"{v:08X}".encode() for v in fields) + name


def _pad(length: int) -> bytes:
    return b"\0" * (-length % 4)


def newc_archive(entries: Iterable[Entry]) -> bytes:
    """A cpio newc archive of ``entries`` (parents must be listed before their children)."""
    out = bytearray()
    for ino, entry in enumerate([*entries, Entry(_TRAILER, 0)], start=1):
        header = _header(ino, entry, 2 if stat.S_ISDIR(entry.mode) else 1)
        out += header + _pad(len(header)) + entry.data + _pad(len(entry.data))
    return bytes(out)


def parse_modules_dep(text: str) -> dict[str, list[str]]:
    """modules.dep: ``kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko ...`` → path → dependency paths."""
    deps: dict[str, list[str]] = {}
    for line in text.splitlines():
        path, sep, rest = line.partition(":")
        if sep:
            deps[path.strip()] = rest.split()
    return deps


def module_name(path: str) -> str:
    """modprobe's name for a module file: basename without .ko[.xz|.zst|.gz], '-' as '_'."""
    base = os.path.basename(path).split(".ko", 1)[0]
    return base.replace("-", "_")


def load_order(deps: dict[str, list[str]], wanted: Iterable[str]) -> list[str]:
    """Module paths for ``wanted`` (names) and everything they need, dependencies first."""
    by_name = {module_name(p): p for p in deps}
    order: list[str] = []
    visiting: set[str] = set()

    def visit(path: str) -> None:
        if path in order:
            return
        if path in visiting:
            raise BuildStepFailed(f"modules.dep has a dependency cycle through {path}")
        visiting.add(path)
        for dep in deps.get(path, []):
            visit(dep)
        visiting.discard(path)
        order.append(path)

    for name in wanted:
        key = name.replace("-", "_")
        if key not in by_name:
            raise BuildStepFailed(f"the guest kernel has no module {name!r} (built in, or not built?)")
        visit(by_name[key])
    return order


def _dirs_of(paths: Iterable[str]) -> list[str]:
    dirs: set[str] = set()
    for p in paths:
        parent = os.path.dirname(p)
        while parent:
            dirs.add(parent)
            parent = os.path.dirname(parent)
    return sorted(dirs)


def build(kernel: GuestKernel, out: Path, modules: Iterable[str] = GUEST_MODULES, busybox: Path = BUSYBOX) -> Path:
    """Write the initramfs for ``kernel`` to ``out`` (atomically) and return it."""
    if not busybox.is_file():
        raise HostToolMissing(f"{busybox} not found: install the Debian package 'busybox-static' (make host-deps)")
    deps = parse_modules_dep((kernel.modules_dir / "modules.dep").read_text())
    order = load_order(deps, modules)
    files = [
        Entry("init", stat.S_IFREG | 0o755, INIT_SCRIPT.read_bytes()),
        Entry("bin/busybox", stat.S_IFREG | 0o755, busybox.read_bytes()),
        Entry("modules.load", stat.S_IFREG | 0o644, "".join(f"lib/modules/{p}\n" for p in order).encode()),
        *(Entry(f"lib/modules/{p}", stat.S_IFREG | 0o644, (kernel.modules_dir / p).read_bytes()) for p in order),
    ]
    dirs = [Entry(d, stat.S_IFDIR | 0o755) for d in _dirs_of(e.name for e in files)]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_bytes(newc_archive([*dirs, *files]))
    tmp.replace(out)
    return out
