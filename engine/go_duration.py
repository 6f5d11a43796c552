"""Go's time.ParseDuration, which HEALTHCHECK --interval/--timeout/... use ("1m30s", "1.5h", "300ms")."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}
_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text: str) -> int:
    """Nanoseconds for a Go duration string; ValueError with Go's wording when it is not one."""
    rest = text
    sign = 1
    if rest[:1] in ("+", "-"):
        sign = -1 if rest[0] == "-" else 1
        rest = rest[1:]
    if rest == "0":
        return 0
    if not rest:
        raise ValueError(f'time: invalid duration "{text}"')
    total = Decimal(0)
    while rest:
        match = _PART.match(rest)
        if match is None:
            if re.match(r"(\d+\.?\d*|\.\d+)", rest) and not re.match(r"(\d+\.?\d*|\.\d+)[a-zµμ]", rest):
                raise ValueError(f'time: missing unit in duration "{text}"')
            raise ValueError(f'time: invalid duration "{text}"')
        try:
            total += Decimal(match.group(1)) * _UNITS[match.group(2)]
        except InvalidOperation as exc:
            raise ValueError(f'time: invalid duration "{text}"') from exc
        rest = rest[match.end() :]
    return sign * int(total)
