"""Many jobs on one worker: auto-decision latency with ``jobgov worker``'s defaults.

``jobs`` fake agents each run ``asks`` auto-approved asks, paced so each asks about once a
second; one worker (``run_worker`` defaults) governs them all on the dev server. Latency is
from the agent emitting ``permission.asked`` to the agent receiving the reply. For scale, the
p99 of a bare signal RPC to a workflow, measured in the same run, is printed beside it.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from bench import show
from bench.decisions import TimedAgent, _watch_replies
from bench.sink import Sink
from jobgov import names
from jobgov.run import run_worker
from jobgov.temporal.plugin import JobGovPlugin
from jobgov.testing import Scenario
from tests.conftest import binary
from tests.integration.jobs import start_job


def _p(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


async def _signal_floor(env: WorkflowEnvironment, rate: float, count: int) -> list[float]:
    task_queue = f"sink-{uuid.uuid4()}"
    async with Worker(env.client, task_queue=task_queue, workflows=[Sink]):
        handle = await env.client.start_workflow(Sink.run, id=f"sink-{uuid.uuid4()}", task_queue=task_queue)
        times = []
        for _ in range(count):
            t0 = time.perf_counter()
            await handle.signal(Sink.poke)
            times.append((time.perf_counter() - t0) * 1000)
            await asyncio.sleep(1 / rate)
        await handle.terminate("done")
    return times


async def main(jobs: int = 100, asks: int = 8) -> dict[str, str]:
    env = await WorkflowEnvironment.start_local(plugins=[JobGovPlugin()], search_attributes=names.SEARCH_ATTRIBUTES,
                                                dev_server_existing_path=binary("temporal"))
    task_queue = f"load-{uuid.uuid4()}"
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(env.client, task_queue=task_queue, stop=stop, handle_signals=False))
    agents: list[TimedAgent] = []
    try:
        for _ in range(jobs):
            scenario = Scenario()
            for i in range(asks):
                scenario.bash(f"echo {i}")
            # About ten events a step: 0.1 s after each paces every job at about one ask a second.
            agent = TimedAgent(scenario.text("Done."), event_delay=0.1)
            await agent.__aenter__()
            agents.append(agent)
        watchers = [asyncio.create_task(_watch_replies(a, stop)) for a in agents]
        started = time.perf_counter()
        handles = [await start_job(env.client, task_queue, a.base_url, job=f"job-{n}") for n, a in enumerate(agents)]
        results = await asyncio.gather(*(h.result() for h in handles))
        elapsed = time.perf_counter() - started
        floor = await _signal_floor(env, rate=100, count=300)
        stop.set()
        await asyncio.gather(*watchers)
    finally:
        stop.set()
        await worker
        for agent in agents:
            await agent.__aexit__(None, None, None)
        await env.shutdown()
    latencies = [ms for a in agents for ms in a.latencies_ms()]
    replied = sum(len(a.replies) for a in agents)
    asked = sum(len(a.asked_at) for a in agents)
    completed = sum(1 for r in results if r.status.state == "completed")
    p50, p99, sig99 = statistics.median(latencies), _p(latencies, 99), _p(floor, 99)
    figures = {
        f"{jobs} jobs x {asks} asks, default worker": f"{completed}/{jobs} jobs completed, {replied}/{asked} asks "
                                                     f"replied in {elapsed:.0f} s",
        "auto-decision latency (ask -> reply)": f"p50 {p50:.1f} ms, p99 {p99:.1f} ms",
        "bare signal RPC at 100/s (same run)": f"p99 {sig99:.1f} ms; auto p99 / signal p99 = {p99 / sig99:.2f}",
    }
    return show("load:", figures)


def run() -> dict[str, str]:
    return asyncio.run(main())


if __name__ == "__main__":
    run()
