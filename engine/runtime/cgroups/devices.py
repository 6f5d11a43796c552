"""OCI device cgroup rules (runtime-spec config-linux.md#allowed-device-list).

A rule is ``{"allow": bool, "type": "a"|"c"|"b", "major": int, "minor": int,
"access": "rwm"}``; absent or -1 major/minor mean every number, absent type
means "a", absent access means "rwm".  v1 takes them as lines written to
devices.allow / devices.deny in order (Documentation/admin-guide/cgroup-v1/
devices.rst); v2 has no files and needs an eBPF program (devices_bpf.py).
"""

from __future__ import annotations

from engine.runtime.abcs import Mapping, Sequence
from engine.runtime.cgroups.errors import InvalidResources
from engine.runtime.record import record

TYPE_CHECKING = False  # as typing's, without importing typing (~2 ms per berth-runtime call)
if TYPE_CHECKING:
    from typing import Any


@record(frozen=True)
class DeviceRule:
    allow: bool
    type: str  # "a", "c" or "b"
    major: int | None  # None: any
    minor: int | None  # None: any
    access: str  # subset of "rwm", in that order

    def v1_line(self) -> str:
        """The line for devices.allow/devices.deny."""
        if self.type == "a":
            # "a" means every device with every access; the kernel ignores the rest.
            return "a *:* rwm"
        major = "*" if self.major is None else str(self.major)
        minor = "*" if self.minor is None else str(self.minor)
        return f"{self.type} {major}:{minor} {self.access}"


def _number(value: Any, what: str) -> int | None:
    if value is None or value == -1:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidResources(f"device rule {what} must be a non-negative integer, got {value!r}")
    return value


def parse_rule(raw: Mapping[str, Any]) -> DeviceRule:
    allow = raw.get("allow")
    if not isinstance(allow, bool):
        raise InvalidResources(f"device rule needs a boolean 'allow': {dict(raw)!r}")
    type_ = raw.get("type") or "a"
    if type_ not in ("a", "c", "b"):
        raise InvalidResources(f"device rule type must be a, c or b: {type_!r}")
    access = raw.get("access") or "rwm"
    if not isinstance(access, str) or not access or set(access) - set("rwm"):
        raise InvalidResources(f"device rule access must be letters of 'rwm': {access!r}")
    access = "".join(c for c in "rwm" if c in access)
    return DeviceRule(allow, type_, _number(raw.get("major"), "major"), _number(raw.get("minor"), "minor"), access)


def parse_rules(raw: Sequence[Mapping[str, Any]] | None) -> list[DeviceRule]:
    return [parse_rule(r) for r in raw or []]
