"""Agents on many hosts: a control worker runs the workflows, a worker on the agent's host (another
``jobgov worker`` process, ``--agent-queue``) runs everything that talks to the agent or reads its
worktree. Where each activity ran is read back from the job's history."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType

from jobgov import names
from jobgov.client import JobGovClient
from jobgov.devserver import DevServer
from jobgov.testing import FakeAgent, Scenario, default_worktree
from tests.integration.jobs import jobgov_worker

pytestmark = pytest.mark.temporal


async def test_agent_side_activities_run_on_the_agent_host(tmp_path: Path) -> None:
    control, host, plan = f"ctl-{uuid.uuid4().hex[:6]}", f"host-{uuid.uuid4().hex[:6]}", f"p-{uuid.uuid4().hex[:6]}"
    async with (DevServer(port=0, ui_port=None, db=None) as dev,
                jobgov_worker(dev.address, "--task-queue", control) as control_pid,
                jobgov_worker(dev.address, "--agent-queue", host) as host_pid,
                FakeAgent(Scenario().bash("ls").bash("pip install x").text("Done.")) as agent):
        jg = await JobGovClient.connect(dev.address)
        await jg.start_job(plan, "remote", agent.base_url, default_worktree(), prompt="go", task_queue=control,
                           agent_queue=host)
        for _ in range(300):
            status = await jg.job_status("remote", plan)
            if status.pending:
                break
            await asyncio.sleep(0.1)
        await jg.approve("remote", status.pending[0].id, plan=plan)
        handle = jg.temporal.get_workflow_handle(names.job_workflow_id(plan, "remote"))
        result = await handle.result()
        history = await handle.fetch_history()
        await jg.temporal.get_workflow_handle(names.plan_workflow_id(plan)).terminate("test over")
    assert result["status"]["state"] == "completed"
    scheduled: dict[int, tuple[str, str]] = {}
    ran: dict[str, set[tuple[str, int]]] = {}
    workflow_tasks: set[int] = set()
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            scheduled[event.event_id] = (attrs.activity_type.name, attrs.task_queue.name)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attrs = event.activity_task_started_event_attributes
            activity, queue = scheduled[attrs.scheduled_event_id]
            ran.setdefault(activity, set()).add((queue, int(attrs.identity.split("@")[0])))
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            # The worker that completed the task says so (a Started event may carry no identity:
            # the server writes some of them itself).
            workflow_tasks.add(int(event.workflow_task_completed_event_attributes.identity.split("@")[0]))
    assert workflow_tasks == {control_pid}
    # A stream's Started event is written only when it closes, and the job's end cancels it: its
    # queue is the proof (only the agent-host worker polls it; the job saw every event through it).
    assert {q for a, q in scheduled.values() if a == names.ACTIVITY_STREAM_EVENTS} == {names.stream_task_queue(host)}
    for activity in (names.ACTIVITY_CREATE_SESSION, names.ACTIVITY_PROMPT, names.ACTIVITY_REPLY):
        assert ran[activity] == {(host, host_pid)}, activity
    for activity in (names.ACTIVITY_NOTIFY, names.ACTIVITY_REPORT_TO_PLAN):
        assert ran[activity] == {(control, control_pid)}, activity
