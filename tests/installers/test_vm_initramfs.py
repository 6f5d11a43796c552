"""The test guest's initramfs: the cpio newc writer, module dependency order, the archive's contents."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from installers.images.errors import BuildStepFailed
from installers.vm import initramfs
from installers.vm.kernel import GuestKernel

VIRTIO = "kernel/drivers/virtio"
MODULES_DEP = f"""\
kernel/fs/9p/9p.ko: kernel/fs/netfs/netfs.ko kernel/fs/fscache/fscache.ko kernel/net/9p/9pnet.ko
kernel/fs/netfs/netfs.ko:
kernel/fs/fscache/fscache.ko: kernel/fs/netfs/netfs.ko
kernel/net/9p/9pnet.ko:
kernel/net/9p/9pnet_virtio.ko: kernel/net/9p/9pnet.ko {VIRTIO}/virtio_ring.ko {VIRTIO}/virtio.ko
{VIRTIO}/virtio.ko:
{VIRTIO}/virtio_ring.ko:
kernel/arch/x86/crypto/crc32c-intel.ko:
"""


def read_newc(data: bytes) -> list[tuple[str, int, bytes]]:
    """(name, mode, data) of every entry, as the kernel's unpacker reads them (buffer-format.rst)."""
    entries: list[tuple[str, int, bytes]] = []
    offset = 0
    while True:
        header = data[offset : offset + 110]
        assert header[:6] == b"070701"
        fields = [int(header[6 + 8 * i : 14 + 8 * i], 16) for i in range(13)]
        mode, filesize, namesize = fields[1], fields[6], fields[11]
        name_start = offset + 110
        name = data[name_start : name_start + namesize - 1].decode()
        assert data[name_start + namesize - 1] == 0
        body = name_start + namesize + (-(110 + namesize) % 4)
        if name == "TRAILER!!!":
            return entries
        entries.append((name, mode, data[body : body + filesize]))
        offset = body + filesize + (-filesize % 4)


def test_newc_archive_round_trips_files_and_directories() -> None:
    archive = initramfs.newc_archive(
        [
            initramfs.Entry("bin", stat.S_IFDIR | 0o755),
            initramfs.Entry("bin/tool", stat.S_IFREG | 0o755, b"odd length"),
            initramfs.Entry("init", stat.S_IFREG | 0o755, b"#!/bin/sh\n"),
        ]
    )
    assert len(archive) % 4 == 0
    assert read_newc(archive) == [
        ("bin", stat.S_IFDIR | 0o755, b""),
        ("bin/tool", stat.S_IFREG | 0o755, b"odd length"),
        ("init", stat.S_IFREG | 0o755, b"#!/bin/sh\n"),
    ]


def test_modules_load_after_their_dependencies() -> None:
    deps = initramfs.parse_modules_dep(MODULES_DEP)
    order = initramfs.load_order(deps, ["9pnet_virtio", "9p"])
    assert set(order) == {
        "kernel/net/9p/9pnet.ko", "kernel/drivers/virtio/virtio_ring.ko", "kernel/drivers/virtio/virtio.ko",
        "kernel/net/9p/9pnet_virtio.ko", "kernel/fs/netfs/netfs.ko", "kernel/fs/fscache/fscache.ko",
        "kernel/fs/9p/9p.ko",
    }  # fmt: skip
    for module, needs in deps.items():
        if module in order:
            assert all(order.index(dep) < order.index(module) for dep in needs), module
    assert initramfs.load_order(deps, ["crc32c_intel"]) == ["kernel/arch/x86/crypto/crc32c-intel.ko"]  # '-' is '_'


def test_a_module_the_kernel_lacks_is_named() -> None:
    with pytest.raises(BuildStepFailed, match="virtiofs"):
        initramfs.load_order(initramfs.parse_modules_dep(MODULES_DEP), ["virtiofs"])


def test_initramfs_holds_init_busybox_and_the_modules_in_load_order(tmp_path: Path) -> None:
    modules_dir = tmp_path / "lib" / "modules" / "6.1.0-test-amd64"
    for line in MODULES_DEP.splitlines():
        module = modules_dir / line.split(":")[0]
        module.parent.mkdir(parents=True, exist_ok=True)
        module.write_bytes(f"module {module.name}".encode())
    (modules_dir / "modules.dep").write_text(MODULES_DEP)
    busybox = tmp_path / "busybox"
    busybox.write_bytes(b"\x7fELF static busybox")
    kernel = GuestKernel("6.1.0-test-amd64", tmp_path / "vmlinuz", modules_dir)
    out = initramfs.build(kernel, tmp_path / "out" / "initrd.img", modules=["9p"], busybox=busybox)
    entries = {name: (mode, data) for name, mode, data in read_newc(out.read_bytes())}
    assert entries["init"] == (stat.S_IFREG | 0o755, initramfs.INIT_SCRIPT.read_bytes())
    assert entries["bin/busybox"][1] == b"\x7fELF static busybox"
    load = entries["modules.load"][1].decode().split()
    assert load[-1] == "lib/modules/kernel/fs/9p/9p.ko"
    assert load.index("lib/modules/kernel/fs/netfs/netfs.ko") < load.index("lib/modules/kernel/fs/fscache/fscache.ko")
    for path in load:
        assert entries[path][1] == f"module {Path(path).name}".encode()
    assert stat.S_ISDIR(entries["lib/modules/kernel/fs"][0])  # parents exist before their files
