"""How fast the stream is read: jobgov's event parser against bare httpx-sse on the same bytes.

The bytes are the real captures served as one SSE response through ``httpx.MockTransport``,
once as opencode wrote them (spaced JSON) and once re-serialised compactly. "Bare" is what
any consumer must do at least: httpx-sse frames, each decoded by ``json.loads``. jobgov
also skips ``message.part.delta`` frames from their head, reads every other frame with
:func:`jobgov.opencode.jsonsafe.loads` and fills in missing properties.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable

import httpx
from httpx_sse import aconnect_sse

from bench import show
from jobgov.opencode.client import AgentClient
from tests.helpers import CAPTURES

ROUNDS = 40


def _body(compact: bool) -> tuple[bytes, int, int]:
    frames, deltas = [], 0
    for path in sorted(CAPTURES.glob("*.event.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            value = json.loads(line)
            deltas += value.get("type") == "message.part.delta"
            text = json.dumps(value, separators=(",", ":")) if compact else line
            frames.append(f"data: {text}\n\n")
    return "".join(frames).encode(), len(frames), deltas


def _client(body: bytes) -> httpx.AsyncClient:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


async def _bare(http: httpx.AsyncClient) -> int:
    count = 0
    async with aconnect_sse(http, "GET", "http://agent/event") as src:
        async for frame in src.aiter_sse():
            json.loads(frame.data)
            count += 1
    return count


async def _jobgov(http: httpx.AsyncClient) -> int:
    count = 0
    async with AgentClient(http, "http://agent").event_stream() as stream:
        async for _event in stream:
            count += 1
    return count


async def _rates(body: bytes, frames: int) -> tuple[float, float]:
    """Frames per second of (bare, jobgov): best of :data:`ROUNDS`, the two read in turns."""
    readers: tuple[Callable[[httpx.AsyncClient], Awaitable[int]], ...] = (_bare, _jobgov)
    best = [float("inf")] * len(readers)
    async with _client(body) as http:
        for read in readers:
            await read(http)  # warm up
        for _ in range(ROUNDS):
            for i, read in enumerate(readers):
                t0 = time.perf_counter()
                await read(http)
                best[i] = min(best[i], time.perf_counter() - t0)
    return frames / best[0], frames / best[1]


async def main() -> dict[str, str]:
    figures: dict[str, str] = {}
    for label, compact in (("spaced JSON (as captured)", False), ("compact JSON", True)):
        body, frames, deltas = _body(compact)
        bare, ours = await _rates(body, frames)
        figures[label] = (f"jobgov {ours:,.0f} frames/s, bare httpx-sse + json.loads {bare:,.0f} frames/s: "
                          f"{ours / bare:.0%} ({frames} frames, {deltas} deltas, {len(body) / 1024:.0f} KB)")
    return show(f"ingest: the captured streams read from one SSE response, best of {ROUNDS}", figures)


def run() -> dict[str, str]:
    return asyncio.run(main())


if __name__ == "__main__":
    run()
