"""opencode 1.18.33 object shapes and usage arithmetic shared by the test doubles.

Everything here reproduces what the captures in ``tests/fixtures/opencode/captures`` show:
identifiers (``ses_…``, ``msg_…``, ``prt_…``, ``per_…``, ``evt_…``,
``call_…``), the session object, token dictionaries, and how an OpenAI
``usage`` block becomes opencode step tokens and cost (PROTOCOL.md, "Token
mapping"). The fake agent and the scripted model share :class:`Usage` so a
synthetic run and a real run against the scripted model report the same
numbers.
"""

from __future__ import annotations

import itertools
import secrets
import string
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "DEFAULT_PRICING",
    "Pricing",
    "Usage",
    "add_tokens",
    "event",
    "new_id",
    "now_ms",
    "session_info",
    "zero_tokens",
]

_ALPHABET = string.ascii_letters + string.digits
_counter = itertools.count()


def now_ms() -> int:
    """Epoch milliseconds, the unit of every opencode ``time`` field."""
    return int(time.time() * 1000)


def new_id(prefix: str) -> str:
    """A fresh opencode-style id such as ``msg_2290…`` that sorts after earlier ones."""
    # opencode ids are time-ordered; a hex clock plus a process-wide counter keeps
    # ours ordered even for many ids within one millisecond.
    head = f"{now_ms():011x}{next(_counter) % 0xFFFF:04x}"
    tail = "".join(secrets.choice(_ALPHABET) for _ in range(11))
    return f"{prefix}_{head}{tail}"


def event(type_: str, properties: dict[str, Any]) -> dict[str, Any]:
    """An ``/event`` payload ``{"id": "evt_…", "type": …, "properties": …}``."""
    return {"id": new_id("evt"), "type": type_, "properties": properties}


def zero_tokens() -> dict[str, Any]:
    """The token dictionary of a session or a message before any usage (no ``total``)."""
    return {"input": 0, "output": 0, "reasoning": 0, "cache": {"read": 0, "write": 0}}


def add_tokens(total: dict[str, Any], step: dict[str, Any]) -> None:
    """Add a step's tokens into a session total, in place (``total`` keys are not summed)."""
    for key in ("input", "output", "reasoning"):
        total[key] = total.get(key, 0) + int(step.get(key, 0))
    cache = total.setdefault("cache", {"read": 0, "write": 0})
    step_cache = step.get("cache", {})
    for key in ("read", "write"):
        cache[key] = cache.get(key, 0) + int(step_cache.get(key, 0))


@dataclass(frozen=True)
class Pricing:
    """Model prices in USD per million tokens, as in the ``fake`` provider config of PROTOCOL.md."""

    input: float = 3.0
    output: float = 15.0
    cache_read: float = 0.3
    cache_write: float = 3.75


DEFAULT_PRICING = Pricing()


@dataclass(frozen=True)
class Usage:
    """The usage one LLM call reports, in OpenAI terms (what the scripted model sends).

    ``prompt_tokens`` includes ``cached_tokens`` and ``completion_tokens``
    includes ``reasoning_tokens``, as in the OpenAI API; :meth:`tokens` splits
    them the way opencode does.
    """

    prompt_tokens: int = 1000
    completion_tokens: int = 50
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cache_write_tokens: int = 0

    def tokens(self) -> dict[str, Any]:
        """opencode step tokens: prompt 1000 with 400 cached gives input 600 and cache.read 400."""
        input_ = self.prompt_tokens - self.cached_tokens - self.cache_write_tokens
        output = self.completion_tokens - self.reasoning_tokens
        return {
            "total": self.prompt_tokens + self.completion_tokens,
            "input": input_,
            "output": output,
            "reasoning": self.reasoning_tokens,
            "cache": {"write": self.cache_write_tokens, "read": self.cached_tokens},
        }

    def cost(self, pricing: Pricing = DEFAULT_PRICING) -> float:
        """USD cost of the call; opencode prices reasoning at the output rate."""
        t = self.tokens()
        micro = (
            t["input"] * pricing.input
            + (t["output"] + t["reasoning"]) * pricing.output
            + t["cache"]["read"] * pricing.cache_read
            + t["cache"]["write"] * pricing.cache_write
        )
        return float(round(micro / 1_000_000, 12))

    def openai(self) -> dict[str, Any]:
        """The ``usage`` object of the last OpenAI stream chunk."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
        }


def session_info(
    session_id: str,
    directory: str,
    *,
    project_id: str = "2839f0e74ca6cc41f1d69b111ff63b55c4d03cd3",
    title: str | None = None,
) -> dict[str, Any]:
    """A new session object as ``POST /session`` returns it and ``session.created`` carries it."""
    created = now_ms()
    iso = datetime.fromtimestamp(created / 1000, UTC).isoformat(timespec="milliseconds")
    return {
        "id": session_id,
        "slug": "fake-session",
        "version": "1.18.33",
        "projectID": project_id,
        "directory": directory,
        "path": "",
        "title": title or f"New session - {iso.replace('+00:00', 'Z')}",
        "cost": 0,
        "tokens": zero_tokens(),
        "time": {"created": created, "updated": created},
    }
