"""JSON from the agent, read so that no input can crash or stall the worker.

opencode's events and API answers carry text the model wrote (tool arguments), so
they can hold anything: JSON nested deeper than the decoder's recursion limit,
integers longer than Python converts (kept as their digits), lone surrogates that
cannot be encoded again (a workflow signal carrying one would fail for ever). :func:`loads` always returns a
value that can be re-encoded, and says what it had to change; the stream then sends
such an ask to a person instead of judging it.
"""

from __future__ import annotations

import json
import re
from typing import Any

#: Deeper values are replaced by ``null``.
MAX_DEPTH = 64
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def loads(text: str) -> tuple[Any, str | None]:
    """Decode ``text``; returns the value and what was changed to read it (``None``: nothing).

    Raises:
        ValueError: ``text`` is not JSON at all.
    """
    problem: str | None = None

    def big_int(digits: str) -> int | str:
        """An integer longer than Python converts (``sys.get_int_max_str_digits``) stays its digits."""
        nonlocal problem
        try:
            return int(digits)
        except ValueError:
            problem = "holds a number too long to read"
            return digits

    try:
        # The common case at C speed; the decoder refuses integers over Python's digit limit
        # (ValueError) and deep nesting (RecursionError): only then read again with the guards.
        value = json.loads(text)
    except (ValueError, RecursionError):
        try:
            value = json.loads(text, parse_int=big_int)
        except RecursionError:
            value = json.loads(_clip(text), parse_int=big_int)
            problem = f"is nested more than {MAX_DEPTH} levels deep"
    if "\\u" in text and _SURROGATE_ESCAPE.search(text):
        value, changed = _scrub(value)
        if changed:
            problem = problem or "holds characters that are not valid Unicode"
    return value, problem


def _clip(text: str) -> str:
    """``text`` with every value nested deeper than :data:`MAX_DEPTH` replaced by ``null``."""
    out: list[str] = []
    depth, in_string, escaped, skipping = 0, False, False, 0
    for ch in text:
        if skipping:
            if in_string:
                escaped, in_string = (False, True) if escaped else (ch == "\\", ch != '"')
                continue
            if ch == '"':
                in_string = True
            elif ch in "[{":
                skipping += 1
            elif ch in "]}":
                skipping -= 1
                if skipping == 0:
                    out.append("null")
                    depth -= 1
            continue
        if in_string:
            out.append(ch)
            escaped, in_string = (False, True) if escaped else (ch == "\\", ch != '"')
            continue
        if ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                skipping = 1
                continue
        elif ch in "]}":
            depth -= 1
        out.append(ch)
    return "".join(out)


def _scrub(value: Any) -> tuple[Any, bool]:
    """Replace lone surrogates in every string (keys too) with U+FFFD."""
    if isinstance(value, str):
        fixed = _SURROGATE.sub("\ufffd", value)
        return fixed, fixed != value
    if isinstance(value, list):
        pairs = [_scrub(v) for v in value]
        return [v for v, _ in pairs], any(c for _, c in pairs)
    if isinstance(value, dict):
        changed = False
        out: dict[Any, Any] = {}
        for key, item in value.items():
            new_key, key_changed = _scrub(key)
            new_item, item_changed = _scrub(item)
            out[new_key] = new_item
            changed = changed or key_changed or item_changed
        return out, changed
    return value, False
