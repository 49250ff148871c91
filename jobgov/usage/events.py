"""Reading recorded opencode event streams, one line at a time.

A recorded stream may hold SSE ``data: {...}`` lines, bare JSON lines (as in
jobgov's captures of ``GET /event``), or ``/global/event`` frames that wrap
the event as ``{"directory", "project", "payload": {...}}``. Every form
yields the same inner event ``{"id", "type", "properties"}``.

Lines that carry nothing for usage accounting on purpose (blank lines, SSE
field and comment lines, ``/global/event`` ``sync`` duplicates and the
high-volume ``message.part.delta`` text chunks) parse to ``None``. Lines that
are broken raise a specific :class:`EventParseError`; :func:`read_events`
turns those into a count and a warning so that one bad line never stops a
replay. Event *types* are not checked here: an event type jobgov does not
know is passed on and ignored by its consumers, so that a newer opencode
does not break an older jobgov.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

#: One opencode event: ``{"id": "evt_…", "type": "…", "properties": {…}}``.
Event = dict[str, Any]

#: Event types dropped while parsing: text chunks, many per step, no usage.
DROPPED_TYPES = frozenset({"message.part.delta"})

#: SSE fields other than ``data`` carry nothing jobgov uses.
_SSE_FIELDS = ("event:", "id:", "retry:")


class EventParseError(ValueError):
    """A stream line that cannot be used as an event."""


class MalformedLineError(EventParseError):
    """The line is not valid JSON."""


class UnknownShapeError(EventParseError):
    """The line is JSON but neither an event nor a ``/global/event`` frame."""


def parse_line(line: str) -> Event | None:
    """Parse one recorded stream line into its inner event.

    Args:
        line: A ``data: {...}`` line, a bare JSON line or a ``/global/event``
            frame, with or without its trailing newline.

    Returns:
        The inner event dict, or ``None`` for a line that carries nothing on
        purpose: blank, an SSE comment or non-data field, a ``sync``
        duplicate, or a dropped type (``message.part.delta``).

    Raises:
        MalformedLineError: The line (after any ``data:`` prefix) is not JSON.
        UnknownShapeError: The JSON is not an event or a wrapped event.
    """
    text = line.strip()
    if not text or text.startswith(":") or text.startswith(_SSE_FIELDS):
        return None
    if text.startswith("data:"):
        text = text.removeprefix("data:").strip()
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedLineError(f"invalid JSON: {exc.msg} (column {exc.colno})") from None
    return _inner_event(data)


def _inner_event(data: Any) -> Event | None:
    if not isinstance(data, dict):
        raise UnknownShapeError(f"expected a JSON object, got {type(data).__name__}")
    if "payload" in data and "type" not in data:
        # A /global/event frame; its payload is the event itself.
        data = data["payload"]
        if not isinstance(data, dict):
            raise UnknownShapeError("global frame: payload is not an object")
        if data.get("type") == "sync":
            # The durable-event duplicate of an event this stream also carries.
            return None
    event_type = data.get("type")
    if not isinstance(event_type, str) or not event_type:
        raise UnknownShapeError("no event type")
    properties = data.get("properties", {})
    if not isinstance(properties, dict):
        raise UnknownShapeError(f"{event_type}: properties is not an object")
    if event_type in DROPPED_TYPES:
        return None
    return data


def read_events(lines: Iterable[str]) -> tuple[list[Event], int, list[str]]:
    """Parse a recorded stream, skipping what cannot be used.

    Args:
        lines: The stream's lines, e.g. an open text file.

    Returns:
        ``(events, skipped, warnings)``: the usable events in stream order,
        how many lines were skipped as malformed or of an unknown shape, and
        one warning per skipped line (``"line N: reason"``). Lines dropped on
        purpose (see :func:`parse_line`) are neither counted nor warned about.
    """
    events: list[Event] = []
    warnings: list[str] = []
    for number, line in enumerate(lines, start=1):
        try:
            event = parse_line(line)
        except EventParseError as exc:
            warnings.append(f"line {number}: {exc}")
            continue
        if event is not None:
            events.append(event)
    return events, len(warnings), warnings
