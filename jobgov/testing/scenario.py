"""Scripts for :class:`~jobgov.testing.fake_agent.FakeAgent`: what a session does per prompt.

A script renders one *turn* (the run that one prompt triggers) into a list of
items the fake agent plays in order: :class:`Emit` an event, :class:`Ask` a
permission (the run blocks until it is replied or aborted), :class:`Pause`,
or :class:`Hold` (block until aborted). Two scripts exist: captures of real
runs (:mod:`jobgov.testing.capture`) and :class:`Scenario`, a builder for
synthetic runs whose events have the shapes of the captures::

    Scenario().bash("rm -rf build").edit("src/app.py").text("Done.")
    Scenario.synthetic(steps=50, ask="bash")  # benchmarks
"""

from __future__ import annotations

import copy
import os.path
import re
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, Protocol

from jobgov.testing._shapes import (
    DEFAULT_PRICING,
    Pricing,
    Usage,
    event,
    new_id,
    now_ms,
    session_info,
    zero_tokens,
)

__all__ = [
    "Ask",
    "AskKind",
    "Emit",
    "Hold",
    "Item",
    "Pause",
    "Scenario",
    "Script",
    "TurnContext",
]

AskKind = Literal["bash", "edit", "webfetch", "external_directory"]
_SNAPSHOT = "cc05d3f2606b37f5ac66d86aff62951cde76175d"


@dataclass(frozen=True)
class Emit:
    """Send ``event`` (an ``/event`` payload) to every subscriber."""

    event: dict[str, Any]


@dataclass(frozen=True)
class Ask:
    """Raise ``permission.asked`` with ``properties`` and block until replied or aborted."""

    properties: dict[str, Any]


@dataclass(frozen=True)
class Pause:
    """Sleep, e.g. to leave time for an abort while a tool "runs"."""

    seconds: float


@dataclass(frozen=True)
class Hold:
    """Block until the session is aborted (or the agent's ``hold_timeout`` passes)."""


Item = Emit | Ask | Pause | Hold


@dataclass(frozen=True)
class TurnContext:
    """What a script needs to render a turn for one session."""

    session_id: str
    directory: str
    prompt_text: str
    #: Index of the turn within the session (0 for the first prompt).
    index: int


class Script(Protocol):
    """Anything the fake agent can run: a capture or a :class:`Scenario`."""

    def session_info(self, session_id: str, directory: str) -> dict[str, Any]:
        """The session object returned by ``POST /session``."""
        ...

    def render_turn(self, ctx: TurnContext) -> list[Item] | None:
        """The items of turn ``ctx.index``, or ``None`` when the script has no more turns."""
        ...


class _AskSpec(NamedTuple):
    permission: str
    patterns: list[str]
    metadata: dict[str, Any]
    always: list[str]


@dataclass(frozen=True)
class _Tool:
    tool: str
    input: dict[str, Any]
    usage: Usage
    asks: tuple[_AskSpec, ...] = ()
    output: str = ""
    metadata: dict[str, Any] = field(default_factory=dict[str, Any])
    title: str = ""
    #: A file the tool writes (relative to the worktree, or absolute); resolved per session.
    edited: str | None = None
    #: Seconds the tool "runs" after its asks are approved (time to abort a running tool).
    duration: float = 0.0


@dataclass(frozen=True)
class _Text:
    text: str
    usage: Usage


@dataclass(frozen=True)
class _Crash:
    """The agent dies mid-step: the turn ends there, its later steps never run."""


_Step = _Tool | _Text | _Crash


@dataclass
class Scenario:
    """A builder of synthetic runs; each method appends one step (one LLM call) to the current turn.

    Each tool step is one assistant message: ``step-start``, the tool part
    (pending, running, its asks, completed), ``step-finish`` carrying the
    step's tokens and cost, and ``message.updated`` twice (without, then
    with ``time.completed``). Paths are relative to the agent's worktree
    unless absolute; a path outside it asks ``external_directory`` before
    ``edit``, as opencode does. A turn ends with ``session.idle``.
    """

    pricing: Pricing = DEFAULT_PRICING
    turns: list[list[_Step]] = field(default_factory=lambda: [[]])

    @classmethod
    def synthetic(
        cls,
        steps: int,
        *,
        ask: AskKind | None = "bash",
        usage: Usage | None = None,
        final_text: str = "Done.",
    ) -> Scenario:
        """``steps`` tool steps each raising one ask of kind ``ask``, then a final text step."""
        scenario = cls()
        for i in range(steps):
            if ask == "bash":
                scenario.bash(f"echo step {i}", usage=usage)
            elif ask == "edit":
                scenario.edit(f"src/file_{i}.txt", usage=usage)
            elif ask == "webfetch":
                scenario.webfetch(f"https://example.com/page/{i}", usage=usage)
            elif ask == "external_directory":
                scenario.external_directory(f"/srv/agent/outside/file_{i}.txt", usage=usage)
            else:
                scenario.tool("read", {"filePath": f"file_{i}.txt"}, usage=usage)
        return scenario.text(final_text, usage=usage)

    def next_turn(self) -> Scenario:
        """Start the next turn: the steps added after this run on the next prompt."""
        self.turns.append([])
        return self

    def text(self, text: str, *, usage: Usage | None = None) -> Scenario:
        """A step that streams ``text`` and finishes with reason ``stop``."""
        self.turns[-1].append(_Text(text, usage or Usage()))
        return self

    def crash(self) -> Scenario:
        """The agent dies mid-step (it was restarted): an assistant message starts and never
        completes, the session goes idle, and the turn's later steps never run."""
        self.turns[-1].append(_Crash())
        return self

    def tool(
        self, tool: str, input: dict[str, Any], *, output: str = "", usage: Usage | None = None
    ) -> Scenario:
        """A tool step that needs no permission (e.g. ``read``)."""
        self.turns[-1].append(_Tool(tool, input, usage or Usage(), output=output, title=tool))
        return self

    def bash(
        self,
        command: str,
        *,
        description: str = "Run a command",
        outside: tuple[str, ...] = (),
        output: str = "",
        duration: float = 0.0,
        usage: Usage | None = None,
    ) -> Scenario:
        """A ``bash`` step; ``outside`` directories raise an ``external_directory`` ask first.

        The command "runs" for ``duration`` seconds once approved, so a test can abort it.
        """
        # opencode asks once per sub-command: "a && b" gives patterns ["a", "b"].
        parts = [p.strip() for p in re.split(r"&&|\|\||;|\|", command) if p.strip()]
        asks: list[_AskSpec] = []
        if outside:
            dirs = [f"{d.rstrip('/')}/*" for d in outside]
            meta = {"command": command, "directories": list(outside), "patterns": dirs}
            asks.append(_AskSpec("external_directory", dirs, meta, dirs))
        always = [f"{p.split()[0]} *" for p in parts]
        asks.append(_AskSpec("bash", parts, {"command": command}, always))
        step = _Tool(
            "bash",
            {"command": command, "description": description},
            usage or Usage(),
            asks=tuple(asks),
            output=output,
            metadata={"output": output, "exit": 0, "truncated": False},
            title=command,
            duration=duration,
        )
        self.turns[-1].append(step)
        return self

    def edit(self, path: str, *, content: str = "hello\n", usage: Usage | None = None) -> Scenario:
        """A ``write`` step of ``path``: asks ``edit`` (after ``external_directory`` if outside)."""
        step = _Tool(
            "write",
            {"filePath": path, "content": content},
            usage or Usage(),
            output="Wrote file successfully.",
            edited=path,
        )
        self.turns[-1].append(step)
        return self

    def external_directory(self, path: str, **kwargs: Any) -> Scenario:
        """Write ``path`` outside the worktree: asks ``external_directory``, then ``edit``."""
        if not os.path.isabs(path):
            raise ValueError("external_directory needs an absolute path outside the worktree")
        return self.edit(path, **kwargs)

    def webfetch(self, url: str, *, usage: Usage | None = None) -> Scenario:
        """A ``webfetch`` step asking ``webfetch`` for ``url``."""
        meta = {"url": url, "format": "text"}
        step = _Tool(
            "webfetch",
            dict(meta),
            usage or Usage(),
            asks=(_AskSpec("webfetch", [url], meta, ["*"]),),
            output="fetched",
            metadata={"truncated": False},
            title=f"{url} (text/plain)",
        )
        self.turns[-1].append(step)
        return self

    # -- Script protocol ---------------------------------------------------------------------

    def session_info(self, session_id: str, directory: str) -> dict[str, Any]:
        """A fresh session object."""
        return session_info(session_id, directory)

    def render_turn(self, ctx: TurnContext) -> list[Item] | None:
        """The items of turn ``ctx.index``; ``None`` once the scenario has no more turns."""
        if ctx.index >= len(self.turns):
            return None
        return _TurnRenderer(ctx, self.pricing).render(self.turns[ctx.index])


class _TurnRenderer:
    """Turns steps into the event sequence opencode sends for them (see ``approve.event.jsonl``)."""

    def __init__(self, ctx: TurnContext, pricing: Pricing) -> None:
        self.ctx = ctx
        self.sid = ctx.session_id
        self.pricing = pricing
        self.user_id = new_id("msg")
        self.items: list[Item] = []

    def emit(self, type_: str, **props: Any) -> None:
        self.items.append(Emit(event(type_, {"sessionID": self.sid, **props})))

    def part(self, part: dict[str, Any]) -> None:
        self.emit("message.part.updated", part=part, time=now_ms())

    def render(self, steps: list[_Step]) -> list[Item]:
        user = {
            "id": self.user_id,
            "role": "user",
            "sessionID": self.sid,
            "time": {"created": now_ms()},
            "agent": "build",
            "model": {"providerID": "fake", "modelID": "fake-model"},
        }
        self.emit("message.updated", info=user)
        base = {"messageID": self.user_id, "sessionID": self.sid}
        self.part({"id": new_id("prt"), **base, "type": "text", "text": self.ctx.prompt_text})
        self.emit("session.updated", info={})  # the fake fills in the live session object
        self.emit("session.status", status={"type": "busy"})
        for step in steps:
            if isinstance(step, _Crash):
                self.crash()
                break
            self.step(step)
        # opencode sends one more "busy" right before going idle (every capture shows it).
        self.emit("session.status", status={"type": "busy"})
        self.emit("session.status", status={"type": "idle"})
        self.emit("session.idle")
        self.emit("session.updated", info={})
        self.emit("session.diff", diff=[])
        return self.items

    def crash(self) -> None:
        info = {"id": new_id("msg"), "parentID": self.user_id, "role": "assistant", "mode": "build",
                "agent": "build", "path": {"cwd": self.ctx.directory, "root": self.ctx.directory}, "cost": 0,
                "tokens": zero_tokens(), "modelID": "fake-model", "providerID": "fake",
                "time": {"created": now_ms()}, "sessionID": self.sid}
        self.emit("session.status", status={"type": "busy"})
        self.emit("message.updated", info=info)
        base = {"messageID": info["id"], "sessionID": self.sid}
        self.part({"id": new_id("prt"), **base, "snapshot": _SNAPSHOT, "type": "step-start"})

    def step(self, step: _Tool | _Text) -> None:
        mid = new_id("msg")
        root = self.ctx.directory
        info: dict[str, Any] = {
            "id": mid,
            "parentID": self.user_id,
            "role": "assistant",
            "mode": "build",
            "agent": "build",
            "path": {"cwd": root, "root": root},
            "cost": 0,
            "tokens": zero_tokens(),
            "modelID": "fake-model",
            "providerID": "fake",
            "time": {"created": now_ms()},
            "sessionID": self.sid,
        }
        self.emit("session.status", status={"type": "busy"})
        self.emit("message.updated", info=copy.deepcopy(info))
        base = {"messageID": mid, "sessionID": self.sid}
        self.part({"id": new_id("prt"), **base, "snapshot": _SNAPSHOT, "type": "step-start"})
        if isinstance(step, _Text):
            self.text(step.text, base)
            finish = "stop"
        else:
            self.tool(step, base)
            finish = "tool-calls"
        tokens, cost = step.usage.tokens(), step.usage.cost(self.pricing)
        self.part(
            {
                "id": new_id("prt"),
                **base,
                "type": "step-finish",
                "reason": finish,
                "snapshot": _SNAPSHOT,
                "tokens": tokens,
                "cost": cost,
            }
        )
        done = {**info, "cost": cost, "tokens": tokens, "finish": finish}
        self.emit("message.updated", info=copy.deepcopy(done))
        if isinstance(step, _Tool) and step.edited is not None:
            files = [self.abspath(step.edited)]
            self.part(
                {"id": new_id("prt"), **base, "type": "patch", "hash": _SNAPSHOT, "files": files}
            )
        done["time"] = {"created": info["time"]["created"], "completed": now_ms()}
        self.emit("message.updated", info=done)
        self.emit("session.updated", info={})

    def text(self, text: str, base: dict[str, Any]) -> None:
        pid, start = new_id("prt"), now_ms()
        self.part({"id": pid, **base, "type": "text", "text": "", "time": {"start": start}})
        for word in re.findall(r"\S+\s*", text):
            delta = {"messageID": base["messageID"], "partID": pid, "field": "text", "delta": word}
            self.emit("message.part.delta", **delta)
        span = {"start": start, "end": now_ms()}
        self.part({"id": pid, **base, "type": "text", "text": text, "time": span})

    def abspath(self, path: str) -> str:
        return os.path.normpath(os.path.join(self.ctx.directory, path))

    def edit_asks(self, filepath: str, content: str) -> list[_AskSpec]:
        """external_directory (when outside the worktree), then edit, as opencode asks them."""
        rel = os.path.relpath(filepath, self.ctx.directory)
        asks: list[_AskSpec] = []
        if rel.startswith(".."):
            parent = os.path.dirname(filepath)
            meta = {"filepath": filepath, "parentDir": parent}
            asks.append(_AskSpec("external_directory", [f"{parent}/*"], meta, [f"{parent}/*"]))
        header = f"Index: {filepath}\n{'=' * 67}\n--- {filepath}\n+++ {filepath}\n"
        diff = f"{header}@@ -0,0 +1,1 @@\n+{content}"
        asks.append(_AskSpec("edit", [rel], {"filepath": filepath, "diff": diff}, ["*"]))
        return asks

    def tool(self, step: _Tool, base: dict[str, Any]) -> None:
        call, pid = new_id("call"), new_id("prt")
        tool_input, asks, title = dict(step.input), list(step.asks), step.title
        if step.edited is not None:
            filepath = tool_input["filePath"] = self.abspath(step.edited)
            title = os.path.relpath(filepath, self.ctx.directory)
            asks += self.edit_asks(filepath, str(tool_input.get("content", "")))
        part = {"id": pid, **base, "type": "tool", "tool": step.tool, "callID": call}
        self.part({**part, "state": {"status": "pending", "input": {}, "raw": ""}})
        start = now_ms()
        running = {"status": "running", "input": tool_input, "time": {"start": start}}
        self.part({**part, "state": running})
        for ask in asks:
            props = {"id": new_id("per"), "sessionID": self.sid, **ask._asdict()}
            props["tool"] = {"messageID": base["messageID"], "callID": call}
            self.items.append(Ask(props))
        metadata: dict[str, Any] = dict(step.metadata)
        if step.edited is not None:
            filepath = tool_input["filePath"]
            # File events are project-wide: they carry no sessionID.
            self.items.append(Emit(event("file.edited", {"file": filepath})))
            self.items.append(
                Emit(event("file.watcher.updated", {"file": filepath, "event": "add"}))
            )
            metadata = {
                "diagnostics": {},
                "filepath": filepath,
                "exists": False,
                "truncated": False,
            }
        elif step.tool == "bash":
            self.part({**part, "state": {**running, "metadata": {"output": step.output}}})
        if step.duration:
            self.items.append(Pause(step.duration))
        done = {"status": "completed", "input": tool_input, "output": step.output}
        done.update(metadata=metadata, title=title, time={"start": start, "end": now_ms()})
        self.part({**part, "state": done})
