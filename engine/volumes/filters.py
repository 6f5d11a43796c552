"""`GET /volumes` and `POST /volumes/prune` filters, with moby's accepted keys and messages.

Filters arrive already decoded as ``{key: [values...]}`` (engine/api/filters.py).
Within one key the values are alternatives (OR), across keys all must hold (AND),
except `label`, where every term must match, as in moby's filters.MatchKVList.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from engine.volumes.errors import InvalidParameter
from engine.volumes.records import VolumeRecord

Filters = Mapping[str, Sequence[str]]

LIST_KEYS = frozenset({"name", "label", "dangling", "driver"})
PRUNE_KEYS = frozenset({"label", "label!", "all"})


def _check_keys(filters: Filters, allowed: frozenset[str]) -> None:
    for key in filters:
        if key not in allowed:
            raise InvalidParameter(f"invalid filter '{key}'")


def parse_bool(key: str, values: Sequence[str]) -> bool:
    """`dangling=true|1|false|0` (and `all=`); several values must agree."""
    seen = set()
    for value in values:
        lowered = value.lower()
        if lowered in ("true", "1"):
            seen.add(True)
        elif lowered in ("false", "0"):
            seen.add(False)
        else:
            raise InvalidParameter(f"invalid filter '{key}={value}'")
    if len(seen) > 1:
        raise InvalidParameter(f"invalid filter '{key}': conflicting values")
    return seen.pop() if seen else False


def _label_term_matches(term: str, labels: Mapping[str, str]) -> bool:
    key, eq, want = term.partition("=")
    return key in labels and (not eq or labels[key] == want)


def _name_matches(pattern: str, name: str) -> bool:
    """moby filters.Match: the term is an unanchored regular expression (so a plain word is a substring)."""
    try:
        return re.search(pattern, name) is not None
    except re.error:
        return False


def check_list(filters: Filters) -> None:
    """Refuse unknown keys and bad booleans even when there is no volume to match them against."""
    _check_keys(filters, LIST_KEYS)
    if "dangling" in filters:
        parse_bool("dangling", filters["dangling"])


def match_list(filters: Filters, record: VolumeRecord, in_use: bool) -> bool:
    names = filters.get("name", ())
    if names and not any(_name_matches(n, record.name) for n in names):
        return False
    drivers = filters.get("driver", ())
    if drivers and record.driver not in drivers:
        return False
    if not all(_label_term_matches(t, record.labels) for t in filters.get("label", ())):
        return False
    # dangling=true keeps the unused volumes, dangling=false the used ones.
    return "dangling" not in filters or parse_bool("dangling", filters["dangling"]) != in_use


def prune_all(filters: Filters) -> bool:
    _check_keys(filters, PRUNE_KEYS)
    return parse_bool("all", filters["all"]) if "all" in filters else False


def match_prune(filters: Filters, record: VolumeRecord) -> bool:
    """Labels only; `all` and in-use are the caller's business."""
    _check_keys(filters, PRUNE_KEYS)
    if not all(_label_term_matches(t, record.labels) for t in filters.get("label", ())):
        return False
    return not any(_label_term_matches(t, record.labels) for t in filters.get("label!", ()))
