"""Many fake agents in a process of their own, for ``bench.load``: ``python -m bench.agents``.

Agents are processes of their own in real use, so they must not share the worker's interpreter
(and its one GIL) in a load benchmark. Reads one JSON line on stdin, ``{"jobs", "asks",
"event_delay"}``; starts that many fake agents, each scripted with ``asks`` auto-approved bash
steps; prints one JSON line with their base URLs; then, on any line on stdin, prints one JSON
line with every ask's emission and reply times (``time.monotonic``, the same clock in every process
on Linux) and exits.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from jobgov.testing import FakeAgent, Scenario


class TimedAgent(FakeAgent):
    """The fake agent, timestamping asks as emitted and replies as they arrive."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.asked_at: dict[str, float] = {}
        self.replied_at: dict[str, float] = {}

    async def _emit(self, sess: Any, evt: dict[str, Any], *, paced: bool = True) -> None:
        if evt.get("type") == "permission.asked":
            self.asked_at[evt["properties"]["id"]] = time.monotonic()
        await super()._emit(sess, evt, paced=paced)

    async def _reply(self, rid: str, reply: str, message: str | None) -> Any:
        self.replied_at.setdefault(rid, time.monotonic())
        return await super()._reply(rid, reply, message)

    def timings(self) -> list[tuple[float, float]]:
        """(asked, replied) of every replied ask."""
        return [(t, self.replied_at[i]) for i, t in self.asked_at.items() if i in self.replied_at]

    def latencies_ms(self) -> list[float]:
        return [(self.replied_at[i] - t) * 1000 for i, t in self.asked_at.items() if i in self.replied_at]


def scripted(asks: int, event_delay: float) -> TimedAgent:
    scenario = Scenario()
    for i in range(asks):
        scenario.bash(f"echo {i}")
    return TimedAgent(scenario.text("Done."), event_delay=event_delay)


async def _main() -> None:
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    spec = json.loads(await reader.readline())
    agents = [scripted(spec["asks"], spec["event_delay"]) for _ in range(spec["jobs"])]
    try:
        for agent in agents:
            await agent.start()
        print(json.dumps([a.base_url for a in agents]), flush=True)
        await reader.readline()
        asked = sum(len(a.asked_at) for a in agents)
        print(json.dumps({"timings": [a.timings() for a in agents], "asked": asked}), flush=True)
    finally:
        for agent in agents:
            await agent.stop()


if __name__ == "__main__":
    asyncio.run(_main())
