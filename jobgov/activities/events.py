"""What the stream consumer makes of opencode events: pure translations, no I/O.

Each function reads one opencode 1.18 shape (see PROTOCOL.md) defensively:
a field of an unexpected type is treated as absent, so a newer opencode
degrades the consumer's view instead of crashing it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final, Literal

from jobgov.agent import Event
from jobgov.messages import RepliedItem, SessionItem
from jobgov.models import Action, Category, Decision, NormalizedAsk, Operation, PermissionAsk

__all__ = [
    "DONE_TOOL_STATES",
    "ends_run",
    "message_events",
    "policy_reply",
    "replied_item",
    "session_item",
    "session_of",
    "status_item",
    "tool_part",
    "unjudgeable",
]

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


def policy_reply(decision: Decision) -> tuple[Literal["once", "reject"], str | None]:
    """The reply that applies a policy decision.

    A deny is a ``reject`` *with* a message: opencode then tells the model why
    and its loop goes on (finding 1), instead of stopping the whole run.
    """
    if decision.action is Action.AUTO_APPROVE:
        return "once", None
    return "reject", f"Denied by jobgov policy: {decision.reason}"


def unjudgeable(ask: PermissionAsk, worktree: str, error: Exception) -> NormalizedAsk:
    """An ask that could not be normalised, as one uncertain operation (so a person decides)."""
    detail = f"jobgov could not normalise this ask: {type(error).__name__}: {error}"
    operation = Operation(category=Category.OTHER, subject=ask.permission, detail=detail, uncertain=True)
    return NormalizedAsk(ask=ask, worktree=worktree, operations=[operation])
