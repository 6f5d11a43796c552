"""JSON text the way the CLI prints it, without the json package (it imports re and enum: ~5 ms of start-up).

`dumps` writes what json.dumps writes for decoded API data (dict, list, str,
int, float, bool, None), compact (`separators=(",", ":")`) or indented
(`indent=N`, json's default `": "`), with json's own C string escapers.
tests/cli/test_fast_path.py checks it against json.dumps.  `go_json` then
escapes <, > and & as Go's encoding/json does.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's (see engine/cli/rows.py)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


def go_json(text: str) -> str:
    """Go's encoding/json escapes <, > and & (inside strings, the only place JSON text can hold them)."""
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def dumps(value: Any, indent: int | None = None, ensure_ascii: bool = True) -> str:
    """json.dumps(value, indent=indent, ensure_ascii=ensure_ascii), compact (",", ":") when indent is None."""
    import _json

    quote = _json.encode_basestring_ascii if ensure_ascii else _json.encode_basestring
    out: list[str] = []
    _write(value, quote, indent, 0, out)
    return "".join(out)


def _scalar(value: Any) -> str | None:
    """json's text for a scalar (its floatstr for floats), or None for a container."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        import math

        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return float.__repr__(value)
    return None


def _write(value: Any, quote: Callable[[str], str], indent: int | None, level: int, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(quote(value))
        return
    text = _scalar(value)
    if text is not None:
        out.append(text)
        return
    if isinstance(value, dict):
        items: list[tuple[Any, Any]] = list(value.items())
        opening, closing = "{", "}"
    elif isinstance(value, list | tuple):
        items = [(None, item) for item in value]
        opening, closing = "[", "]"
    else:
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
    if not items:
        out.append(opening + closing)
        return
    if indent is None:
        separator, key_separator, ending = ",", ":", closing
    else:
        separator = ",\n" + " " * (indent * (level + 1))
        key_separator, ending = ": ", "\n" + " " * (indent * level) + closing
    out.append(opening if indent is None else opening + separator[1:])
    for n, (key, item) in enumerate(items):
        if n:
            out.append(separator)
        if opening == "{":
            # json turns the scalar keys it accepts into strings (a decoded body only has str keys).
            out.append(quote(key if isinstance(key, str) else _scalar(key) or str(key)))
            out.append(key_separator)
        _write(item, quote, indent, level + 1, out)
    out.append(ending)
