"""Human decisions by signal, for approval systems built on Temporal: a second workflow approves a
job; the ``temporal`` CLI sends one that cannot apply, and it is refused without changing anything."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from typing import Any

import pytest
from temporalio import activity
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor, Worker

from jobgov import names
from jobgov.temporal.payloads import ApproveInput, JobResult, PlanResumeInput
from jobgov.testing import FakeAgent, Scenario
from tests.conftest import binary
from tests.integration.approver import Approver
from tests.integration.jobs import plan_status, start_job, status, wait_for, wait_until

pytestmark = pytest.mark.temporal


async def test_another_workflow_approves_by_signal_and_a_bad_signal_is_refused(dev_env: WorkflowEnvironment,
                                                                              task_queue: str) -> None:
    client = dev_env.client
    async with (FakeAgent(Scenario().bash("pip install x").text("Done.")) as agent,
                Worker(client, task_queue=task_queue, workflows=[Approver])):
        handle = await start_job(client, task_queue, agent.base_url)
        ask = (await wait_for(handle, lambda s: bool(s.pending))).pending[0]

        # As typed in the README: the temporal CLI, a request id the job does not have.
        cli = subprocess.run(
            [binary("temporal"), "workflow", "signal", "--address", client.service_client.config.target_host,
             "--workflow-id", handle.id, "--name", "approve", "--input", '{"request_id": "per_nope", "by": "ann"}'],
            capture_output=True, text=True, timeout=60, check=False)
        assert cli.returncode == 0, cli.stderr
        refused = await wait_for(handle, lambda s: bool(s.refused))
        assert [(r.decision, r.request_id, r.by) for r in refused.refused] == [("approve", "per_nope", "ann")]
        assert "no pending ask per_nope" in refused.refused[0].reason
        assert refused.pending == refused.pending[:1] and not refused.decisions  # nothing else changed
        meta = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
        assert "Refused signal: approve per_nope by ann" in meta.current_details

        await client.execute_workflow(Approver.run, args=[handle.id, ask.id], id=f"approver-{uuid.uuid4()}",
                                      task_queue=task_queue)
        result: JobResult = await handle.result()
        assert [(d.request_id, d.action, d.actor) for d in result.status.decisions] == [
            (ask.id, "approve", "approver-workflow")]
        assert [r.reply for r in agent.replies] == ["once"]

        # The plan's resume by signal: the plan is not paused, so it is refused, and says why.
        plan = client.get_workflow_handle(names.plan_workflow_id(result.status.plan))
        await plan.signal(names.SIGNAL_PLAN_RESUME, PlanResumeInput(by="bob"))
        deadline = time.monotonic() + 30
        while not (plan_refused := (await plan_status(plan)).refused):
            assert time.monotonic() < deadline, "the plan never recorded the refused resume"
            await asyncio.sleep(0.1)
        assert [(r.decision, r.by) for r in plan_refused] == [("resume", "bob")]
        assert "not paused" in plan_refused[0].reason
        await plan.terminate("test over")


async def test_a_repeated_signal_applies_once(dev_env: WorkflowEnvironment, task_queue: str) -> None:
    client = dev_env.client
    async with FakeAgent(Scenario().bash("pip install x").text("Done.")) as agent, Worker(client,
                                                                                          task_queue=task_queue):
        handle = await start_job(client, task_queue, agent.base_url, prompt="go")
        ask = (await wait_for(handle, lambda s: bool(s.pending))).pending[0]
        for _ in range(2):
            await handle.signal(names.SIGNAL_JOB_APPROVE, ApproveInput(request_id=ask.id, by="ann"))
        final = await wait_for(handle, lambda s: bool(s.refused))
        assert [d.action for d in final.decisions] == ["approve"]
        assert [r.reason for r in final.refused] == [f"ask {ask.id} was already decided"]
        await handle.result()
        assert [r.reply for r in agent.replies] == ["once"]  # the agent was answered once
        assert (await status(handle)).decisions == final.decisions
        await client.get_workflow_handle(names.plan_workflow_id(final.plan)).terminate("test over")


class _HeldReports(Interceptor):
    """Holds every report to the plan until the worker shuts down: the job's main loop waits in it."""

    def __init__(self) -> None:
        self.held = 0

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        held = self

        class Inbound(ActivityInboundInterceptor):
            async def execute_activity(self, input: ExecuteActivityInput) -> Any:
                if activity.info().activity_type == names.ACTIVITY_REPORT_TO_PLAN:
                    held.held += 1
                    await asyncio.Event().wait()  # cancelled by the worker's shutdown
                return await super().execute_activity(input)

        return Inbound(next)


async def test_a_refused_signal_is_in_the_details_while_the_job_waits_on_an_activity(
        dev_env: WorkflowEnvironment, task_queue: str) -> None:
    """The status and the details agree at once: the refusal does not wait for the main loop (here
    held in a report to the plan) to publish. CI once read empty details after the status showed it."""
    client, reports = dev_env.client, _HeldReports()
    async with (FakeAgent(Scenario().bash("pip install x").text("Done.")) as agent,
                Worker(client, task_queue=task_queue, interceptors=[reports])):
        handle = await start_job(client, task_queue, agent.base_url)
        await wait_for(handle, lambda s: bool(s.pending))
        await wait_until(lambda: reports.held > 0)  # the main loop waits in a report
        await handle.signal(names.SIGNAL_JOB_APPROVE, ApproveInput(request_id="per_nope", by="ann"))
        await wait_for(handle, lambda s: bool(s.refused))
        meta = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
        assert "Refused signal: approve per_nope by ann" in meta.current_details
        await handle.terminate("test over")  # its plan never started: no report reached it
