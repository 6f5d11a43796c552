"""Linux capabilities for a container's process (runtime-spec config.md#linux-process: ``capabilities``).

The OCI config lists five sets by name (``bounding``, ``effective``,
``permitted``, ``inheritable``, ``ambient``).  ``capability_sets`` turns them
into bit masks without touching the process (pure, testable anywhere); the
other functions apply them to the calling process and must run in the
container init, never in a long-lived Python process with threads.

Call order in the container init (the same as runc's
``libcontainer/init_linux.go:finalizeNamespace``):

1. ``drop_bounding_set(sets)`` while still root with a full effective set:
   ``PR_CAPBSET_DROP`` needs CAP_SETPCAP, which the process may not keep.
2. ``set_keep_capabilities(True)``, then setgroups/setgid/setuid to the
   container user, then ``set_keep_capabilities(False)``.  Without
   PR_SET_KEEPCAPS the kernel clears the permitted set when the last uid 0
   goes away; the ambient set is cleared by that transition whatever
   KEEPCAPS says, which is why ambient comes last.
3. ``apply_process_sets(sets)``: capset(2) of effective/permitted/inheritable,
   then ``PR_CAP_AMBIENT_RAISE`` for each ambient capability (the kernel
   requires an ambient capability to be both permitted and inheritable;
   others are skipped with a warning, as runc does).

``apply_capabilities(caps, change_user=...)`` runs exactly these steps; the
runtime passes its setgroups/setgid/setuid step as ``change_user``.  Seccomp
fits around this order as documented in ``engine.runtime.seccomp``.

After ``execve`` a root process gets permitted = bounding | inheritable
(its file sets count as full), a non-root process gets its ambient set as
effective and permitted (capabilities(7), "Transformation of capabilities
during execve()").
"""

from __future__ import annotations

from engine.runtime import syscalls
from engine.runtime.errors import InvalidSpec, SetupFailed
from engine.runtime.lazylog import getLogger

from .abcs import Callable, Iterable, Mapping, Sequence
from .record import record

log = getLogger(__name__)

# <linux/capability.h>, in kernel order: the index is the capability number.
_CAPABILITY_NAMES: tuple[str, ...] = (
    "CAP_CHOWN",  # 0
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",  # 5
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",  # 10
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",  # 15
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",  # 20
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",  # 25
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",  # 30
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",  # 35
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",  # 40
)

CAPABILITY_NAMES = _CAPABILITY_NAMES
CAPABILITIES: Mapping[str, int] = {name: number for number, name in enumerate(_CAPABILITY_NAMES)}
LAST_KNOWN_CAPABILITY = len(_CAPABILITY_NAMES) - 1

# moby oci/caps/defaults.go (DefaultCapabilities): the set `docker run` gives a
# container without --cap-add/--cap-drop/--privileged.  Its mask is 0xa80425fb.
DEFAULT_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)

# <linux/prctl.h>
PR_SET_KEEPCAPS = 8
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

_SET_NAMES = ("bounding", "effective", "permitted", "inheritable", "ambient")


class CapabilityError(InvalidSpec):
    """A capability name this runtime does not know, or a malformed capabilities object."""


class CapabilityApplyFailed(SetupFailed):
    """The kernel refused a capability change (the message says which step and which sets)."""


def parse_capability(name: str) -> int:
    """The number of a capability named like ``CAP_NET_RAW``.

    Case and the ``CAP_`` prefix are forgiven, as Docker's ``--cap-add`` does;
    anything else unknown raises ``CapabilityError``.
    """
    if not isinstance(name, str):
        raise CapabilityError(f"capability names are strings, got {name!r}")
    canonical = name.strip().upper()
    if not canonical.startswith("CAP_"):
        canonical = "CAP_" + canonical
    try:
        return CAPABILITIES[canonical]
    except KeyError:
        raise CapabilityError(
            f"unknown capability {name!r} (known: CAP_CHOWN .. CAP_CHECKPOINT_RESTORE, see capabilities(7))"
        ) from None


def capability_name(number: int) -> str:
    """The canonical name (``CAP_...``) of a capability number."""
    if not 0 <= number <= LAST_KNOWN_CAPABILITY:
        raise CapabilityError(f"unknown capability number {number}")
    return _CAPABILITY_NAMES[number]


def normalize_capabilities(names: Iterable[str]) -> tuple[str, ...]:
    """Canonical ``CAP_`` names, in order, duplicates removed; unknown names raise."""
    seen: dict[str, None] = {}
    for name in names:
        seen[capability_name(parse_capability(name))] = None
    return tuple(seen)


def capability_mask(names: Iterable[str]) -> int:
    """The bit mask of a list of capability names (as /proc/<pid>/status prints it)."""
    mask = 0
    for name in names:
        mask |= 1 << parse_capability(name)
    return mask


def names_from_mask(mask: int) -> tuple[str, ...]:
    """The names of the capabilities set in ``mask`` (bits above CAP_CHECKPOINT_RESTORE ignored)."""
    return tuple(name for number, name in enumerate(_CAPABILITY_NAMES) if mask >> number & 1)


_last_cap: int | None = None  # a kernel's value: read once per process (the init asked twice per container)


def last_supported_capability() -> int:
    """The highest capability number the running kernel knows (/proc/sys/kernel/cap_last_cap)."""
    global _last_cap
    if _last_cap is None:
        try:
            with open("/proc/sys/kernel/cap_last_cap", encoding="ascii") as f:
                _last_cap = int(f.read().strip())
        except (OSError, ValueError) as exc:
            log.debug("cannot read cap_last_cap (%s); assuming %d", exc, LAST_KNOWN_CAPABILITY)
            return LAST_KNOWN_CAPABILITY
    return _last_cap


@record(frozen=True)
class CapabilitySets:
    """The five sets as masks, restricted to capabilities this kernel supports."""

    bounding: int
    effective: int
    permitted: int
    inheritable: int
    ambient: int


def capability_sets(caps: Mapping[str, Sequence[str]] | None, last_cap: int | None = None) -> CapabilitySets:
    """Validate an OCI ``process.capabilities`` object and turn it into masks.

    A missing set is empty (runtime-spec: the sets are optional; an absent
    bounding set means every capability is dropped from it, as runc does).
    Capabilities known here but newer than the running kernel are skipped with
    a warning, like runc's ``capabilities.New`` ("unknown capability ... ignoring").
    """
    caps = caps or {}
    if not isinstance(caps, Mapping):
        raise CapabilityError(f"process.capabilities must be an object, got {type(caps).__name__}")
    unknown_sets = set(caps) - set(_SET_NAMES)
    if unknown_sets:
        raise CapabilityError(f"unknown capability set(s) {sorted(unknown_sets)}; expected {list(_SET_NAMES)}")
    last = last_supported_capability() if last_cap is None else last_cap
    supported = (1 << (last + 1)) - 1
    masks: dict[str, int] = {}
    for set_name in _SET_NAMES:
        names = caps.get(set_name) or ()
        if isinstance(names, str):
            raise CapabilityError(f"capabilities.{set_name} must be a list of names, got a string")
        mask = capability_mask(names)
        if mask & ~supported:
            log.warning(
                "kernel supports capabilities up to %d; ignoring %s in the %s set",
                last,
                ", ".join(names_from_mask(mask & ~supported)),
                set_name,
            )
        masks[set_name] = mask & supported
    return CapabilitySets(**masks)


def drop_bounding_set(sets: CapabilitySets, last_cap: int | None = None) -> None:
    """Step 1: drop every capability outside ``sets.bounding`` from the bounding set (irreversible)."""
    last = last_supported_capability() if last_cap is None else last_cap
    for number in range(last + 1):
        if sets.bounding >> number & 1:
            continue
        try:
            syscalls.prctl(PR_CAPBSET_DROP, number)
        except OSError as exc:
            raise CapabilityApplyFailed(
                f"dropping {capability_name(number)} from the bounding set: {exc.strerror} "
                "(needs CAP_SETPCAP: drop the bounding set before changing user)"
            ) from exc


def set_keep_capabilities(keep: bool) -> None:
    """Step 2 bracket: PR_SET_KEEPCAPS keeps the permitted set across setuid away from root."""
    syscalls.prctl(PR_SET_KEEPCAPS, 1 if keep else 0)


def apply_process_sets(sets: CapabilitySets) -> None:
    """Step 3: capset(2) effective/permitted/inheritable, then raise the ambient set."""
    try:
        syscalls.capset(sets.effective, sets.permitted, sets.inheritable)
    except OSError as exc:
        _, permitted, inheritable = syscalls.capget()
        raise CapabilityApplyFailed(
            f"capset: {exc.strerror}: asked effective={sets.effective:016x} permitted={sets.permitted:016x} "
            f"inheritable={sets.inheritable:016x}, have permitted={permitted:016x} "
            f"inheritable={inheritable:016x} (a set can only shrink; effective must be within permitted)"
        ) from exc
    # Start from a known-empty ambient set: a parent may have left some raised.
    syscalls.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    # The kernel refuses an ambient capability that is not both permitted and
    # inheritable.  runc skips those silently (`runc spec` lists ambient caps
    # but no inheritable set, and its containers start with CapAmb 0): do the
    # same, with a warning, so such configs run unchanged.
    raisable = sets.ambient & sets.permitted & sets.inheritable
    if sets.ambient & ~raisable:
        log.warning(
            "ambient %s not in both permitted and inheritable sets: not raised (as runc does)",
            ", ".join(names_from_mask(sets.ambient & ~raisable)),
        )
    for name in names_from_mask(raisable):
        try:
            syscalls.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAPABILITIES[name])
        except OSError as exc:
            raise CapabilityApplyFailed(f"raising ambient {name}: {exc.strerror}") from exc


def apply_capabilities(
    caps: Mapping[str, Sequence[str]] | None, change_user: Callable[[], None] | None = None
) -> None:
    """Apply OCI ``process.capabilities`` to the calling process in runc's order.

    ``change_user``, if given, is the runtime's setgroups/setgid/setuid step; it
    runs between the bounding-set drop and capset, with PR_SET_KEEPCAPS held.
    """
    sets = capability_sets(caps)
    drop_bounding_set(sets)
    if change_user is not None:
        set_keep_capabilities(True)
        change_user()
        set_keep_capabilities(False)
    apply_process_sets(sets)


def read_status_capabilities(pid: int | str = "self") -> dict[str, int]:
    """The Cap* lines of /proc/<pid>/status as masks: CapInh, CapPrm, CapEff, CapBnd, CapAmb."""
    result: dict[str, int] = {}
    with open(f"/proc/{pid}/status", encoding="utf-8") as f:
        lines = f.read().splitlines()
    for line in lines:
        if line.startswith("Cap"):
            key, _, value = line.partition(":")
            result[key] = int(value.strip(), 16)
    return result
