"""How many history events an agent step costs, and what a job's run carries across continue-as-new.

One job of ``steps`` tool steps (each raising one auto-approved ask, each reporting usage) runs
on the real dev server with the fake agent; the events of every run of its continue-as-new
chain are counted.
"""

from __future__ import annotations

import asyncio
import json
import uuid

from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from bench import show
from jobgov.testing import FakeAgent, Scenario
from tests.conftest import start_dev_env
from tests.integration.jobs import start_job


async def _runs(env: WorkflowEnvironment, workflow_id: str, first_run: str) -> list[WorkflowHistory]:
    """Every run of the chain, oldest first, followed through each run's continued-as-new event."""
    histories, run_id = [], first_run
    while run_id:
        history = await env.client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        histories.append(history)
        last = history.events[-1]
        run_id = (last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
                  if last.HasField("workflow_execution_continued_as_new_event_attributes") else "")
    return histories


def kinds(runs: list[WorkflowHistory]) -> dict[str, int]:
    """Event types over a chain of runs, most frequent first."""
    from collections import Counter

    from temporalio.api.enums.v1 import EventType

    counts = Counter(EventType.Name(e.event_type).removeprefix("EVENT_TYPE_") for run in runs for e in run.events)
    return dict(counts.most_common())


async def main(steps: int = 300, continue_after: int = 1000) -> dict[str, str]:
    env = await start_dev_env()
    try:
        task_queue = f"bench-{uuid.uuid4()}"
        async with FakeAgent(Scenario.synthetic(steps)) as agent, Worker(env.client, task_queue=task_queue):
            handle = await start_job(env.client, task_queue, agent.base_url,
                                     continue_as_new_after=continue_after)
            await handle.result()
            runs = await _runs(env, handle.id, handle.first_execution_run_id or "")
    finally:
        await env.shutdown()
    events = [len(run.events) for run in runs]
    carried = []
    for run in runs[1:]:
        first = run.events[0].workflow_execution_started_event_attributes
        carried.append(sum(len(p.data) for p in first.input.payloads))
    print("  event types:", kinds(runs))
    for run in runs:
        for e in run.events:
            if e.HasField("workflow_task_failed_event_attributes"):
                print("  workflow task failed:", e.workflow_task_failed_event_attributes.failure.message[:300])
    figures = {
        "history events per agent step": f"{sum(events) / steps:.1f} ({sum(events)} events, {steps} steps)",
        "runs of the continue-as-new chain": f"{len(runs)} (largest {max(events)} events)",
        "input carried into a new run": f"largest {max(carried) / 1024:.1f} KB" if carried else "none",
    }
    return show(f"history: one job of {steps} steps, continue-as-new after {continue_after} events", figures)


def run() -> dict[str, str]:
    return asyncio.run(main())


def run_long() -> dict[str, str]:
    """A 10,000-step job with the production continue-as-new point (4,000 events): about 4 minutes."""
    return asyncio.run(main(steps=10_000, continue_after=4000))


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))

