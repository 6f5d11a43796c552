"""json.loads/json.dumps for the runtime's run path, from the C accelerator ``_json`` alone.

`import json` imports ``re`` (json.decoder's and json.scanner's patterns) and through it ``enum``:
~2-3 ms of every berth-runtime call, which reads config.json and state.json and writes both.  These
are the scanner and encoder json itself uses (``_json.make_scanner``/``make_encoder`` with
JSONDecoder's and JSONEncoder's defaults), so the objects and bytes are the same; only the
whitespace around the top-level value is skipped here instead of by a regex.  Errors are
json.JSONDecodeError (a ValueError) as with json; the json package is imported only to raise one.
"""

from __future__ import annotations

import _json

TYPE_CHECKING = False  # as typing's, without importing typing (~2 ms per berth-runtime call)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

_WHITESPACE = " \t\n\r"  # json.decoder.WHITESPACE's characters
_CONSTANTS = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}


class _DecoderDefaults:
    """The attributes _json.make_scanner reads from a json.JSONDecoder(), with its defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__
    memo: dict[str, str] = {}


_scan: Callable[[str, int], tuple[Any, int]] = _json.make_scanner(_DecoderDefaults())  # type: ignore[arg-type]


def _decode_error(message: str, text: str, pos: int) -> ValueError:
    from json import JSONDecodeError

    return JSONDecodeError(message, text, pos)


def loads(data: str | bytes) -> Any:
    """json.loads for UTF-8 input (the runtime writes and reads nothing else)."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    if text.startswith("\ufeff"):
        raise _decode_error("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        obj, end = _scan(text, start)
    except StopIteration as err:
        raise _decode_error("Expecting value", text, err.value) from None
    after = len(text) - len(text[end:].lstrip(_WHITESPACE))
    if after != len(text):
        raise _decode_error("Extra data", text, after)
    return obj


def _not_serializable(o: object) -> object:
    raise TypeError(f"Object of type {o.__class__.__name__} is not JSON serializable")


def dumps(obj: object, *, sort_keys: bool = False, separators: tuple[str, str] = (", ", ": ")) -> str:
    """json.dumps(obj, sort_keys=..., separators=...) with json's other defaults (ensure_ascii, no indent)."""
    item_separator, key_separator = separators
    encode = _json.make_encoder(
        {}, _not_serializable, _json.encode_basestring_ascii, None,
        key_separator, item_separator, sort_keys, False, True,
    )
    return "".join(encode(obj, 0))
