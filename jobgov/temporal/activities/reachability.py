"""Whether a job's agent is reached, told to its workflow once per outage."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from jobgov.temporal.payloads import EventBatch, StreamInput
from jobgov.temporal.state import AgentReach

__all__ = ["Reachability"]


class Reachability:
    """Reports the agent unreachable once per outage (with when it was last heard from), and
    reachable again when it is heard from; ``elapsed_ms`` is told how long each outage lasted."""

    def __init__(self, send: Callable[[EventBatch], Awaitable[None]], input: StreamInput,
                 log: logging.Logger | logging.LoggerAdapter[logging.Logger],
                 elapsed_ms: Callable[[float], None]) -> None:
        self._send, self._input, self._log, self._elapsed_ms = send, input, log, elapsed_ms
        self.unreachable = False
        """Reported unreachable, and not reached since."""
        self._since = 0.0

    async def lost(self, error: str, last_frame: float) -> None:
        """The agent cannot be reached (``last_frame``: the loop time it was last heard from, 0: never)."""
        if self.unreachable:
            return
        now = asyncio.get_running_loop().time()
        self.unreachable, self._since = True, now
        since = datetime.now(UTC) - timedelta(seconds=now - last_frame if last_frame else 0.0)
        self._log.warning("stream %s: the agent at %s is unreachable: %s", self._input.session_id,
                          self._input.agent_url, error)
        await self._send(EventBatch(generation=self._input.generation, items=[],
                                    agent=AgentReach(reachable=False, since=since, error=error)))

    async def back(self) -> None:
        """The agent was heard from again."""
        if not self.unreachable:
            return
        self.unreachable = False
        self._elapsed_ms((asyncio.get_running_loop().time() - self._since) * 1000)
        self._log.info("stream %s: the agent at %s is reachable again", self._input.session_id, self._input.agent_url)
        await self._send(EventBatch(generation=self._input.generation, items=[],
                                    agent=AgentReach(reachable=True, since=datetime.now(UTC))))
