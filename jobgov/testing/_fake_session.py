"""Per-session state of the fake agent, and the events opencode sends on a reject or an abort.

:class:`SessionState` follows a session through the events it emits (so
``GET /session/{id}`` totals and ``GET /session/{id}/message`` always agree
with the stream). :func:`reject_outcome` and :func:`abort_events` are pure: they
compute what opencode 1.18.33 would send, following PROTOCOL.md findings 1, 4,
5 and 6, and leave the sending to :class:`~jobgov.testing.fake_agent.FakeAgent`.
"""

from __future__ import annotations

import asyncio
import copy
import fnmatch
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from jobgov.testing._shapes import add_tokens, event, now_ms, zero_tokens
from jobgov.testing.scenario import Ask, Emit, Item

__all__ = [
    "ABORTED",
    "REJECTED",
    "PendingAsk",
    "ReceivedPrompt",
    "ReceivedReply",
    "SessionState",
    "abort_events",
    "always_covers",
    "reject_outcome",
]

REJECTED = "The user rejected permission to use this specific tool call."
ABORTED = {"name": "MessageAbortedError", "data": {"message": "Aborted"}}
_BASH_ABORTED = "(no output)\n\n<shell_metadata>\nUser aborted the command\n</shell_metadata>"


@dataclass(frozen=True)
class ReceivedReply:
    """A permission reply the fake accepted (unknown ids get a 404 and are not recorded)."""

    request_id: str
    session_id: str
    reply: str
    message: str | None = None
    #: The session had been aborted while the ask was pending (PROTOCOL.md finding 3).
    late: bool = False


@dataclass(frozen=True)
class ReceivedPrompt:
    """A prompt body as received by ``prompt_async`` or the synchronous ``message`` route."""

    session_id: str
    body: dict[str, Any]

    @property
    def text(self) -> str:
        """The concatenated text parts."""
        parts = self.body.get("parts", [])
        return "".join(str(p.get("text", "")) for p in parts if p.get("type") == "text")


@dataclass
class PendingAsk:
    """A permission ask waiting for its reply; ``orphaned`` once its session was aborted."""

    session_id: str
    properties: dict[str, Any]
    future: asyncio.Future[ReceivedReply]
    orphaned: bool = False


@dataclass
class SessionState:
    """One fake session: its object, live totals, messages and run bookkeeping."""

    id: str
    info: dict[str, Any]
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    tokens: dict[str, Any] = field(default_factory=zero_tokens)
    cost: float = 0.0
    #: message id -> {"info": message, "parts": {part id: part}}, in first-seen order.
    messages: dict[str, dict[str, Any]] = field(default_factory=dict[str, dict[str, Any]])
    #: callID -> latest tool part.
    tool_parts: dict[str, dict[str, Any]] = field(default_factory=dict[str, dict[str, Any]])
    #: step-finish part ids already added to the totals (re-sent events must not double count).
    counted: set[str] = field(default_factory=set[str])
    prompts: deque[str] = field(default_factory=deque[str])
    turn: int = 0
    runner: asyncio.Task[None] | None = None
    last_assistant: str | None = None
    #: The last ``session.status`` sent: ``{"type": "idle" | "busy" | "retry", ...}``.
    status: dict[str, Any] = field(default_factory=lambda: {"type": "idle"})

    def message_list(self) -> list[dict[str, Any]]:
        """The messages as ``GET /session/{id}/message`` returns them."""
        return [
            {"info": m["info"], "parts": list(m["parts"].values())} for m in self.messages.values()
        ]

    def track(self, evt: dict[str, Any]) -> None:
        """Update the state from an event about to be sent (``session.updated`` is filled in)."""
        kind, props = evt["type"], evt["properties"]
        if kind == "session.updated":
            # Totals come from the step-finish parts sent so far, so the session
            # object stays consistent even when a reply changed the scripted flow.
            update: dict[str, Any] = props.get("info", {})
            info: dict[str, Any] = {**self.info, **update, "id": self.id}
            info.update(cost=self.cost, tokens=copy.deepcopy(self.tokens))
            times: dict[str, Any] = info.get("time", {})
            info["time"] = {**times, "updated": now_ms()}
            self.info = info
            props["info"] = copy.deepcopy(info)
        elif kind == "message.updated":
            message: dict[str, Any] = copy.deepcopy(props["info"])
            self.messages.setdefault(message["id"], {"info": message, "parts": {}})["info"] = (
                message
            )
            if message.get("role") == "assistant":
                self.last_assistant = message["id"]
        elif kind == "message.part.updated":
            self._track_part(copy.deepcopy(props["part"]))
        elif kind == "session.status":
            self.status = copy.deepcopy(props["status"])
        elif kind == "message.part.delta":
            message = self.messages.get(props["messageID"], {})
            part = message.get("parts", {}).get(props["partID"])
            if part is not None:
                name = props["field"]
                part[name] = str(part.get(name, "")) + props["delta"]

    def _track_part(self, part: dict[str, Any]) -> None:
        stub = {"id": part["messageID"], "sessionID": self.id, "role": "assistant"}
        message = self.messages.setdefault(part["messageID"], {"info": stub, "parts": {}})
        message["parts"][part["id"]] = part
        if part["type"] == "step-finish" and part["id"] not in self.counted:
            self.counted.add(part["id"])
            add_tokens(self.tokens, part.get("tokens", {}))
            self.cost = round(self.cost + float(part.get("cost", 0)), 12)
        elif part["type"] == "tool":
            self.tool_parts[part["callID"]] = part


def always_covers(rules: dict[str, list[str]], ask: dict[str, Any]) -> bool:
    """Whether earlier ``always`` replies (permission: patterns) cover all ``ask`` patterns."""
    granted = rules.get(ask["permission"], [])
    patterns: list[str] = ask.get("patterns", [])
    return bool(patterns) and all(any(fnmatch.fnmatchcase(p, g) for g in granted) for p in patterns)


def _part_event(sid: str, part: dict[str, Any]) -> dict[str, Any]:
    return event("message.part.updated", {"sessionID": sid, "part": part, "time": now_ms()})


def _call_of(ask: dict[str, Any]) -> str | None:
    tool: dict[str, Any] = ask.get("tool") or {}
    return tool.get("callID")


def _finishes_step(evt: dict[str, Any], mid: str | None) -> bool:
    """Whether ``evt`` is the step-finish part or a ``message.updated`` of message ``mid``."""
    props = evt.get("properties", {})
    if evt.get("type") == "message.updated":
        return bool(props.get("info", {}).get("id") == mid)
    part = props.get("part", {})
    return (
        evt.get("type") == "message.part.updated"
        and part.get("type") == "step-finish"
        and part.get("messageID") == mid
    )


def _without_call(queue: deque[Item], call: str | None, mid: str | None) -> list[Item]:
    """The remaining items minus what the rejected call would have done (its parts, asks, edits)."""
    kept: list[Item] = []
    in_step = True
    for item in queue:
        if isinstance(item, Ask) and _call_of(item.properties) == call:
            continue
        if isinstance(item, Emit):
            kind, props = item.event["type"], item.event["properties"]
            part: dict[str, Any] = props.get("part", {}) if kind == "message.part.updated" else {}
            if part.get("callID") == call:
                continue
            if part.get("type") == "patch" and part.get("messageID") == mid:
                continue
            if in_step and kind in ("file.edited", "file.watcher.updated"):
                continue
            if _finishes_step(item.event, mid):
                in_step = False
        kept.append(item)
    return kept


def reject_outcome(
    state: SessionState, ask: dict[str, Any], message: str | None, queue: deque[Item]
) -> tuple[list[dict[str, Any]], list[Item], bool]:
    """What a ``reject`` of ``ask`` does to the rest of the turn (finding 1).

    Returns the events to send now, the items left to play, and whether the
    run continues: only a reject *with* a message lets the model go on; without
    one the step finishes (its usage still counts) and the session goes idle.
    """
    tool = ask.get("tool", {})
    call, mid = tool.get("callID"), tool.get("messageID")
    error = REJECTED
    if message:
        error = f"{REJECTED[:-1]} with the following feedback: {message}"
    events: list[dict[str, Any]] = []
    part = state.tool_parts.get(call or "")
    if part is not None:
        prior = part["state"]
        failed = {
            "status": "error",
            "input": prior.get("input", {}),
            "error": error,
            "time": {"start": prior.get("time", {}).get("start", now_ms()), "end": now_ms()},
        }
        events.append(_part_event(state.id, {**part, "state": failed}))
    kept = _without_call(queue, call, mid)
    if message:
        return events, kept, True
    events += [i.event for i in kept if isinstance(i, Emit) and _finishes_step(i.event, mid)]
    sid = {"sessionID": state.id}
    events += [
        event("session.status", {**sid, "status": {"type": "idle"}}),
        event("session.idle", dict(sid)),
        event("session.updated", {**sid, "info": {}}),
    ]
    return events, [], False


def abort_events(state: SessionState, waiting_calls: set[str]) -> list[dict[str, Any]]:
    """The events of an abort, in opencode's order (findings 4-6).

    ``waiting_calls`` are the callIDs whose permission ask was pending: those
    tools end in error ``Tool execution aborted``; a running bash ends
    ``completed`` with the aborted-command output; the aborted message loses
    its usage.
    """
    sid = {"sessionID": state.id}
    events = [
        event("session.error", {**sid, "error": ABORTED}),
        event("session.status", {**sid, "status": {"type": "idle"}}),
        event("session.idle", dict(sid)),
    ]
    entry = state.messages.get(state.last_assistant or "")
    if entry is not None and "completed" not in entry["info"].get("time", {}):
        for part in list(entry["parts"].values()):
            prior = part.get("state", {})
            if part["type"] != "tool" or prior.get("status") not in ("pending", "running"):
                continue
            end = {"start": prior.get("time", {}).get("start", now_ms()), "end": now_ms()}
            done: dict[str, Any] = {"input": prior.get("input", {}), "time": end}
            running = prior["status"] == "running" and part["callID"] not in waiting_calls
            if part["tool"] == "bash" and running:
                # finding 5: a running bash that is aborted ends "completed", not "error".
                done.update(status="completed", output=_BASH_ABORTED, title="")
                done["metadata"] = {"output": "", "exit": None}
            else:
                done.update(status="error", error="Tool execution aborted")
                done["metadata"] = {"interrupted": True}
            events.append(_part_event(state.id, {**part, "state": done}))
        info: dict[str, Any] = {
            **entry["info"],
            "cost": 0,
            "tokens": zero_tokens(),
            "error": ABORTED,
        }
        times: dict[str, Any] = info.get("time", {})
        info["time"] = {**times, "completed": now_ms()}
        events.append(event("message.updated", {**sid, "info": info}))
    events += [
        event("session.status", {**sid, "status": {"type": "idle"}}),
        event("session.idle", dict(sid)),
    ]
    return events
