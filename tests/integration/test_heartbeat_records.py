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
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import RecordActivityTaskHeartbeatRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor, Worker

from jobgov import names
from jobgov.temporal.activities.bundle import AgentSettings
from jobgov.temporal.activities.stream_settings import StreamSettings
from jobgov.temporal.payloads import KillInput
from jobgov.temporal.plugin import JobGovPlugin
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


class _RecordProbe(Interceptor):
    """When a run collects its stream's records, asks the server what a record the stream made at
    that moment would be answered: a heartbeat with the stream's own task token, carrying the
    details the stream last recorded (read back by ``describe``), so nothing recorded changes."""

    def __init__(self) -> None:
        self.tokens: dict[str, bytes] = {}  # run id -> that run's stream attempt
        self.answers: list[str] = []

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        probe = self

        class Inbound(ActivityInboundInterceptor):
            async def execute_activity(self, input: ExecuteActivityInput) -> Any:
                info = activity.info()
                if info.activity_type == names.ACTIVITY_STREAM_EVENTS:
                    probe.tokens[info.workflow_run_id or ""] = info.task_token
                elif info.activity_type == names.ACTIVITY_COLLECT_STREAM:
                    probe.answers.append(await probe.record_now(info))
                return await super().execute_activity(input)

        return Inbound(next)

    async def record_now(self, info: activity.Info) -> str:
        client = activity.client()
        described = await client.get_workflow_handle(info.workflow_id or "", run_id=info.workflow_run_id).describe()
        [stream] = [p for p in described.raw_description.pending_activities
                    if p.activity_type.name == names.ACTIVITY_STREAM_EVENTS]
        try:
            answer = await client.workflow_service.record_activity_task_heartbeat(
                RecordActivityTaskHeartbeatRequest(task_token=self.tokens[info.workflow_run_id or ""],
                                                   namespace=client.namespace, details=stream.heartbeat_details))
        except RPCError as exc:
            return f"refused: {exc.status.name}"
        return "cancelled" if answer.cancel_requested else "recorded"


async def test_once_a_run_collects_its_streams_records_the_stream_can_record_no_more(
        dev_env: WorkflowEnvironment, task_queue: str) -> None:
    """Each run of the chain requests its stream's cancel before it collects (names.PATCH_0_9): a
    decision the stream records after the collect is answered "cancelled" and not applied. When
    the collect came first, a decision recorded and replied after it reached no history once the
    job's newer run had ended (CI: 29 of 30 decisions in test_continue_as_new_carries_state)."""
    probe = _RecordProbe()
    scenario = Scenario(); [scenario.bash(f"echo {i}") for i in range(12)]; scenario.text("Done.")  # noqa: E702
    # Every decision delivered at once: many small batches, a long history.
    client = await Client.connect(dev_env.client.service_client.config.target_host, plugins=[JobGovPlugin(
        settings=AgentSettings(stream=StreamSettings(deliver_every=0.0)))])
    async with FakeAgent(scenario, event_delay=0.01) as agent, Worker(client, task_queue=task_queue,
                                                                      interceptors=[probe]):
        handle = await start_job(dev_env.client, task_queue, agent.base_url, continue_as_new_after=100)
        result = (await handle.result()).status
    first = await dev_env.client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id).describe()
    assert first.status == WorkflowExecutionStatus.CONTINUED_AS_NEW
    assert probe.answers and set(probe.answers) == {"cancelled"}, probe.answers
    assert result.state == "completed"
    assert sorted(d.request_id for d in result.decisions) == sorted(r.request_id for r in agent.replies)
    assert len(agent.replies) == 12
