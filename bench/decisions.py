"""Where auto decisions are made, measured: in the stream activity vs through the workflow.

Both runs use the real Temporal dev server, a jobgov worker and the fake agent.
Latency is from the agent emitting ``permission.asked`` to the agent receiving
the reply. Path "activity": asks the policy auto-approves (decided by the stream
activity, recorded by one signal, then replied). Path "workflow": asks decided
by the workflow (ask-user approved once with ``always``; the rest are approved
by that job-scoped grant inside the workflow, then replied by an activity).
"""

from __future__ import annotations

import asyncio
import statistics
import uuid

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from bench.agents import TimedAgent
from jobgov import names
from jobgov.temporal.payloads import ApproveInput
from jobgov.temporal.state import DecisionRecord
from jobgov.testing import Scenario
from tests.conftest import start_dev_env
from tests.integration.jobs import start_job, wait_for


async def _run(env: WorkflowEnvironment, scenario: Scenario, grant_first: bool) -> list[float]:
    task_queue = f"bench-{uuid.uuid4()}"
    async with TimedAgent(scenario) as agent, Worker(env.client, task_queue=task_queue):
        handle = await start_job(env.client, task_queue, agent.base_url)
        if grant_first:
            first = (await wait_for(handle, lambda s: bool(s.pending), timeout=60)).pending[0]
            await handle.execute_update(names.UPDATE_JOB_APPROVE, ApproveInput(request_id=first.id, always=True),
                                        result_type=DecisionRecord)
            agent.asked_at.pop(first.id, None)  # a human's latency, not the system's
        await handle.result()
        return agent.latencies_ms()


def _describe(label: str, values: list[float]) -> tuple[float, float]:
    p50 = statistics.median(values)
    p99 = statistics.quantiles(values, n=100)[98]
    print(f"  {label:<34} n={len(values):4d}  p50 {p50:7.1f} ms   p99 {p99:7.1f} ms")
    return p50, p99


async def main(asks: int = 100) -> None:
    env = await start_dev_env()
    try:
        auto = Scenario()
        for i in range(asks):
            auto.bash(f"echo {i}")
        granted = Scenario()
        for _ in range(asks + 1):
            granted.bash("npm install left-pad")
        activity = await _run(env, auto.text("Done."), grant_first=False)
        workflow = await _run(env, granted.text("Done."), grant_first=True)
    finally:
        await env.shutdown()
    print(f"decisions: ask -> reply latency on the dev server, {asks} asks per path")
    a50, a99 = _describe("auto-approve in the stream activity", activity)
    w50, w99 = _describe("approve by grant in the workflow", workflow)
    print(f"  ratio workflow/activity: p50 {w50 / a50:.1f}x   p99 {w99 / a99:.1f}x")


def run() -> None:
    asyncio.run(main())
