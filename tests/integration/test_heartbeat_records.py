"""Automatic decisions recorded in the stream's heartbeat (0.6), on the real dev server.

A decision is recorded by a heartbeat before its reply and delivered later, with the next batch.
These tests hold the delivery back (``deliver_every`` of an hour) so that a decision is only in
the heartbeat when the job's run closes or its worker dies, and check that it still reaches the
audit trail, once.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from jobgov import names
from jobgov.temporal.payloads import KillInput
from jobgov.testing import FakeAgent, Scenario
from tests.integration.jobs import SilentAbort, held_worker, start_job, status, wait_for, wait_until

pytestmark = pytest.mark.temporal

async def signalled_asks(handle: WorkflowHandle[Any, Any]) -> list[str]:
    """Ask ids the job's event signals carried (every run of the chain is one here)."""
    ids = []
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            attrs = event.workflow_execution_signaled_event_attributes
            if attrs.signal_name == names.SIGNAL_JOB_EVENTS:
                batch = json.loads(attrs.input.payloads[0].data)
                ids += [item["ask"]["ask"]["id"] for item in batch["items"] if item["kind"] == "ask"]
    return ids


async def test_a_decision_still_in_the_heartbeat_when_the_job_is_killed_is_collected(
        dev_env: WorkflowEnvironment, task_queue: str) -> None:
    # Paced: the step's last events come seconds after its ask, while the job is killed.
    async with SilentAbort(Scenario().bash("ls -la").text("Done."), event_delay=0.5) as agent, \
            held_worker(dev_env, task_queue):
        handle = await start_job(dev_env.client, task_queue, agent.base_url)
        await wait_until(lambda: len(agent.replies) == 1, timeout=30)  # recorded, then replied
        assert not (await status(handle)).decisions  # not delivered: the workflow has not heard
        await handle.execute_update(names.UPDATE_JOB_KILL, KillInput(reason="test"))
        result = (await handle.result()).status
    assert result.state == "killed"
    assert [(d.request_id, d.action, d.actor) for d in result.decisions] == [
        (agent.replies[0].request_id, "auto-approve", "policy")]
    assert agent.replies[0].reply == "once"
    assert agent.replies[0].request_id not in await signalled_asks(handle)  # it came by collect_stream


async def test_a_decision_recorded_by_a_worker_that_dies_is_delivered_by_the_next_attempt(
        dev_env: WorkflowEnvironment, task_queue: str) -> None:
    async with FakeAgent(Scenario().bash("ls -la").text("Done."), event_delay=0.5) as agent:
        async with held_worker(dev_env, task_queue):
            handle = await start_job(dev_env.client, task_queue, agent.base_url)
            await wait_until(lambda: len(agent.replies) == 1, timeout=30)
        # That worker is gone, its decision undelivered. The stream's next attempt, on another
        # worker, finds the decision in its predecessor's heartbeat and delivers it first.
        async with Worker(dev_env.client, task_queue=task_queue):
            seen = await wait_for(handle, lambda s: bool(s.decisions), timeout=60)
            result = (await handle.result()).status
    request_id = agent.replies[0].request_id
    assert [(d.request_id, d.action) for d in seen.decisions] == [(request_id, "auto-approve")]
    assert result.state == "completed"
    assert [(d.request_id, d.action) for d in result.decisions] == [(request_id, "auto-approve")]
    assert len(agent.replies) == 1  # replied once: the next attempt found it answered
