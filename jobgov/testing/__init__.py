"""Test doubles for jobgov and for code that uses it.

- :class:`FakeAgent`: an opencode-compatible server that replays real captures
  or synthetic :class:`Scenario` runs, for unit tests, Temporal tests and
  benchmarks.
- :class:`ScriptedModel`: an OpenAI-compatible model that answers from a script
  of :class:`Turn` values, to drive a real ``opencode serve``.
- :func:`ensure_opencode` and :class:`OpencodeServer`: install and run a real,
  isolated, offline opencode for end-to-end tests.
- :class:`EventReader`: reads an ``/event`` stream in the background for assertions.

Their plumbing (the small HTTP/1.1 server, SSE framing, opencode object shapes,
capture scripts) lives in this package's private modules.
"""

from __future__ import annotations

from jobgov.testing._fake_session import ReceivedPrompt, ReceivedReply
from jobgov.testing._shapes import DEFAULT_PRICING, Pricing, Usage
from jobgov.testing._sse import EventReader
from jobgov.testing.fake_agent import FakeAgent, default_worktree
from jobgov.testing.opencode import (
    ASK_ALL,
    OPENCODE_VERSION,
    OpencodeError,
    OpencodeServer,
    ensure_opencode,
    opencode_config,
)
from jobgov.testing.scenario import (
    Ask,
    AskKind,
    Emit,
    Hold,
    Pause,
    Scenario,
    Script,
    TurnContext,
)
from jobgov.testing.scripted_model import ScriptedModel, ToolCall, Turn

# pytest must not collect anything from here as tests (STYLE.md point 12).
__test__ = False

__all__ = [
    "ASK_ALL",
    "DEFAULT_PRICING",
    "OPENCODE_VERSION",
    "Ask",
    "AskKind",
    "Emit",
    "EventReader",
    "FakeAgent",
    "Hold",
    "OpencodeError",
    "OpencodeServer",
    "Pause",
    "Pricing",
    "ReceivedPrompt",
    "ReceivedReply",
    "Scenario",
    "Script",
    "ScriptedModel",
    "ToolCall",
    "Turn",
    "TurnContext",
    "Usage",
    "default_worktree",
    "ensure_opencode",
    "opencode_config",
]
