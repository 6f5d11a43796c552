"""Building the container's filesystem view (child side, in the new mount namespace).

Order follows runc's libcontainer/rootfs_linux.go prepareRootfs/finalizeRootfs:
  1. make "/" slave (or rootfsPropagation) so nothing leaks back to the host,
  2. bind the rootfs onto itself (pivot_root needs a mount point),
  3. the spec's mounts in order (config.md#mounts),
  4. /dev nodes and symlinks,
  -- createRuntime / createContainer hooks run here (before pivot_root) --
  5. pivot_root, then detach the old root,
  6. maskedPaths, readonlyPaths, readonly rootfs (config-linux.md, config.md#root).
"""

from __future__ import annotations

import errno
import os

from . import syscalls as sc
from .abcs import Mapping, Sequence
from .devices import DEFAULT_DEVICES, create_dev_symlinks, create_device, devices_from_spec
from .errors import SetupFailed
from .lazylog import getLogger
from .mount_options import MountCall, MountOptions, parse_mount_options, plan_mount, propagation_flag
from .paths_in_root import make_target, resolve_in_root
from .smallfiles import read_text

TYPE_CHECKING = False  # as typing's, without importing typing (~2 ms per berth-runtime call)
if TYPE_CHECKING:
    from typing import Any

log = getLogger(__name__)

# statvfs f_flag bits (ST_*) that are "locked" on a mount made in a less
# privileged user namespace: a remount must keep them or fail with EPERM.
_ST_TO_MS = {
    os.ST_RDONLY: sc.MS_RDONLY,
    os.ST_NOSUID: sc.MS_NOSUID,
    os.ST_NODEV: sc.MS_NODEV,
    os.ST_NOEXEC: sc.MS_NOEXEC,
    os.ST_NOATIME: sc.MS_NOATIME,
    os.ST_NODIRATIME: sc.MS_NODIRATIME,
    os.ST_RELATIME: sc.MS_RELATIME,
}
_CGROUP2_MAGIC = 0x63677270


def current_mount_flags(path: str) -> int:
    flags = os.statvfs(path).f_flag
    return sum(ms for st, ms in _ST_TO_MS.items() if flags & st)


def _remount(path: str, flags: int) -> None:
    """Bind-remount keeping the flags the kernel locked (runc does the same fallback)."""
    try:
        sc.mount(None, path, None, flags)
    except PermissionError:
        locked = current_mount_flags(path) & (sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC | sc.MS_RDONLY)
        sc.mount(None, path, None, flags | locked)


def prepare_rootfs(rootfs: str, spec: Mapping[str, Any], bundle: str, in_user_ns: bool) -> None:
    linux = spec.get("linux", {}) or {}
    propagation = linux.get("rootfsPropagation")
    # Default MS_SLAVE|MS_REC like runc: host mount events still reach us, ours never reach the host.
    root_flags = propagation_flag(propagation) if propagation else sc.MS_SLAVE | sc.MS_REC
    sc.mount(None, "/", None, root_flags)
    # The bind below must not propagate to other namespaces, and pivot_root(2) refuses a
    # shared parent: make the mount holding the rootfs private first (runc's prepareRoot).
    make_parent_mount_private(rootfs)
    sc.mount(rootfs, rootfs, None, sc.MS_BIND | sc.MS_REC)

    mounts: Sequence[Mapping[str, Any]] = spec.get("mounts", []) or []
    for entry in mounts:
        mount_entry(rootfs, entry, bundle, in_user_ns)

    dev_is_bind = any(
        m.get("destination") == "/dev" and parse_mount_options(m.get("options", []), m.get("type")).is_bind
        for m in mounts
    )
    if not dev_is_bind:
        for node in DEFAULT_DEVICES:
            create_device(rootfs, node, bind_from_host=in_user_ns)
        create_dev_symlinks(rootfs)
    for node in devices_from_spec(linux.get("devices", []) or []):
        create_device(rootfs, node, bind_from_host=in_user_ns)


def make_parent_mount_private(rootfs: str) -> None:
    """runc's rootfsParentMountPrivate: the mount that holds ``rootfs`` becomes private."""
    parent = os.path.dirname(rootfs.rstrip("/")) or "/"
    while parent != "/" and not os.path.ismount(parent):
        parent = os.path.dirname(parent)
    sc.mount(None, parent, None, sc.MS_PRIVATE)


def mount_entry(rootfs: str, entry: Mapping[str, Any], bundle: str, in_user_ns: bool) -> None:
    """One config.json mount; a failure names the entry in container terms, as runc's mountToRootfs does."""
    destination = str(entry["destination"])
    try:
        _mount_entry(rootfs, entry, bundle, destination)
    except OSError as exc:
        source = entry.get("source") or entry.get("type") or ""
        raise SetupFailed(
            f'error mounting "{source}" to rootfs at "{destination}": {exc.strerror or exc}'
        ) from None


def _mount_entry(rootfs: str, entry: Mapping[str, Any], bundle: str, destination: str) -> None:
    # The destination is resolved inside the rootfs (securejoin): an image symlink such as
    # /etc -> / or a -> ../../.. cannot send the mount, or the mkdir before it, onto the host.
    dest = resolve_in_root(rootfs, destination)
    plan = plan_mount(entry, dest, bundle)
    if plan.kind == "bind" and not os.path.exists(plan.source):
        raise FileNotFoundError(errno.ENOENT, f"stat {plan.source}: {os.strerror(errno.ENOENT)}")
    make_target(dest, is_dir=plan.kind != "bind" or os.path.isdir(plan.source))
    if plan.kind == "cgroup":
        mount_cgroupfs(dest, plan.options)
    elif plan.kind == "filesystem":
        _mount_filesystem(plan.calls[0])
    else:
        for call in plan.calls:
            _apply(call)
    for call in plan.propagation:
        _apply(call)


def _apply(call: MountCall) -> None:
    if call.keep_locked:
        _remount(call.target, call.flags)
    else:
        sc.mount(call.source, call.target, call.fstype, call.flags, call.data)


def _mount_filesystem(call: MountCall) -> None:
    """The main mount of a filesystem entry, with runc's two fallbacks."""
    try:
        _apply(call)
    except PermissionError:
        if call.fstype != "sysfs":
            raise
        # Without a new network namespace the kernel refuses a fresh sysfs;
        # runc then binds the host's /sys (rootfs_linux.go mountToRootfs).
        sc.mount("/sys", call.target, None, sc.MS_BIND | sc.MS_REC)
        kept = call.flags & (sc.MS_RDONLY | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)
        _remount(call.target, sc.MS_REMOUNT | sc.MS_BIND | kept)
    except OSError as exc:
        data = (call.data or "").split(",")
        if call.fstype != "devpts" or exc.errno != errno.EINVAL or not any(d.startswith("gid=") for d in data):
            raise
        # In a user namespace gid 5 (tty) may be unmapped: retry without gid=, like runc.
        kept_data = ",".join(d for d in data if not d.startswith("gid="))
        sc.mount(call.source, call.target, call.fstype, call.flags, kept_data or None)


def mount_cgroupfs(dest: str, options: MountOptions) -> None:
    """A `cgroup` mount: cgroup2 on a unified host, one hierarchy per v1 controller otherwise.

    Done while still in the cgroup namespace's view, so each hierarchy shows
    the container's own cgroup as its root (cgroup_namespaces(7)).
    """
    flags = options.flags & (sc.MS_RDONLY | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC | sc.MS_RELATIME)
    mountinfo = [line.split() for line in read_text("/proc/self/mountinfo").splitlines()]  # read once for both
    if _is_cgroup2(mountinfo, "/sys/fs/cgroup"):
        sc.mount("cgroup2", dest, "cgroup2", flags)
        return
    # Like runc 1.1 (mountCgroupV1): a writable tmpfs holding one read-only (if asked)
    # mount per host v1 hierarchy, in the host's order; the hybrid unified mount is left out.
    sc.mount("tmpfs", dest, "tmpfs", flags & ~sc.MS_RDONLY, "mode=755")
    for mountpoint, superopts in _host_v1_hierarchies(mountinfo):
        sub = os.path.join(dest, os.path.basename(mountpoint))
        os.makedirs(sub, exist_ok=True)
        data = ",".join(o for o in superopts.split(",") if o not in ("rw", "ro"))
        sc.mount("cgroup", sub, "cgroup", flags, data)


def _host_v1_hierarchies(mountinfo: list[list[str]]) -> list[tuple[str, str]]:
    found = []
    for fields in mountinfo:
        sep = fields.index("-")
        if fields[sep + 1] == "cgroup" and os.path.dirname(fields[4]) == "/sys/fs/cgroup":
            found.append((fields[4], fields[sep + 3]))
    return found


def _is_cgroup2(mountinfo: list[list[str]], path: str) -> bool:
    # statfs f_type is not exposed by os.statvfs; /proc/self/mountinfo (split in fields) is.
    for fields in mountinfo:
        if fields[4] == path:
            sep = fields.index("-")
            return fields[sep + 1] == "cgroup2"
    return False


def pivot_to(rootfs: str) -> None:
    """pivot_root(".", ".") then detach the old root: runc's trick, no put_old directory needed."""
    os.chdir(rootfs)
    sc.pivot_root(".", ".")
    # The old root is now stacked under "."; make it slave so the unmount
    # does not propagate to the host, then lazily detach it.
    sc.mount(None, ".", None, sc.MS_SLAVE | sc.MS_REC)
    sc.umount2(".", sc.MNT_DETACH)
    os.chdir("/")


def move_root_to(rootfs: str) -> None:
    """--no-pivot (runc's msMoveRoot): move the rootfs over "/" and chroot, for roots pivot_root refuses
    (e.g. an initramfs).  Weaker than pivot_root: the old root stays reachable to CAP_SYS_CHROOT."""
    os.chdir(rootfs)
    sc.mount(rootfs, "/", None, sc.MS_MOVE)
    os.chroot(".")
    os.chdir("/")


def apply_root_propagation(propagation: str | None) -> None:
    """config-linux.md#rootfs-mount-propagation, applied to the new root after pivot_root (as runc does)."""
    if propagation:
        sc.mount(None, "/", None, propagation_flag(propagation))


def mask_paths(paths: Sequence[str]) -> None:
    """config-linux.md#masked-paths: /dev/null over files, an empty read-only tmpfs over directories.

    Runs after pivot_root (or the --no-pivot chroot), as in runc: "/" is the container's
    root, so the kernel resolves absolute and ``..`` symlinks inside it and no
    resolve_in_root is needed here (the same holds for readonly_paths and /dev/console).
    """
    for path in paths:
        try:
            is_dir = os.path.isdir(path) and not os.path.islink(path)
        except OSError:
            continue
        if not os.path.lexists(path):
            continue
        try:
            if is_dir:
                sc.mount("tmpfs", path, "tmpfs", sc.MS_RDONLY)
            else:
                sc.mount("/dev/null", path, None, sc.MS_BIND)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise


def readonly_paths(paths: Sequence[str]) -> None:
    """config-linux.md#readonly-paths: bind each path onto itself, then remount it read-only."""
    for path in paths:
        if not os.path.lexists(path):
            continue
        sc.mount(path, path, None, sc.MS_BIND | sc.MS_REC)
        _remount(path, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | sc.MS_REC)


def make_root_readonly() -> None:
    """config.md#root readonly: remount the (bind-mounted) root read-only."""
    _remount("/", sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY)
