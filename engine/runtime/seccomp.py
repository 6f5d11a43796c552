"""Seccomp for a container's process (runtime-spec config-linux.md#seccomp).

Three jobs, each a function:

* ``docker_profile_to_oci`` / ``default_seccomp``: Docker's profile format
  (``archMap``, ``includes``/``excludes``) -> OCI ``linux.seccomp`` for one
  capability set, architecture and kernel, like moby's ``profiles/seccomp``.
* ``compile_seccomp``: OCI ``linux.seccomp`` -> a classic-BPF program (the raw
  ``struct sock_filter`` array), built with libseccomp through pyseccomp.
  Compiling Docker's default profile costs tens of milliseconds, so programs
  are cached by a hash of the canonical JSON (in memory, optionally on disk).
  Like runc, syscalls newer than the profile answer ENOSYS rather than the
  default EPERM (``engine.runtime.seccomp_enosys``).
* ``load_seccomp`` (``engine.runtime.seccomp_bpf``, with the cache: no pyseccomp
  there): install such a program in the calling process with seccomp(2)
  ``SECCOMP_SET_MODE_FILTER``.

When to load (runc ``libcontainer/standard_init_linux.go``): the kernel lets a
process install a filter only with no_new_privs set or with CAP_SYS_ADMIN.
When ``process.noNewPrivileges`` is false, load the filter *before* the
capabilities are dropped (while CAP_SYS_ADMIN is still held); when it is true,
set no_new_privs and load it as late as possible, just before ``execve``, so
the filter does not have to allow the runtime's own set-up syscalls.

The container init compiles before it forks (or the daemon hands it the bytes)
and only calls ``load_seccomp`` in the child: libseccomp is not needed there.
"""

from __future__ import annotations

import copy
import errno
import functools
import json
import os
import re
from importlib import resources

import pyseccomp

from engine.runtime import syscalls
from engine.runtime.capabilities import DEFAULT_CAPABILITIES, normalize_capabilities
from engine.runtime.lazylog import getLogger
from engine.runtime.seccomp_bpf import (
    FILTER_FLAGS,
    SeccompError,
    SeccompUnsupported,
    cached_program,
    filter_flags,
    remember,
    seccomp_cache_key,
)
from engine.runtime.seccomp_enosys import enosys_prologue

from .abcs import Callable, Mapping, Sequence

TYPE_CHECKING = False  # as typing's, without importing typing (~2 ms per berth-runtime call)
if TYPE_CHECKING:
    from typing import Any

log = getLogger(__name__)

PR_SET_NO_NEW_PRIVS = 38

# OCI action name -> libseccomp action value.  SCMP_ACT_KILL is libseccomp's
# "kill the thread" (which kills a single-threaded process with SIGSYS);
# KILL_PROCESS kills every thread.
_FIXED_ACTIONS: Mapping[str, int] = {
    "SCMP_ACT_KILL": pyseccomp.KILL,
    "SCMP_ACT_KILL_THREAD": pyseccomp.KILL_THREAD,
    "SCMP_ACT_KILL_PROCESS": pyseccomp.KILL_PROCESS,
    "SCMP_ACT_TRAP": pyseccomp.TRAP,
    "SCMP_ACT_ALLOW": pyseccomp.ALLOW,
    "SCMP_ACT_LOG": pyseccomp.LOG,
}
# Actions that carry a return value (runc: "errnoRet is only valid with SCMP_ACT_ERRNO and SCMP_ACT_TRACE").
_ACTIONS_WITH_RET: Mapping[str, Callable[[int], int]] = {
    "SCMP_ACT_ERRNO": pyseccomp.ERRNO,
    "SCMP_ACT_TRACE": pyseccomp.TRACE,
}

_OPERATORS: Mapping[str, int] = {
    "SCMP_CMP_NE": pyseccomp.NE,
    "SCMP_CMP_LT": pyseccomp.LT,
    "SCMP_CMP_LE": pyseccomp.LE,
    "SCMP_CMP_EQ": pyseccomp.EQ,
    "SCMP_CMP_GE": pyseccomp.GE,
    "SCMP_CMP_GT": pyseccomp.GT,
    "SCMP_CMP_MASKED_EQ": pyseccomp.MASKED_EQ,
}

_ARCHITECTURES: Mapping[str, int] = {
    "SCMP_ARCH_X86": pyseccomp.Arch.X86,
    "SCMP_ARCH_X86_64": pyseccomp.Arch.X86_64,
    "SCMP_ARCH_X32": pyseccomp.Arch.X32,
    "SCMP_ARCH_ARM": pyseccomp.Arch.ARM,
    "SCMP_ARCH_AARCH64": pyseccomp.Arch.AARCH64,
    "SCMP_ARCH_MIPS": pyseccomp.Arch.MIPS,
    "SCMP_ARCH_MIPS64": pyseccomp.Arch.MIPS64,
    "SCMP_ARCH_MIPS64N32": pyseccomp.Arch.MIPS64N32,
    "SCMP_ARCH_MIPSEL": pyseccomp.Arch.MIPSEL,
    "SCMP_ARCH_MIPSEL64": pyseccomp.Arch.MIPSEL64,
    "SCMP_ARCH_MIPSEL64N32": pyseccomp.Arch.MIPSEL64N32,
    "SCMP_ARCH_PPC": pyseccomp.Arch.PPC,
    "SCMP_ARCH_PPC64": pyseccomp.Arch.PPC64,
    "SCMP_ARCH_PPC64LE": pyseccomp.Arch.PPC64LE,
    "SCMP_ARCH_S390": pyseccomp.Arch.S390,
    "SCMP_ARCH_S390X": pyseccomp.Arch.S390X,
    "SCMP_ARCH_PARISC": pyseccomp.Arch.PARISC,
    "SCMP_ARCH_PARISC64": pyseccomp.Arch.PARISC64,
    "SCMP_ARCH_RISCV64": pyseccomp.Arch.RISCV64,
}

_MAX_ARGS = 6  # syscalls take at most six arguments
_BPF_MAXINSNS = 4096  # <linux/bpf_common.h>: the kernel rejects longer classic programs

# Docker profiles name architectures the way libseccomp-golang's ScmpArch.String()
# does (moby profiles/seccomp: nativeToSeccomp); accept uname/Python spellings too.
_ARCH_ALIASES: Mapping[str, str] = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "i386": "x86",
    "i686": "x86",
    "x86": "x86",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "arm": "arm",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}
_DOCKER_TO_SCMP_ARCH: Mapping[str, str] = {
    "x86": "SCMP_ARCH_X86",
    "amd64": "SCMP_ARCH_X86_64",
    "arm": "SCMP_ARCH_ARM",
    "arm64": "SCMP_ARCH_AARCH64",
    "ppc64le": "SCMP_ARCH_PPC64LE",
    "s390x": "SCMP_ARCH_S390X",
    "riscv64": "SCMP_ARCH_RISCV64",
}


# --- Docker profile -> OCI ---------------------------------------------------


def _docker_arch(arch: str) -> str:
    try:
        return _ARCH_ALIASES[arch.lower()]
    except KeyError:
        raise SeccompError(f"unknown architecture {arch!r}; known: {sorted(_ARCH_ALIASES)}") from None


def _kernel_version(release: str) -> tuple[int, int]:
    match = re.match(r"(\d+)\.(\d+)", release)
    if not match:
        raise SeccompError(f"cannot parse kernel version {release!r}")
    return int(match.group(1)), int(match.group(2))


def _includes_hold(
    includes: Mapping[str, Any] | None, arch: str, caps: frozenset[str], kernel: tuple[int, int]
) -> bool:
    """Every condition holds: architecture listed, all capabilities present, kernel >= minKernel."""
    includes = includes or {}
    arches = includes.get("arches") or []
    min_kernel = includes.get("minKernel")
    return (
        (not arches or arch in arches)
        and all(c in caps for c in normalize_capabilities(includes.get("caps") or []))
        and (not min_kernel or _kernel_version(min_kernel) <= kernel)
    )


def _excludes_hold(
    excludes: Mapping[str, Any] | None, arch: str, caps: frozenset[str], kernel: tuple[int, int]
) -> bool:
    """Any condition holds: architecture listed, any capability present, kernel >= minKernel."""
    excludes = excludes or {}
    min_kernel = excludes.get("minKernel")
    return (
        arch in (excludes.get("arches") or [])
        or any(c in caps for c in normalize_capabilities(excludes.get("caps") or []))
        or bool(min_kernel and _kernel_version(min_kernel) <= kernel)
    )


def docker_profile_to_oci(
    profile: Mapping[str, Any],
    capabilities: Sequence[str],
    arch: str = "x86_64",
    kernel: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Convert a Docker seccomp profile to OCI ``linux.seccomp`` for one container.

    Follows moby ``profiles/seccomp/seccomp_linux.go`` (setupSeccomp): keep the
    archMap entry of the native architecture plus its sub-architectures; keep a
    syscall rule only if its ``includes`` all hold (architecture listed, every
    capability in the container's set, kernel at least ``minKernel``) and no
    ``excludes`` holds (architecture listed, any capability in the set, kernel
    at least ``minKernel``).  ``capabilities`` is the container's bounding set.
    """
    goarch = _docker_arch(arch)
    host_kernel = kernel if kernel is not None else _kernel_version(os.uname().release)
    caps = frozenset(normalize_capabilities(capabilities))

    if profile.get("architectures") and profile.get("archMap"):
        raise SeccompError("a profile sets either 'architectures' or 'archMap', not both")
    architectures: list[str] = list(profile.get("architectures") or [])
    native = _DOCKER_TO_SCMP_ARCH.get(goarch)
    for entry in profile.get("archMap") or []:
        if entry.get("architecture") == native:
            architectures.append(entry["architecture"])
            architectures.extend(entry.get("subArchitectures") or [])

    out: dict[str, Any] = {"defaultAction": profile["defaultAction"]}
    for key in ("defaultErrnoRet", "flags", "listenerPath", "listenerMetadata"):
        if profile.get(key) is not None:
            out[key] = copy.deepcopy(profile[key])
    if architectures:
        out["architectures"] = architectures

    rules: list[dict[str, Any]] = []
    for call in profile.get("syscalls") or []:
        if call.get("name") and call.get("names"):
            raise SeccompError(f"syscall rule {call!r} sets both 'name' and 'names'")
        if not _includes_hold(call.get("includes"), goarch, caps, host_kernel):
            continue
        if _excludes_hold(call.get("excludes"), goarch, caps, host_kernel):
            continue
        rule: dict[str, Any] = {
            "names": list(call.get("names") or [call["name"]]),
            "action": call["action"],
        }
        if call.get("errnoRet") is not None:
            rule["errnoRet"] = call["errnoRet"]
        if call.get("args"):
            rule["args"] = copy.deepcopy(call["args"])
        rules.append(rule)
    out["syscalls"] = rules
    return out


@functools.cache
def _default_profile() -> Mapping[str, Any]:
    text = resources.files("engine.runtime.profiles").joinpath("seccomp-default.json").read_text()
    profile: Mapping[str, Any] = json.loads(text)
    return profile


def default_profile() -> dict[str, Any]:
    """Docker's default profile itself (Docker's format), a fresh copy the caller may change."""
    return copy.deepcopy(dict(_default_profile()))


def default_seccomp(
    capabilities: Sequence[str] = DEFAULT_CAPABILITIES,
    arch: str | None = None,
    kernel: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Docker's default profile (moby v28.5.2) as OCI ``linux.seccomp`` for these capabilities."""
    return docker_profile_to_oci(_default_profile(), capabilities, arch or os.uname().machine, kernel)


# --- OCI -> BPF ----------------------------------------------------------------


def _int_field(obj: Mapping[str, Any], key: str, default: int, where: str) -> int:
    value = obj.get(key, default)
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise SeccompError(f"{where}.{key} must be a non-negative integer, got {value!r}")
    return value


def _action(name: Any, ret: int | None, where: str) -> int:
    if name == "SCMP_ACT_NOTIFY":
        raise SeccompUnsupported(f"{where}: SCMP_ACT_NOTIFY (a user-space listener) is not supported by Berth")
    if name in _ACTIONS_WITH_RET:
        # runtime-spec config-linux.md#seccomp: errnoRet defaults to EPERM.
        return _ACTIONS_WITH_RET[name](errno.EPERM if ret is None else ret)
    if name not in _FIXED_ACTIONS:
        known = sorted([*_FIXED_ACTIONS, *_ACTIONS_WITH_RET])
        raise SeccompError(f"{where}: unknown seccomp action {name!r}; known: {known}")
    if ret is not None:
        raise SeccompError(f"{where}: errnoRet is only valid with SCMP_ACT_ERRNO and SCMP_ACT_TRACE")
    return _FIXED_ACTIONS[name]


def _conditions(args: Sequence[Mapping[str, Any]], where: str) -> list[tuple[int, pyseccomp.Arg]]:
    """(argument index, libseccomp condition) for each OCI ``args`` entry."""
    out = []
    for i, arg in enumerate(args):
        here = f"{where}.args[{i}]"
        index = _int_field(arg, "index", -1, here)
        if not 0 <= index < _MAX_ARGS:
            raise SeccompError(f"{here}.index must be 0..5, got {arg.get('index')!r}")
        op = arg.get("op")
        if not isinstance(op, str) or op not in _OPERATORS:
            raise SeccompError(f"{here}: unknown operator {op!r}; known: {sorted(_OPERATORS)}")
        value = _int_field(arg, "value", 0, here)
        value_two = _int_field(arg, "valueTwo", 0, here)
        # For SCMP_CMP_MASKED_EQ the OCI 'value' is the mask and 'valueTwo' the
        # value compared with (arg & value) == valueTwo, which is libseccomp's datum order too.
        out.append((index, pyseccomp.Arg(index, _OPERATORS[op], value, value_two)))
    return out


def _build_filter(seccomp: Mapping[str, Any]) -> tuple[pyseccomp.SyscallFilter, int, int]:
    """(libseccomp filter, default action value, highest native syscall number the config names)."""
    if not isinstance(seccomp, Mapping):
        raise SeccompError(f"linux.seccomp must be an object, got {type(seccomp).__name__}")
    if "defaultAction" not in seccomp:
        raise SeccompError("linux.seccomp.defaultAction is required")
    default_ret = seccomp.get("defaultErrnoRet")
    if default_ret is not None:
        default_ret = _int_field(seccomp, "defaultErrnoRet", errno.EPERM, "linux.seccomp")
    default_action = _action(seccomp["defaultAction"], default_ret, "linux.seccomp.defaultAction")
    filter_flags(seccomp.get("flags") or ())  # validated here so a bad spec fails before any fork

    filt = pyseccomp.SyscallFilter(default_action)
    for arch_name in seccomp.get("architectures") or []:
        if arch_name not in _ARCHITECTURES:
            raise SeccompError(f"unknown seccomp architecture {arch_name!r}; known: {sorted(_ARCHITECTURES)}")
        arch = _ARCHITECTURES[arch_name]
        if not filt.exist_arch(arch):
            try:
                filt.add_arch(arch)
            except OSError as exc:
                # libseccomp: EDOM when the architecture's endianness differs from the native one.
                raise SeccompError(
                    f"seccomp architecture {arch_name} cannot be filtered on this host: {exc.strerror}"
                ) from exc

    last_known = -1
    for i, call in enumerate(seccomp.get("syscalls") or []):
        where = f"linux.seccomp.syscalls[{i}]"
        names = call.get("names")
        if not names or not all(isinstance(n, str) and n for n in names):
            raise SeccompError(f"{where}.names must be a non-empty list of syscall names")
        ret = call.get("errnoRet")
        if ret is not None:
            ret = _int_field(call, "errnoRet", errno.EPERM, where)
        action = _action(call.get("action"), ret, where)
        conditions = _conditions(call.get("args") or [], where)
        numbers = {name: pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name) for name in names}
        last_known = max([last_known, *numbers.values()])
        if action == default_action:
            # libseccomp refuses (EACCES) a rule that repeats the default action;
            # runc ignores such rules the same way.
            log.debug("%s: action equals the default action, rule ignored", where)
            continue
        # libseccomp ANDs the conditions of one rule; two conditions on the same
        # argument could then never match, so runc adds one rule per condition
        # (an OR) in that case (libcontainer/seccomp/seccomp_linux.go: matchCall).
        indexes = [index for index, _ in conditions]
        args = [cond for _, cond in conditions]
        groups = [[c] for c in args] if len(set(indexes)) < len(indexes) else [args]
        for name in names:
            number = numbers[name]
            if number == -1:  # __NR_SCMP_ERROR: this libseccomp does not know the name
                log.debug("%s: syscall %r unknown to libseccomp, skipped (as runc does)", where, name)
                continue
            for group in groups:
                try:
                    filt.add_rule(action, number, *group)
                except OSError as exc:
                    raise SeccompError(f"{where}: cannot add rule for {name}: {exc.strerror}") from exc
    return filt, default_action, last_known


def _compile(seccomp: Mapping[str, Any]) -> bytes:
    filt, default_action, last_known = _build_filter(seccomp)
    program = _export(filt)
    # runc patchbpf: syscalls newer than the profile get ENOSYS, not the default
    # EPERM, so libc falls back to older calls.  Pointless when the default allows.
    if default_action not in (pyseccomp.ALLOW, pyseccomp.LOG) and last_known >= 0:
        program = enosys_prologue(pyseccomp.system_arch(), last_known) + program
    return program


def _export(filt: pyseccomp.SyscallFilter) -> bytes:
    fd = os.memfd_create("berth-seccomp", os.MFD_CLOEXEC)
    with open(fd, "w+b") as f:
        filt.export_bpf(f)
        f.seek(0)
        return f.read()


def compile_seccomp(seccomp: Mapping[str, Any], cache_dir: str | os.PathLike[str] | None = None) -> bytes:
    """Compile OCI ``linux.seccomp`` to a raw classic-BPF program (``struct sock_filter[]``).

    Unknown syscall names are skipped (logged at debug), as runc does, so one
    profile serves kernels and libseccomp versions of different ages.  Results
    are cached in memory and, with ``cache_dir``, on disk as ``<key>.bpf``
    (seccomp_bpf.py, which finds them without libseccomp's Python binding).
    """
    program = cached_program(seccomp, cache_dir)
    if program is not None:
        return program
    key = seccomp_cache_key(seccomp)
    program = _compile(seccomp)
    log.debug("compiled seccomp program %s: %d instructions", key[:12], len(program) // 8)
    if len(program) // 8 > _BPF_MAXINSNS:
        raise SeccompError(
            f"the seccomp program has {len(program) // 8} instructions; the kernel accepts {_BPF_MAXINSNS}"
        )
    remember(key, program, cache_dir)
    return program


def seccomp_features() -> dict[str, Any]:
    """The ``linux.seccomp`` section of runtime-spec features.md (``runc features``)."""
    return {
        "enabled": True,
        "actions": sorted([*_FIXED_ACTIONS, *_ACTIONS_WITH_RET]),
        "operators": sorted(_OPERATORS),
        "archs": sorted(_ARCHITECTURES),
        # runtime-spec names these four flags (NEW_LISTENER is implied by listenerPath).
        "knownFlags": sorted([*FILTER_FLAGS, "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]),
        "supportedFlags": sorted(FILTER_FLAGS),
    }


# --- loading --------------------------------------------------------------------


def set_no_new_privs() -> None:
    """prctl(PR_SET_NO_NEW_PRIVS, 1): lets an unprivileged process load a filter (and is inherited)."""
    syscalls.prctl(PR_SET_NO_NEW_PRIVS, 1)
