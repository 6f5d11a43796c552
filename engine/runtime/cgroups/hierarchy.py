"""Find the host's cgroup hierarchies and the caller's place in them.

Nothing is assumed: the mode comes from /proc/self/mountinfo (which cgroup and
cgroup2 filesystems are mounted where, with which controllers) and the
caller's cgroups from /proc/self/cgroup (cgroups(7), "/proc/[pid]/cgroup").

Modes, named like runc and systemd do:

- ``v1``: only cgroup (v1) hierarchies are mounted.
- ``v2``: only the unified cgroup2 hierarchy is mounted (Documentation/admin-guide/cgroup-v2.rst).
- ``hybrid``: both.  Controllers come from the v1 hierarchies; the v2 mount
  ("unified", systemd's hybrid layout) is kept so that a v2-only controller
  and raw ``unified`` keys can still be reached.
"""

from __future__ import annotations

import _thread
import os

from engine.runtime.cgroups.errors import CgroupError, DetectionFailed
from engine.runtime.lazylog import getLogger
from engine.runtime.record import record, record_field
from engine.runtime.smallfiles import read_text

TYPE_CHECKING = False  # as typing's, without importing typing (~2 ms per berth-runtime call)
if TYPE_CHECKING:
    from typing import Literal

    Mode = Literal["v1", "v2", "hybrid"]
else:
    Mode = str  # the Literal is for mypy only

log = getLogger(__name__)

#: Key used for the unified (v2) hierarchy in per-hierarchy maps, as in the
#: "0::/path" line of /proc/self/cgroup.
UNIFIED = ""


@record(frozen=True)
class CgroupMount:
    """One cgroup filesystem mount (a line of mountinfo, proc(5))."""

    mountpoint: str
    root: str  # the cgroup shown at mountpoint (not "/" for bind mounts and cgroup namespaces)
    version: Literal[1, 2]
    controllers: frozenset[str]  # v1: from the super options; v2: from cgroup.controllers

    def directory(self, cgroup_path: str) -> str:
        """The directory of ``cgroup_path`` (a path from the hierarchy's root) under this mount."""
        cgroup_path = "/" + cgroup_path.strip("/")
        root = "/" + self.root.strip("/")
        if root not in ("/", cgroup_path) and not cgroup_path.startswith(root + "/"):
            raise CgroupError(f"cgroup {cgroup_path} is not visible under {self.mountpoint} (its root is {root})")
        rel = cgroup_path[len(root) :] if root != "/" else cgroup_path
        return os.path.join(self.mountpoint, rel.lstrip("/")).rstrip("/") or "/"


@record(frozen=True)
class Hierarchies:
    """What this host offers, and where the calling process sits."""

    mode: Mode
    v1: dict[str, CgroupMount] = record_field(default_factory=dict)  # controller -> mount
    v2: CgroupMount | None = None
    own: dict[str, str] = record_field(default_factory=dict)  # controller (or UNIFIED) -> caller's cgroup path

    def own_path(self, key: str) -> str:
        """The caller's cgroup in the hierarchy of ``key`` (a v1 controller, or UNIFIED)."""
        return self.own.get(key, "/")


def _unescape(field_: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo octal.
    out, i = [], 0
    while i < len(field_):
        if field_[i] == "\\" and i + 4 <= len(field_) and field_[i + 1 : i + 4].isdigit():
            out.append(chr(int(field_[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field_[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text: str) -> list[tuple[str, str, str, str]]:
    """(fstype, root, mountpoint, super options) of every cgroup/cgroup2 mount, in mount order."""
    found = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3 or tail[0] not in ("cgroup", "cgroup2"):
            continue
        found.append((tail[0], _unescape(fields[3]), _unescape(fields[4]), tail[2]))
    return found


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """Map each controller (``UNIFIED`` for the "0::" line) to its path, from /proc/<pid>/cgroup."""
    own: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hid, controllers, path = parts
        if hid == "0" and controllers == "":
            own[UNIFIED] = path
            continue
        for name in controllers.split(","):
            if name:
                own[name] = path
    return own


def _v1_controllers(superopts: str) -> frozenset[str]:
    # Super options of a v1 mount list its controllers ("rw,cpu,cpuacct"); named
    # hierarchies without controllers ("name=systemd") carry none we can use.
    opts = set(superopts.split(","))
    ignored = {"rw", "ro", "nsdelegate", "clone_children", "noprefix", "xattr", "cpuset_v2_mode"}
    return frozenset(o for o in opts if o not in ignored and "=" not in o)


def _pick(mounts: list[CgroupMount], own_path: str) -> CgroupMount:
    # The same hierarchy can be mounted several times (bind mounts); take the one
    # whose root is the shortest prefix of our own cgroup, so our cgroup is reachable.
    def visible(m: CgroupMount) -> bool:
        root = "/" + m.root.strip("/")
        return root in ("/", own_path) or own_path.startswith(root + "/")

    usable = [m for m in mounts if visible(m)] or mounts
    return min(usable, key=lambda m: len(m.root.strip("/")))


def _read_v2_controllers(mountpoint: str) -> frozenset[str]:
    try:
        with open(os.path.join(mountpoint, "cgroup.controllers")) as f:
            return frozenset(f.read().split())
    except OSError as e:
        log.warning("cannot read %s/cgroup.controllers: %s", mountpoint, e)
        return frozenset()


def build(mountinfo: str, proc_cgroup: str, read_v2_controllers: bool = True) -> Hierarchies:
    """Work out the mode from the text of mountinfo and /proc/<pid>/cgroup."""
    own = parse_proc_cgroup(proc_cgroup)
    v1_by_ctrl: dict[str, list[CgroupMount]] = {}
    v2_mounts: list[CgroupMount] = []
    for fstype, root, mountpoint, superopts in parse_mountinfo(mountinfo):
        if fstype == "cgroup2":
            ctrls = _read_v2_controllers(mountpoint) if read_v2_controllers else frozenset()
            v2_mounts.append(CgroupMount(mountpoint, root, 2, ctrls))
            continue
        ctrls = _v1_controllers(superopts)
        mount = CgroupMount(mountpoint, root, 1, ctrls)
        for c in ctrls:
            v1_by_ctrl.setdefault(c, []).append(mount)
    v1 = {c: _pick(ms, own.get(c, "/")) for c, ms in v1_by_ctrl.items()}
    v2 = _pick(v2_mounts, own.get(UNIFIED, "/")) if v2_mounts else None
    if v1 and v2 is not None:
        mode: Mode = "hybrid"
    elif v1:
        mode = "v1"
    elif v2 is not None:
        mode = "v2"
    else:
        raise DetectionFailed("no cgroup or cgroup2 filesystem is mounted (see /proc/self/mountinfo)")
    return Hierarchies(mode=mode, v1=v1, v2=v2, own=own)


# detect()'s last answer: (pid, mount namespace, open /proc/self/mountinfo, /proc/self/cgroup text, result).
_cache: tuple[int, str, int, str, Hierarchies] | None = None
_cache_lock = _thread.allocate_lock()  # _thread, not threading: the CLI never imports threading for this


def detect() -> Hierarchies:
    """Detect the hierarchies of the running host, as seen by this process.

    Every create, start and delete asks (~0.2 ms to read and parse mountinfo), so
    the answer is kept while it cannot have changed: same process, same mount
    namespace, same /proc/self/cgroup, and no mount or unmount since (mountinfo
    kept open: poll(2) reports POLLPRI once the mount table changed, proc(5)).
    """
    global _cache
    proc_cgroup = read_text("/proc/self/cgroup")
    mnt_ns = os.readlink("/proc/self/ns/mnt")
    with _cache_lock:
        cached = _cache
        if cached is not None:
            pid, ns, fd, text, found = cached
            if pid == os.getpid() and ns == mnt_ns and text == proc_cgroup and not _mounts_changed(fd):
                return found
            _cache = None
            if pid == os.getpid():  # a forked child inherited the fd: the parent still polls it
                os.close(fd)
        fd = os.open("/proc/self/mountinfo", os.O_RDONLY | os.O_CLOEXEC)
        try:
            found = _build_from(fd, proc_cgroup)
        except BaseException:
            os.close(fd)
            raise
        _cache = (os.getpid(), mnt_ns, fd, proc_cgroup, found)
        return found


def _mounts_changed(fd: int) -> bool:
    import select  # only once there is a cached answer to check: a berth-runtime call never has one

    ready = select.poll()
    ready.register(fd, select.POLLPRI | select.POLLERR)
    return bool(ready.poll(0))


def _build_from(mountinfo_fd: int, proc_cgroup: str) -> Hierarchies:
    chunks = []
    while chunk := os.read(mountinfo_fd, 65536):
        chunks.append(chunk)
    found = build(b"".join(chunks).decode(), proc_cgroup)
    log.debug(
        "cgroup mode %s: v1 controllers %s, v2 %s",
        found.mode,
        sorted(found.v1),
        found.v2.mountpoint if found.v2 else None,
    )
    return found
