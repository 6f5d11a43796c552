"""Docker's `filters` query parameter: JSON `map[string][]string`.

Older clients send `map[string]map[string]bool` (`{"label": {"a=b": true}}`);
both are accepted, like moby's filters.FromJSON.
"""

from __future__ import annotations

import json

from engine.api.errors import InvalidParameter

Filters = dict[str, list[str]]


def parse_filters(raw: str | None, allowed: set[str] | None = None) -> Filters:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidParameter(f"invalid filter: {exc}") from exc
    if not isinstance(value, dict):
        raise InvalidParameter("invalid filter: want a JSON object")
    result: Filters = {}
    for key, terms in value.items():
        if isinstance(terms, dict):
            result[key] = [t for t, on in terms.items() if on]
        elif isinstance(terms, list) and all(isinstance(t, str) for t in terms):
            result[key] = list(terms)
        else:
            raise InvalidParameter(f"invalid filter '{key}': want a list of strings")
        if allowed is not None and key not in allowed:
            raise InvalidParameter(f"invalid filter '{key}'")
    return result


def match_labels(filters: Filters, labels: dict[str, str]) -> bool:
    """`label=key` (present) and `label=key=value` (equal); every term must match."""
    for term in filters.get("label", []):
        key, eq, want = term.partition("=")
        if key not in labels or (eq and labels[key] != want):
            return False
    return True


def prune_keeps(filters: Filters, created: str, labels: dict[str, str]) -> bool:
    """dockerd's prune filters: ``until`` (created at or after it: kept), ``label`` and ``label!``."""
    from engine.api.events import parse_timestamp

    cutoffs = [until_ns(value) for value in filters.get("until", [])]
    if cutoffs and not (parse_timestamp(created) or 0) < min(cutoffs):
        return True
    if not match_labels({"label": filters.get("label", [])}, labels):
        return True
    unwanted = filters.get("label!", [])
    return bool(unwanted) and match_labels({"label": unwanted}, labels)


def until_ns(value: str, now_ns: int | None = None) -> int:
    """A prune ``until``: a Go duration ("24h": that long ago), Unix seconds or RFC 3339 (timetypes.GetTimestamp)."""
    import time

    from engine.api.events import parse_timestamp
    from engine.go_duration import parse_duration

    try:
        ago = parse_duration(value)
    except ValueError:
        stamp = parse_timestamp(value)
        if stamp is None:
            raise InvalidParameter("invalid filter 'until': it must not be empty") from None
        return stamp
    return (now_ns if now_ns is not None else time.time_ns()) - ago
