"""Replay of a real opencode event capture (``<scenario>.event.jsonl``) as a fake-agent script.

A capture is the ``GET /event`` stream of one real run. To replay it for a
session created on the fake agent, :class:`CaptureScript`:

- emits its ``session.created`` on ``POST /session`` and the rest on the first
  prompt;
- turns each ``permission.asked`` into an :class:`~jobgov.testing.scenario.Ask`
  (the replay blocks until the client replies) and drops the captured
  ``permission.replied`` events, which the fake emits for the replies it
  actually receives;
- drops ``server.heartbeat`` (the fake sends its own) and other sessions' events;
- cuts the run at a captured abort (``MessageAbortedError``) and holds there
  until the client aborts, so abort captures replay faithfully;
- gives every session, message, part, call and permission id a fresh value per
  rendering, so two sessions replaying one capture never share ids.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobgov.testing._shapes import new_id, now_ms
from jobgov.testing.scenario import Ask, Emit, Hold, Item, TurnContext

__all__ = ["CaptureScript"]

_ID = re.compile(r"\b(ses|msg|prt|per|call)_[A-Za-z0-9]{8,}")
_SKIPPED = {"server.heartbeat", "server.connected", "permission.replied"}


def _session_of(evt: dict[str, Any]) -> str | None:
    props: dict[str, Any] = evt.get("properties", {})
    sid = props.get("sessionID") or props.get("info", {}).get("sessionID")
    return str(sid) if sid else None


@dataclass(frozen=True)
class CaptureScript:
    """One captured run, replayed as the first turn of every session of the fake agent."""

    name: str
    session_id: str
    created: dict[str, Any]
    events: tuple[dict[str, Any], ...]
    #: The captured run was aborted: its replay holds at that point until the client aborts.
    aborted: bool = False

    @classmethod
    def load(cls, path: str | Path) -> CaptureScript:
        """Read ``path`` (one event JSON per line) and keep the events of its session."""
        path = Path(path)
        raw = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        created = next((e for e in raw if e["type"] == "session.created"), None)
        if created is None:
            raise ValueError(f"{path}: no session.created event")
        sid = created["properties"]["info"]["id"]
        kept: list[dict[str, Any]] = []
        aborted = False
        for evt in raw:
            if evt is created or evt["type"] in _SKIPPED:
                continue
            owner = _session_of(evt)
            if owner is not None and owner != sid:
                continue
            error: dict[str, Any] = {}
            if evt["type"] == "session.error":
                error = evt["properties"].get("error", {})
            if error.get("name") == "MessageAbortedError":
                # The fake emits its own abort sequence when the client aborts.
                aborted = True
                break
            kept.append(evt)
        name = path.name.removesuffix(".event.jsonl")
        return cls(name, sid, created["properties"]["info"], tuple(kept), aborted)

    def _rewrite(self, value: Any, session_id: str, directory: str | None) -> Any:
        text = json.dumps(value)
        mapping: dict[str, str] = {self.session_id: session_id}

        def fresh(match: re.Match[str]) -> str:
            old = match.group(0)
            if old not in mapping:
                mapping[old] = new_id(match.group(1))
            return mapping[old]

        text = _ID.sub(fresh, text)
        old_dir = self.created.get("directory")
        if directory and old_dir and directory != old_dir:
            text = text.replace(json.dumps(old_dir)[1:-1], json.dumps(directory)[1:-1])
        return json.loads(text)

    def session_info(self, session_id: str, directory: str) -> dict[str, Any]:
        """The captured session object with a fresh id, the agent's directory and current times."""
        info: dict[str, Any] = self._rewrite(self.created, session_id, directory)
        created = now_ms()
        info["time"] = {"created": created, "updated": created}
        return info

    def render_turn(self, ctx: TurnContext) -> list[Item] | None:
        """The capture as the first turn; later prompts fall back to the agent's default turn."""
        if ctx.index > 0:
            return None
        events: list[dict[str, Any]] = self._rewrite(
            list(self.events), ctx.session_id, ctx.directory
        )
        items: list[Item] = []
        for evt in events:
            evt["id"] = new_id("evt")
            if evt["type"] == "permission.asked":
                items.append(Ask(evt["properties"]))
            else:
                items.append(Emit(evt))
        if self.aborted:
            items.append(Hold())
        return items
