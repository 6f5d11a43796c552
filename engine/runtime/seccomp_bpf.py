"""Compiled seccomp programs: the cache and loading, without libseccomp's Python binding.

seccomp.py compiles OCI ``linux.seccomp`` with pyseccomp, whose import alone
(``ctypes.util.find_library`` runs ``ldconfig -p``) is ~20-30 ms; a program
already compiled needs none of it.  This module finds one — in memory, or
on disk as ``<cache_dir>/<key>.bpf`` where the key is a hash of the canonical
JSON and of the libseccomp that compiles — and loads one with seccomp(2).
``program_for`` imports the compiler only on a miss, so a `berth-runtime run`
of a profile it has run before, and the container init, never import it.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import hashlib
import os
from collections import OrderedDict

from engine.runtime import fastjson, syscalls
from engine.runtime.errors import InvalidSpec, SetupFailed, Unsupported
from engine.runtime.lazylog import getLogger

from .abcs import Mapping, Sequence

TYPE_CHECKING = False  # as typing's, without importing typing (~2 ms per berth-runtime call)
if TYPE_CHECKING:
    from typing import Any

log = getLogger(__name__)

_LIBSECCOMP = "libseccomp.so.2"
_BPF_INSN_SIZE = 8  # struct sock_filter

# <linux/seccomp.h> filter flags named by runtime-spec config-linux.md#seccomp.
FILTER_FLAGS: Mapping[str, int] = {
    "SECCOMP_FILTER_FLAG_TSYNC": 1,
    "SECCOMP_FILTER_FLAG_LOG": 2,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4,
}
# Only meaningful with a user-space listener (SCMP_ACT_NOTIFY), which Berth does not implement.
_LISTENER_FLAGS = frozenset({"SECCOMP_FILTER_FLAG_NEW_LISTENER", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"})


class SeccompError(InvalidSpec):
    """A malformed ``linux.seccomp`` object or Docker profile."""


class SeccompUnsupported(Unsupported):
    """A seccomp feature Berth does not implement (SCMP_ACT_NOTIFY and its listener flags)."""


class SeccompLoadFailed(SetupFailed):
    """The kernel refused to install a filter."""


def filter_flags(names: Sequence[str]) -> int:
    """The seccomp(2) flag bits for OCI ``linux.seccomp.flags``."""
    bits = 0
    for name in names:
        if name in _LISTENER_FLAGS:
            raise SeccompUnsupported(f"seccomp flag {name} needs a listener (SCMP_ACT_NOTIFY), not supported")
        if name not in FILTER_FLAGS:
            raise SeccompError(f"unknown seccomp flag {name!r}; known: {sorted(FILTER_FLAGS)}")
        bits |= FILTER_FLAGS[name]
    return bits


@functools.cache
def _library_fingerprint() -> str:
    """Which libseccomp (and so which syscall table) compiles a program: part of the cache key.

    Its real path and API level, as pyseccomp would load it (``find_library("seccomp")`` is
    ``libseccomp.so.2``), read without importing pyseccomp: find_library runs ``ldconfig -p``
    (~20 ms), and a cached program needs no compiler.
    """
    try:
        lib = ctypes.CDLL(_LIBSECCOMP)
    except OSError:
        import pyseccomp  # no libseccomp by that name: let the binding find one, or fail as it always did

        return f"pyseccomp {pyseccomp.__version__} api={pyseccomp.get_api()}"
    api = int(lib.seccomp_api_get())
    try:
        with open("/proc/self/maps", encoding="utf-8") as f:
            for line in f:
                if "libseccomp" in line:
                    return os.path.realpath(line.split()[-1]) + f" api={api}"
    except OSError as exc:
        log.debug("cannot read /proc/self/maps: %s", exc)
    return f"{_LIBSECCOMP} api={api}"


def seccomp_cache_key(seccomp: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of ``seccomp`` and the libseccomp that compiles it."""
    canonical = fastjson.dumps(seccomp, sort_keys=True, separators=(",", ":"))
    material = f"{_PROGRAM_FORMAT}\0{canonical}\0{_library_fingerprint()}"
    return hashlib.sha256(material.encode()).hexdigest()


_PROGRAM_FORMAT = "berth-seccomp-bpf/2"  # bump when _compile's output changes for the same input
_MEMORY_CACHE_SIZE = 64
_memory_cache: OrderedDict[str, bytes] = OrderedDict()


def clear_memory_cache() -> None:
    _memory_cache.clear()


def _read_cached(path: str) -> bytes | None:
    """A cached program, trusted only if no one but us could have written it (a planted filter
    would weaken every container that uses the profile)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("ignoring cached seccomp program %s: %s", path, exc)
        return None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if st.st_uid != os.geteuid() or st.st_mode & 0o022:
            log.warning("ignoring cached seccomp program %s: not owned by us or writable by others", path)
            return None
        return f.read()


def _write_cached(path: str, program: bytes) -> None:
    """Write atomically (concurrent compilers write identical bytes), private to us."""
    directory, name = os.path.split(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    tmp = os.path.join(directory, f".{name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(program)
    os.replace(tmp, path)


def cached_program(seccomp: Mapping[str, Any], cache_dir: str | os.PathLike[str] | None = None) -> bytes | None:
    """The compiled program for ``seccomp`` from the memory cache or ``cache_dir``, or None."""
    key = seccomp_cache_key(seccomp)
    cached = _memory_cache.get(key)
    if cached is not None:
        _memory_cache.move_to_end(key)
        return cached
    if cache_dir is None:
        return None
    path = os.path.join(cache_dir, f"{key}.bpf")
    program = _read_cached(path)
    if program is not None and (not program or len(program) % _BPF_INSN_SIZE):
        log.warning("ignoring corrupt cached seccomp program %s", path)
        return None
    if program is not None:
        _remember_in_memory(key, program)
    return program


def remember(key: str, program: bytes, cache_dir: str | os.PathLike[str] | None = None) -> None:
    """Keep a freshly compiled program in memory and, with ``cache_dir``, on disk."""
    if cache_dir is not None:
        _write_cached(os.path.join(cache_dir, f"{key}.bpf"), program)
    _remember_in_memory(key, program)


def _remember_in_memory(key: str, program: bytes) -> None:
    _memory_cache[key] = program
    while len(_memory_cache) > _MEMORY_CACHE_SIZE:
        _memory_cache.popitem(last=False)


def program_for(seccomp: Mapping[str, Any], cache_dir: str | os.PathLike[str] | None = None) -> bytes:
    """The compiled program for ``seccomp``: cached, else compiled (and cached) by seccomp.py."""
    program = cached_program(seccomp, cache_dir)
    if program is not None:
        return program
    from engine.runtime.seccomp import compile_seccomp

    return compile_seccomp(seccomp, cache_dir)


def load_seccomp(bpf: bytes, flags: Sequence[str] = ()) -> None:
    """Install ``bpf`` (from ``compile_seccomp``) in the calling process; it applies to every later exec.

    Needs no_new_privs or CAP_SYS_ADMIN (see the module docstring for where
    the container init calls this).  ``flags`` are OCI ``linux.seccomp.flags``.
    """
    bits = filter_flags(flags)
    try:
        syscalls.seccomp_set_mode_filter(bpf, bits)
    except ValueError as exc:
        raise SeccompLoadFailed(str(exc)) from exc
    except OSError as exc:
        hint = ""
        if exc.errno == errno.EACCES:
            hint = " (set no_new_privs or keep CAP_SYS_ADMIN until the filter is loaded)"
        elif exc.errno == errno.EINVAL:
            hint = f" (flags {list(flags)} unsupported by this kernel, or a malformed program)"
        raise SeccompLoadFailed(f"loading the seccomp filter: {exc.strerror}{hint}") from exc
