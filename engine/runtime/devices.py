"""/dev inside the container: the default device nodes and the standard symlinks.

runtime-spec config-linux.md#default-devices lists null, zero, full, random,
urandom, tty, console (for terminals) and ptmx; runc also adds the
/dev/{fd,stdin,stdout,stderr} symlinks (libcontainer/rootfs_linux.go
setupDevSymlinks).  mknod(2) is refused inside a user namespace, so there
the host's nodes are bind-mounted instead (runc's bindMountDeviceNode).
"""

from __future__ import annotations

import os
import stat

from . import syscalls as sc
from .abcs import Iterable, Mapping
from .paths_in_root import ensure_dir, make_target, resolve_parent_in_root
from .record import record

TYPE_CHECKING = False  # as typing's, without importing typing (~2 ms per berth-runtime call)
if TYPE_CHECKING:
    from typing import Any


@record(frozen=True)
class DeviceNode:
    path: str
    kind: str  # c, b, u (unbuffered char) or p (fifo)
    major: int
    minor: int
    mode: int = 0o666
    uid: int = 0
    gid: int = 0


DEFAULT_DEVICES = (
    DeviceNode("/dev/null", "c", 1, 3),
    DeviceNode("/dev/zero", "c", 1, 5),
    DeviceNode("/dev/full", "c", 1, 7),
    DeviceNode("/dev/random", "c", 1, 8),
    DeviceNode("/dev/urandom", "c", 1, 9),
    DeviceNode("/dev/tty", "c", 5, 0),
)

DEV_SYMLINKS = (
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
    ("pts/ptmx", "/dev/ptmx"),
)


def devices_from_spec(devices: Iterable[Mapping[str, Any]]) -> list[DeviceNode]:
    nodes = []
    for dev in devices:
        nodes.append(
            DeviceNode(
                path=str(dev["path"]),
                kind=str(dev["type"]),
                major=int(dev.get("major", 0)),
                minor=int(dev.get("minor", 0)),
                mode=int(dev.get("fileMode", 0o666)) & 0o7777,
                uid=int(dev.get("uid", 0)),
                gid=int(dev.get("gid", 0)),
            )
        )
    return nodes


def _file_type(kind: str) -> int:
    return {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}[kind]


def create_device(rootfs: str, node: DeviceNode, bind_from_host: bool) -> None:
    target = resolve_parent_in_root(rootfs, node.path)
    ensure_dir(os.path.dirname(target))
    if os.path.lexists(target):
        os.unlink(target)
    if bind_from_host:
        make_target(target, is_dir=False)
        sc.mount(node.path, target, None, sc.MS_BIND)
        return
    os.mknod(target, _file_type(node.kind) | node.mode, os.makedev(node.major, node.minor))
    # mknod applies the umask: set the mode the spec asked for explicitly.
    os.chmod(target, node.mode)
    os.chown(target, node.uid, node.gid)


def create_dev_symlinks(rootfs: str) -> None:
    links = list(DEV_SYMLINKS)
    # runc's setupDevSymlinks: kcore can be compiled out (CONFIG_PROC_KCORE), so /dev/core is
    # linked only when this kernel's /proc has it (caught by the runc cross-check in the v2 guest).
    if os.path.exists("/proc/kcore"):
        links.append(("/proc/kcore", "/dev/core"))
    for source, link in links:
        target = resolve_parent_in_root(rootfs, link)
        if os.path.lexists(target):
            if link == "/dev/ptmx":
                os.unlink(target)
            else:
                continue
        os.symlink(source, target)


# Device cgroup rules every container gets after the spec's own (runc
# libcontainer/specconv AllowedDevices): mknod of anything, and use of the
# default devices, ptys and /dev/net/tun.  Without them a spec that starts
# with "deny all" (runc spec, Docker) could not even create /dev/null.
DEFAULT_DEVICE_RULES: tuple[dict[str, Any], ...] = (
    {"allow": True, "type": "c", "access": "m"},
    {"allow": True, "type": "b", "access": "m"},
    *({"allow": True, "type": d.kind, "major": d.major, "minor": d.minor, "access": "rwm"} for d in DEFAULT_DEVICES),
    {"allow": True, "type": "c", "major": 136, "access": "rwm"},  # /dev/pts/*
    {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},  # /dev/ptmx
    {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"},  # /dev/net/tun
)


def resources_with_default_devices(
    resources: Mapping[str, Any], spec_devices: Iterable[Mapping[str, Any]]
) -> dict[str, Any]:
    """linux.resources with the spec's devices and the defaults allowed after its own rules."""
    result = dict(resources)
    rules = list(resources.get("devices", []) or [])
    for dev in devices_from_spec(spec_devices):
        if dev.kind in ("c", "b", "u"):
            kind = "c" if dev.kind == "u" else dev.kind
            rules.append({"allow": True, "type": kind, "major": dev.major, "minor": dev.minor, "access": "rwm"})
    rules.extend(dict(r) for r in DEFAULT_DEVICE_RULES)
    result["devices"] = rules
    return result
