"""What client text and metadata may contain before it reaches Postgres or a log line.

Postgres refuses NUL in `text` and `jsonb`, UTF-8 cannot encode a lone surrogate, and `jsonb` has no
Infinity: each would fail deep inside a query as a 500. Control characters in a filename also reach
terminals and logs. These checks raise `ValueError` with a sentence a person can act on; pydantic turns
it into a 422, and the proxied upload (which parses its form by hand) into an `AppError` 422.
"""

from __future__ import annotations

import json
import math
import unicodedata
from typing import Any

# Metadata is stored on every document and returned with every search hit: labels, not content.
MAX_METADATA_BYTES = 16 * 1024
MAX_METADATA_DEPTH = 5
_WHITESPACE_CONTROLS = frozenset("\t\n\r")


def _refused(value: str, *, allow_whitespace: bool) -> str | None:
    """The first character text may not contain, or None."""
    for char in value:
        if allow_whitespace and char in _WHITESPACE_CONTROLS:
            continue
        if unicodedata.category(char) in ("Cc", "Cs"):
            return char
    return None


def check_name(value: str) -> str:
    """A filename or other one-line name: no control characters at all (tab and newline included)."""
    char = _refused(value, allow_whitespace=False)
    if char is not None:
        raise ValueError(f"must not contain control characters (found U+{ord(char):04X})")
    return value


def check_text(value: str) -> str:
    """Free text: tab, newline and carriage return allowed, other control characters not."""
    char = _refused(value, allow_whitespace=True)
    if char is not None:
        raise ValueError(f"must not contain control characters (found U+{ord(char):04X})")
    return value


def check_metadata(value: dict[str, Any]) -> dict[str, Any]:
    """A metadata object: at most MAX_METADATA_DEPTH levels deep and MAX_METADATA_BYTES as JSON,
    keys without control characters, strings with only whitespace controls, numbers finite."""
    _check_value(value, depth=1)
    size = len(json.dumps(value, ensure_ascii=False).encode())
    if size > MAX_METADATA_BYTES:
        raise ValueError(f"is {size} bytes as JSON; at most {MAX_METADATA_BYTES} are accepted")
    return value


def _check_value(value: Any, *, depth: int) -> None:
    if isinstance(value, dict | list) and depth > MAX_METADATA_DEPTH:
        raise ValueError(f"is nested more than {MAX_METADATA_DEPTH} levels deep")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError("keys must be strings")
            check_name(key)
            _check_value(item, depth=depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_value(item, depth=depth + 1)
    elif isinstance(value, str):
        check_text(value)
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError("numbers must be finite")
