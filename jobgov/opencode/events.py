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
from collections.abc import Iterable, Iterator
from typing import Any, Final

from pydantic import ValidationError

from jobgov.domain.asks import PermissionAsk
from jobgov.domain.items import RepliedItem, SessionItem
from jobgov.opencode import jsonsafe

#: One opencode event: ``{"id": "evt_…", "type": "…", "properties": {…}}``.
Event = dict[str, Any]

#: The key jobgov adds to an event (or a listed ask) it could only read by changing it (too deeply
#: nested, a number too long, invalid characters): such an ask goes to a person.
PROBLEM_KEY = "jobgov_problem"

#: Event types dropped while parsing, because jobgov reads nothing in them: text chunks (many per
#: step, no usage), the session's info and file diffs, plugins and files. Together they were 32 %
#: of the frames of the captured opencode streams (the session's info alone 14 %, its largest). A
#: type not listed is read, whatever it is: a new one of a later opencode may matter.
DROPPED_TYPES = frozenset({"message.part.delta", "session.updated", "session.diff", "plugin.added",
                           "file.edited", "file.watcher.updated"})

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
        data, problem = jsonsafe.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedLineError(f"invalid JSON: {exc.msg} (column {exc.colno})") from None
    event = _inner_event(data)
    if event is not None and problem is not None:
        event[PROBLEM_KEY] = problem
    return event


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


#: Tool states after which a tool no longer waits for a permission (an abort ends it as "error").
DONE_TOOL_STATES: Final = frozenset({"completed", "error"})


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def session_of(event: Event) -> str | None:
    """The session an event belongs to, if any (file and server events have none)."""
    props = _dict(event.get("properties"))
    for holder in (props, _dict(props.get("info")), _dict(props.get("part"))):
        if isinstance(holder.get("sessionID"), str):
            return str(holder["sessionID"])
    return None


def ends_run(event: Event) -> bool:
    """``session.idle``, ``session.error`` or an idle ``session.status``: the run is over.

    Asks still pending then were left behind and must never be approved (finding 3).
    """
    kind = event.get("type")
    if kind in ("session.idle", "session.error"):
        return True
    return kind == "session.status" and _dict(_dict(event.get("properties")).get("status")).get("type") == "idle"


def status_item(status: Any) -> SessionItem | None:
    """A ``SessionStatus`` object (``{"type": "busy" | "retry" | "idle", …}``) as an item."""
    status = _dict(status)
    kind = status.get("type")
    if kind in ("busy", "idle"):
        return SessionItem(status=kind)
    if kind == "retry":
        message = status.get("message")
        return SessionItem(status="retry", message=message if isinstance(message, str) else None)
    return None


def unfinished_run(messages: list[dict[str, Any]]) -> str | None:
    """Why the session's last run ended with its work unfinished, from ``GET /session/{id}/message``;
    ``None`` when it finished (the model's last step ended with ``stop``), or when a rejection or an
    error ended it (those have their own events), or when there is nothing to tell.
    """
    assistants = [m for m in messages if _dict(m.get("info")).get("role") == "assistant"]
    if not assistants:
        return None
    info, parts = _dict(assistants[-1].get("info")), assistants[-1].get("parts")
    error = _dict(info.get("error")).get("name")
    if error == "MessageAbortedError":
        return "the run was aborted"
    if error is not None:
        return None  # an agent error: session.error reports it, and the job fails
    if not _dict(info.get("time")).get("completed"):
        return "the agent's last step never completed (the agent restarted, or lost its model mid-step)"
    if info.get("finish") == "tool-calls":
        tools = [_dict(p) for p in parts if _dict(p).get("type") == "tool"] if isinstance(parts, list) else []
        states = {_dict(t.get("state")).get("status") for t in tools}
        if tools and states <= {"completed"}:
            return "the run stopped after its tools ran, before the model answered"
    return None


def session_item(event: Event) -> SessionItem | None:
    """The item for ``session.status``, ``session.idle`` and ``session.error``; else ``None``."""
    kind, props = event.get("type"), _dict(event.get("properties"))
    if kind == "session.status":
        return status_item(props.get("status"))
    if kind == "session.idle":
        return SessionItem(status="idle")
    if kind == "session.error":
        error = _dict(props.get("error"))
        name = error.get("name")
        if name == "MessageAbortedError":
            return SessionItem(status="aborted")
        message = _dict(error.get("data")).get("message") or name or "unknown error"
        return SessionItem(status="error", message=str(message))
    return None


def replied_item(event: Event) -> RepliedItem:
    """A ``permission.replied`` event as an item."""
    props = _dict(event.get("properties"))
    return RepliedItem(request_id=str(props.get("requestID")), reply=str(props.get("reply")))


def tool_part(event: Event) -> tuple[str, str | None, str | None] | None:
    """``(callID, tool, state status)`` of a tool part update; ``None`` for anything else."""
    part = _dict(_dict(event.get("properties")).get("part"))
    call = part.get("callID")
    if part.get("type") != "tool" or not isinstance(call, str):
        return None
    tool, status = part.get("tool"), _dict(part.get("state")).get("status")
    return call, tool if isinstance(tool, str) else None, status if isinstance(status, str) else None


class ToolNames:
    """Tool names by call id, learned from tool part updates.

    A ``permission.asked`` names only its tool *call*; the tool's name (which decides,
    e.g., whether an ``external_directory`` ask comes from a file tool) is in the
    call's part updates, which the stream and recorded streams carry first.
    """

    def __init__(self) -> None:
        self._names: dict[str, str] = {}

    def learn(self, event: Event) -> tuple[str, str | None] | None:
        """Learn from one event: ``(callID, state status)`` of a tool part update, else ``None``."""
        tool = tool_part(event)
        if tool is None:
            return None
        call, name, state = tool
        if name is not None:
            self._names[call] = name
        return call, state

    def of(self, ask: PermissionAsk) -> str | None:
        """The name of the tool whose call raised ``ask``, if known."""
        return self._names.get(ask.tool.call_id) if ask.tool and ask.tool.call_id else None


def read_ask(raw: dict[str, Any]) -> tuple[PermissionAsk, str | None] | None:
    """An ask from opencode's JSON, and why it cannot be judged (``None``: it can).

    A request jobgov could only read by changing it, or whose fields have the wrong types,
    still names an ask to answer: it is returned with the problem, and a person decides it.
    ``None`` when it does not even name an ask id and a session (nothing can answer it).
    """
    props = dict(raw)
    problem = props.pop(PROBLEM_KEY, None)
    try:
        return PermissionAsk.model_validate(props), problem if isinstance(problem, str) else None
    except ValidationError as exc:
        ask_id, session_id, permission = props.get("id"), props.get("sessionID"), props.get("permission")
        if not (isinstance(ask_id, str) and ask_id and isinstance(session_id, str) and session_id):
            return None
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "request"
        name = permission if isinstance(permission, str) and permission else "unknown"
        ask = PermissionAsk.model_validate({"id": ask_id, "sessionID": session_id, "permission": name[:200]})
        return ask, f"the request is malformed ({where}: {first['msg']})"


def message_events(messages: list[dict[str, Any]], session_id: str) -> Iterator[Event]:
    """``GET /session/{id}/message`` replayed as the events that carry the same facts.

    Each message gives its ``message.updated`` (the model, for pricing) and a
    ``message.part.updated`` for each tool and step-finish part (tool names and
    states, and usage; the ledger ignores step parts it already counted).
    """
    for message in messages:
        info = message.get("info")
        if isinstance(info, dict):
            yield {"type": "message.updated", "properties": {"sessionID": session_id, "info": info}}
        parts = message.get("parts")
        for part in parts if isinstance(parts, list) else []:
            if isinstance(part, dict) and part.get("type") in ("tool", "step-finish"):
                yield {"type": "message.part.updated", "properties": {"sessionID": session_id, "part": part}}
