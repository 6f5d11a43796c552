"""The only module in Berth that calls libc directly (through ctypes).

Python 3.11 has no os.unshare/os.setns/CLONE_* constants, and nothing for
mount(2), pivot_root(2), capset(2) or prctl(2).  Every such call lives here so
the rest of the runtime is plain Python that can be read (and unit-tested)
without root.  Each wrapper raises OSError with the real errno, like the
functions in ``os`` do.
"""

from __future__ import annotations

import ctypes
import os


def _load_libc() -> ctypes.CDLL:
    # glibc's soname first: ctypes.util.find_library runs `ldconfig -p` in a subprocess
    # (~10 ms), which every `berth-runtime` invocation would pay.
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        from ctypes import util  # imports subprocess & co.: only where the soname differs (musl)

        return ctypes.CDLL(util.find_library("c") or "libc.so.6", use_errno=True)


_libc = _load_libc()

# <sched.h>
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWTIME = 0x00000080

# <sys/mount.h>
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MNT_DETACH = 2

# x86_64 syscall numbers for calls glibc 2.36 has no wrapper for.
SYS_PIVOT_ROOT = 155


def _check(ret: int, what: str, path: str | None = None) -> int:
    if ret == -1:
        err = ctypes.get_errno()
        if path is not None:
            raise OSError(err, f"{what}: {os.strerror(err)}", path)
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def _b(s: str | None) -> bytes | None:
    return None if s is None else os.fsencode(s)


def unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def setns(fd: int, nstype: int = 0) -> None:
    _check(_libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)), "setns")


def mount(
    source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None
) -> None:
    ret = _libc.mount(_b(source), _b(target), _b(fstype), ctypes.c_ulong(flags), _b(data))
    _check(ret, f"mount {source or fstype or ''} on {target}", target)


def umount2(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(_b(target), ctypes.c_int(flags)), f"umount {target}", target)


def pivot_root(new_root: str, put_old: str) -> None:
    ret = _libc.syscall(ctypes.c_long(SYS_PIVOT_ROOT), _b(new_root), _b(put_old))
    _check(ret, "pivot_root", new_root)


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_libc.sethostname(raw, ctypes.c_size_t(len(raw))), "sethostname")


def setdomainname(name: str) -> None:
    raw = name.encode()
    _check(_libc.setdomainname(raw, ctypes.c_size_t(len(raw))), "setdomainname")


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    ret = _libc.prctl(
        ctypes.c_int(option),
        ctypes.c_ulong(arg2),
        ctypes.c_ulong(arg3),
        ctypes.c_ulong(arg4),
        ctypes.c_ulong(arg5),
    )
    return _check(ret, f"prctl({option})")


# --- capabilities and seccomp (engine/runtime/capabilities.py, engine/runtime/seccomp.py) ---

# <linux/capability.h>: version 3 carries 64-bit sets as two 32-bit data structs.
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
# <linux/seccomp.h> and the x86_64 syscall table (glibc 2.36 has no seccomp() wrapper).
SYS_SECCOMP = 317
SECCOMP_SET_MODE_FILTER = 1


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


class _SockFprog(ctypes.Structure):
    # struct sock_fprog { unsigned short len; struct sock_filter *filter; }
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def capget(pid: int = 0) -> tuple[int, int, int]:
    """(effective, permitted, inheritable) of ``pid`` (0: the calling thread) as 64-bit masks."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, pid)
    data = (_CapData * 2)()
    _check(_libc.capget(ctypes.byref(header), data), "capget")
    return (
        data[0].effective | data[1].effective << 32,
        data[0].permitted | data[1].permitted << 32,
        data[0].inheritable | data[1].inheritable << 32,
    )


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """Set the calling thread's three capability sets (64-bit masks)."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for i, shift in enumerate((0, 32)):
        data[i].effective = (effective >> shift) & 0xFFFFFFFF
        data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    _check(_libc.capset(ctypes.byref(header), data), "capset")


def seccomp_set_mode_filter(program: bytes, flags: int = 0) -> int:
    """seccomp(SECCOMP_SET_MODE_FILTER, flags, &prog) with a raw sock_filter array.

    Returns the syscall's result (a listener fd with SECCOMP_FILTER_FLAG_NEW_LISTENER, else 0).
    """
    if len(program) % 8:
        raise ValueError(f"a BPF program is a whole number of 8-byte instructions, got {len(program)} bytes")
    buf = ctypes.create_string_buffer(program, len(program))
    prog = _SockFprog(len(program) // 8, ctypes.cast(buf, ctypes.c_void_p))
    ret = _libc.syscall(
        ctypes.c_long(SYS_SECCOMP),
        ctypes.c_uint(SECCOMP_SET_MODE_FILTER),
        ctypes.c_uint(flags),
        ctypes.byref(prog),
    )
    return _check(ret, "seccomp(SECCOMP_SET_MODE_FILTER)")


def raw_syscall(number: int, *args: int) -> int:
    """syscall(2) with integer arguments: for calls without a wrapper (and for tests probing filters)."""
    ret = _libc.syscall(ctypes.c_long(number), *(ctypes.c_long(a) for a in args))
    return _check(ret, f"syscall({number})")


# --- fork straight into a cgroup (launcher.py) ---

SYS_CLONE3 = 435  # unified numbering
CLONE_INTO_CGROUP = 0x200000000  # <linux/sched.h>, Linux 5.7
_SIGCHLD = 17


class _CloneArgs(ctypes.Structure):
    """struct clone_args (<linux/sched.h>), CLONE_ARGS_SIZE_VER2: every field a __u64."""

    _fields_ = [(name, ctypes.c_uint64) for name in (
        "flags", "pidfd", "child_tid", "parent_tid", "exit_signal", "stack", "stack_size", "tls",
        "set_tid", "set_tid_size", "cgroup")]


_pylibc: ctypes.PyDLL | None = None


def fork_into_cgroup(cgroup_dir_fd: int) -> int:
    """os.fork(), except that the child starts in the cgroup v2 directory ``cgroup_dir_fd``.

    clone3(CLONE_INTO_CGROUP) places the child at creation, with no migration: moving a
    process later (a write to cgroup.procs) takes the cgroup threadgroup lock for writing,
    which waits for an RCU grace period (1-15 ms here) when no other move happened lately.
    Returns 0 in the child.  OSError if the kernel refuses (ENOSYS before 5.7, EBUSY/EOPNOTSUPP
    for a cgroup with child cgroups or in threaded mode...): the caller then forks and
    migrates as before.
    """
    return clone_process(0, cgroup_dir_fd)


def clone_process(flags: int, cgroup_dir_fd: int | None = None) -> int:
    """os.fork() through clone3: the child made with ``flags`` (e.g. CLONE_NEWPID: it is PID 1
    of a new namespace at once, where unshare would only move its children there), and in the
    cgroup v2 directory ``cgroup_dir_fd`` if given (CLONE_INTO_CGROUP, see fork_into_cgroup).

    The child is made the way os.fork makes one: the GIL is held across the call (a PyDLL
    function) and Python's own before/after-fork steps run around it (PyOS_BeforeFork,
    PyOS_AfterFork_Child/_Parent: locks, at-fork callbacks).  Returns 0 in the child.
    """
    global _pylibc
    if _pylibc is None:
        _pylibc = ctypes.PyDLL("libc.so.6", use_errno=True)
        _pylibc.syscall.restype = ctypes.c_long
    args = _CloneArgs(flags=flags, exit_signal=_SIGCHLD)
    if cgroup_dir_fd is not None:
        args.flags |= CLONE_INTO_CGROUP
        args.cgroup = cgroup_dir_fd
    api = ctypes.pythonapi
    api.PyOS_BeforeFork()
    pid = _pylibc.syscall(ctypes.c_long(SYS_CLONE3), ctypes.byref(args), ctypes.c_size_t(ctypes.sizeof(args)))
    if pid == 0:
        api.PyOS_AfterFork_Child()
        return 0
    err = ctypes.get_errno()
    api.PyOS_AfterFork_Parent()
    if pid < 0:
        what = "CLONE_INTO_CGROUP" if cgroup_dir_fd is not None else f"flags {flags:#x}"
        raise OSError(err, f"clone3({what}): {os.strerror(err)}")
    return int(pid)


# --- in-root path resolution and the new mount API (engine/snapshots/) ---

# Unified syscall numbers (the same on every architecture since Linux 5.1).
SYS_OPEN_TREE = 428
SYS_MOVE_MOUNT = 429
SYS_FSOPEN = 430
SYS_FSCONFIG = 431
SYS_FSMOUNT = 432
SYS_OPENAT2 = 437

# <sched.h>: unshare(CLONE_FS) gives one thread its own cwd (for relative overlay lowerdirs).
CLONE_FS = 0x00000200

# <linux/openat2.h>
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

# <linux/mount.h>
FSOPEN_CLOEXEC = 0x1
FSCONFIG_SET_FLAG = 0
FSCONFIG_SET_STRING = 1
FSCONFIG_CMD_CREATE = 6
FSMOUNT_CLOEXEC = 0x1
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOVE_MOUNT_F_EMPTY_PATH = 0x4
AT_FDCWD = -100


class _OpenHow(ctypes.Structure):
    # struct open_how { __u64 flags; __u64 mode; __u64 resolve; }
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def openat2(dirfd: int, path: str | bytes, flags: int, mode: int = 0, resolve: int = 0) -> int:
    """openat2(2): open ``path`` relative to ``dirfd`` with RESOLVE_* restrictions; returns an fd."""
    how = _OpenHow(flags, mode, resolve)
    raw = os.fsencode(path)
    ret = _libc.syscall(
        ctypes.c_long(SYS_OPENAT2),
        ctypes.c_int(dirfd),
        ctypes.c_char_p(raw),
        ctypes.byref(how),
        ctypes.c_size_t(ctypes.sizeof(how)),
    )
    return _check(ret, "openat2", os.fsdecode(raw))


def fsopen(fstype: str, flags: int = FSOPEN_CLOEXEC) -> int:
    """fsopen(2): a filesystem context fd to configure with fsconfig()."""
    ret = _libc.syscall(ctypes.c_long(SYS_FSOPEN), ctypes.c_char_p(fstype.encode()), ctypes.c_uint(flags))
    return _check(ret, f"fsopen({fstype})")


def fsconfig(fd: int, cmd: int, key: str | None = None, value: str | None = None, aux: int = 0) -> None:
    """fsconfig(2) with a string value (or none, for flags and commands)."""
    ret = _libc.syscall(
        ctypes.c_long(SYS_FSCONFIG),
        ctypes.c_int(fd),
        ctypes.c_uint(cmd),
        ctypes.c_char_p(_b(key)),
        ctypes.c_char_p(_b(value)),
        ctypes.c_int(aux),
    )
    _check(ret, f"fsconfig({key or cmd}={value or ''})")


def fsmount(fd: int, flags: int = FSMOUNT_CLOEXEC, attr_flags: int = 0) -> int:
    """fsmount(2): turn a created filesystem context into a detached mount; returns its fd."""
    ret = _libc.syscall(ctypes.c_long(SYS_FSMOUNT), ctypes.c_int(fd), ctypes.c_uint(flags), ctypes.c_uint(attr_flags))
    return _check(ret, "fsmount")


def move_mount(from_fd: int, to_path: str, from_path: str = "", flags: int = MOVE_MOUNT_F_EMPTY_PATH) -> None:
    """move_mount(2): attach the detached mount ``from_fd`` at ``to_path``."""
    ret = _libc.syscall(
        ctypes.c_long(SYS_MOVE_MOUNT),
        ctypes.c_int(from_fd),
        ctypes.c_char_p(os.fsencode(from_path)),
        ctypes.c_int(AT_FDCWD),
        ctypes.c_char_p(os.fsencode(to_path)),
        ctypes.c_uint(flags),
    )
    _check(ret, f"move_mount to {to_path}", to_path)


# <linux/prctl.h> options used by the container lifecycle (engine/runtime/init.py, run, exec).
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36


# --- bpf(2), for the cgroup v2 device controller (engine/runtime/cgroups/v2.py) ---
# Command and type numbers from include/uapi/linux/bpf.h; x86_64 syscall 321.
SYS_BPF = 321
BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_GET_FD_BY_ID = 13
BPF_PROG_QUERY = 16
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6  # enum bpf_attach_type
BPF_F_ALLOW_OVERRIDE = 1
BPF_F_ALLOW_MULTI = 2


def _bpf(cmd: int, attr: ctypes.Array[ctypes.c_char], what: str) -> int:
    ret = _libc.syscall(ctypes.c_long(SYS_BPF), ctypes.c_int(cmd), attr, ctypes.c_uint(len(attr)))
    return _check(ret, what)


def bpf_prog_load(prog_type: int, insns: bytes, license_: str = "Apache-2.0", expected_attach_type: int = 0) -> int:
    """BPF_PROG_LOAD: load ``insns`` (struct bpf_insn, 8 bytes each); returns the program fd.

    On a verifier error the kernel's log is put into the OSError message.
    """
    code = ctypes.create_string_buffer(insns, len(insns))
    lic = ctypes.create_string_buffer(license_.encode())
    log = ctypes.create_string_buffer(65536)
    attr = ctypes.create_string_buffer(128)
    # union bpf_attr, BPF_PROG_LOAD: prog_type u32 @0, insn_cnt u32 @4, insns u64 @8, license u64 @16,
    # log_level u32 @24, log_size u32 @28, log_buf u64 @32, ..., expected_attach_type u32 @68.
    ctypes.c_uint32.from_buffer(attr, 0).value = prog_type
    ctypes.c_uint32.from_buffer(attr, 4).value = len(insns) // 8
    ctypes.c_uint64.from_buffer(attr, 8).value = ctypes.addressof(code)
    ctypes.c_uint64.from_buffer(attr, 16).value = ctypes.addressof(lic)
    ctypes.c_uint32.from_buffer(attr, 24).value = 1
    ctypes.c_uint32.from_buffer(attr, 28).value = len(log)
    ctypes.c_uint64.from_buffer(attr, 32).value = ctypes.addressof(log)
    ctypes.c_uint32.from_buffer(attr, 68).value = expected_attach_type
    try:
        return _bpf(BPF_PROG_LOAD, attr, "bpf(BPF_PROG_LOAD)")
    except OSError as e:
        text = log.value.decode(errors="replace").strip()
        raise OSError(e.errno, f"{e.strerror}; verifier log: {text[-2000:]}") from None


def _attach_attr(target_fd: int, prog_fd: int, attach_type: int, flags: int) -> ctypes.Array[ctypes.c_char]:
    # BPF_PROG_ATTACH/DETACH: target_fd u32 @0, attach_bpf_fd u32 @4, attach_type u32 @8, attach_flags u32 @12.
    attr = ctypes.create_string_buffer(32)
    ctypes.c_uint32.from_buffer(attr, 0).value = target_fd
    ctypes.c_uint32.from_buffer(attr, 4).value = prog_fd
    ctypes.c_uint32.from_buffer(attr, 8).value = attach_type
    ctypes.c_uint32.from_buffer(attr, 12).value = flags
    return attr


def bpf_prog_attach(target_fd: int, prog_fd: int, attach_type: int, flags: int = 0) -> None:
    _bpf(BPF_PROG_ATTACH, _attach_attr(target_fd, prog_fd, attach_type, flags), "bpf(BPF_PROG_ATTACH)")


def bpf_prog_detach(target_fd: int, prog_fd: int, attach_type: int) -> None:
    _bpf(BPF_PROG_DETACH, _attach_attr(target_fd, prog_fd, attach_type, 0), "bpf(BPF_PROG_DETACH)")


def bpf_prog_query(target_fd: int, attach_type: int, max_progs: int = 64) -> list[int]:
    """BPF_PROG_QUERY: ids of the programs attached directly to ``target_fd``."""
    ids = (ctypes.c_uint32 * max_progs)()
    # target_fd u32 @0, attach_type u32 @4, query_flags u32 @8, attach_flags u32 @12,
    # prog_ids u64 @16, prog_cnt u32 @24.
    attr = ctypes.create_string_buffer(40)
    ctypes.c_uint32.from_buffer(attr, 0).value = target_fd
    ctypes.c_uint32.from_buffer(attr, 4).value = attach_type
    ctypes.c_uint64.from_buffer(attr, 16).value = ctypes.addressof(ids)
    ctypes.c_uint32.from_buffer(attr, 24).value = max_progs
    _bpf(BPF_PROG_QUERY, attr, "bpf(BPF_PROG_QUERY)")
    count = ctypes.c_uint32.from_buffer(attr, 24).value
    return [int(ids[i]) for i in range(min(count, max_progs))]


def bpf_prog_get_fd_by_id(prog_id: int) -> int:
    attr = ctypes.create_string_buffer(16)
    ctypes.c_uint32.from_buffer(attr, 0).value = prog_id
    return _bpf(BPF_PROG_GET_FD_BY_ID, attr, f"bpf(BPF_PROG_GET_FD_BY_ID {prog_id})")


def syncfs(fd: int) -> None:
    """syncfs(2): flush the filesystem holding ``fd`` (a whole unpacked layer in one call)."""
    _check(_libc.syncfs(ctypes.c_int(fd)), "syncfs")
