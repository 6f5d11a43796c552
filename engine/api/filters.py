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
