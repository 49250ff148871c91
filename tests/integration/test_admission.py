"""A worker that is full: jobs beyond its ``max_jobs`` wait, visibly and unprompted, and start when a
slot frees; the jobs it holds are not slowed by them (their calls have slots of their own)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from jobgov import names
from jobgov.temporal.payloads import ApproveInput, JobResult, JobStatus, KillInput
from jobgov.temporal.plugin import JobGovPlugin
from jobgov.temporal.state import DecisionRecord
from jobgov.testing import FakeAgent, Scenario
from tests.integration.jobs import plan_jobs, start_job, wait_for

pytestmark = pytest.mark.temporal


async def until_says(state: str, read: Callable[[], Awaitable[str | None]]) -> None:
    """Wait until ``read()`` says ``state`` (it is read every 0.1 s, for 30 s at most)."""
    deadline = time.monotonic() + 30
    seen: list[str | None] = []
    while not seen or seen[-1] != state:
        assert time.monotonic() < deadline, seen[-5:]
        if seen:
            await asyncio.sleep(0.1)
        seen.append(await read())


async def plan_job_state(plan: WorkflowHandle[Any, Any], job: str, state: str) -> None:
    """Wait until the plan's report of ``job`` says ``state``."""
    async def read() -> str | None:
        return (await plan_jobs(plan)).get(job)
    await until_says(state, read)


async def search_attribute_state(handle: WorkflowHandle[Any, Any], state: str) -> None:
    """Wait until the job's ``JobGovState`` search attribute says ``state``."""
    async def read() -> str | None:
        return (await handle.describe()).typed_search_attributes.get(names.SA_STATE)
    await until_says(state, read)


def with_max_jobs(client: Client, max_jobs: int) -> Client:
    config = client.config()
    config["plugins"] = [JobGovPlugin(max_jobs=max_jobs)]
    return Client(**config)


async def test_jobs_beyond_max_jobs_wait_queued_and_start_when_a_slot_frees(dev_env: WorkflowEnvironment) -> None:
    client = with_max_jobs(dev_env.client, 1)
    queue, plan = f"jobgov-test-{uuid.uuid4()}", f"plan-{uuid.uuid4().hex[:8]}"
    async with (FakeAgent(Scenario().bash("pip install x").text("done")) as first_agent,
                FakeAgent(Scenario().bash("ls").text("done")) as second_agent,
                FakeAgent(Scenario().bash("ls").text("done")) as third_agent,
                Worker(client, task_queue=queue) as worker):
        assert worker.task_queue == queue
        first = await start_job(client, queue, first_agent.base_url, plan=plan, job="first")
        ask = (await wait_for(first, lambda s: bool(s.pending))).pending[0]  # holds the only slot

        second = await start_job(client, queue, second_agent.base_url, plan=plan, job="second")
        third = await start_job(client, queue, third_agent.base_url, plan=plan, job="third")
        queued = await wait_for(second, lambda s: s.state == "queued")
        assert queued.queued is not None and names.stream_task_queue(queue) in queued.queued
        assert "--max-jobs" in queued.queued
        await wait_for(third, lambda s: s.state == "queued")
        # Visible where people look: the search attribute, the details, the plan. The search
        # attribute is upserted once the report to the plan that the queueing sent is done.
        await search_attribute_state(second, "queued")
        assert (await second.fetch_history()).events  # the workflow runs: it is the stream that waits
        meta = await second.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
        assert "**Queued**: no worker has taken its event stream" in meta.current_details
        plan_handle = client.get_workflow_handle(names.plan_workflow_id(plan))
        await plan_job_state(plan_handle, "second", "queued")

        # The job it holds is not slowed: a person's decision still reaches its agent.
        await first.execute_update(names.UPDATE_JOB_APPROVE, ApproveInput(request_id=ask.id), result_type=DecisionRecord)
        # Killing a queued job ends it without ever prompting its agent.
        killed = await third.execute_update(names.UPDATE_JOB_KILL, KillInput(by="ann"), result_type=JobStatus)
        assert killed.state == "killed"
        assert (await third.result()).status.state == "killed"

        assert (await first.result()).status.state == "completed"
        result: JobResult = await second.result()  # the freed slot takes its stream
        assert result.status.state == "completed" and result.status.queued is None
        assert [p.text for p in second_agent.prompts] == ["Do the task."]
        assert third_agent.prompts == []
        await plan_handle.terminate("test over")


async def test_max_jobs_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least one job"):
        JobGovPlugin(max_jobs=0)
