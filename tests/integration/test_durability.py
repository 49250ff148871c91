"""Durability and time: a paused job survives a Temporal restart; ask-user times out, failing closed."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from jobgov import names
from jobgov.devserver import DevServer
from jobgov.temporal.payloads import JobResult, JobStatus, ResumeInput
from jobgov.temporal.plugin import JobGovPlugin
from jobgov.testing import FakeAgent, Scenario
from tests.integration.jobs import start_job, wait_for, wait_until

pytestmark = pytest.mark.temporal


async def test_paused_job_survives_a_temporal_restart_and_resumes(tmp_path: Path) -> None:
    db = tmp_path / "temporal.db"
    task_queue = f"jobgov-test-{uuid.uuid4()}"
    config = "budget:\n  job: {usd: 0.005, on_exceed: pause}\n"
    scenario = Scenario().bash("echo 1").bash("echo 2").bash("echo 3").text("Done.")
    async with FakeAgent(scenario) as agent:
        # First life of the server: the job runs over budget and pauses.
        async with DevServer(port=0, ui_port=None, db=db) as server:
            client = await Client.connect(server.address, plugins=[JobGovPlugin()])
            async with Worker(client, task_queue=task_queue):
                handle = await start_job(client, task_queue, agent.base_url, config=config)
                paused = await wait_for(handle, lambda s: s.state == "paused")
                await wait_until(lambda: bool(agent.aborts))
            port = server.port
        # The server is gone (and so is the worker). Second life, same SQLite file.
        async with DevServer(port=port, ui_port=None, db=db) as server:
            client = await Client.connect(server.address, plugins=[JobGovPlugin()])
            async with Worker(client, task_queue=task_queue):
                handle = client.get_workflow_handle(handle.id, result_type=JobResult)
                still = await wait_for(handle, lambda s: s.state == "paused")
                assert still.cost_usd == paused.cost_usd and still.decisions == paused.decisions
                await handle.execute_update(names.UPDATE_JOB_RESUME, ResumeInput(add_usd=1.0, by="ann"),
                                            result_type=JobStatus)
                result = (await asyncio.wait_for(handle.result(), 60)).status
    assert result.state == "completed"
    assert any("Continue" in p.text for p in agent.prompts)


async def test_ask_user_times_out_and_fails_closed(dev_env: WorkflowEnvironment, worker: Worker) -> None:
    """Nobody approves within ``approvals.timeout``: the ask is denied (the agent is told why).

    Real time on the dev server: the time-skipping server cannot skip while the job's stream
    activity runs (it runs for the job's whole life), so a short timeout is used instead.
    """
    async with FakeAgent(Scenario().bash("pip install requests").text("ok")) as agent:
        handle = await start_job(dev_env.client, worker.task_queue, agent.base_url,
                                 config="approvals: {timeout: 2s, on_timeout: deny}\n")
        ask = (await wait_for(handle, lambda s: bool(s.pending))).pending[0]
        assert ask.deadline is not None and ask.deadline - ask.asked_at == timedelta(seconds=2)
        result = (await asyncio.wait_for(handle.result(), 60)).status
    timed_out = next(d for d in result.decisions if d.request_id == ask.id)
    assert (timed_out.action, timed_out.actor, timed_out.reply) == ("timeout", "timeout", "reject")
    assert [(r.request_id, r.reply) for r in agent.replies] == [(ask.id, "reject")]
    assert agent.replies[0].message is not None and "nobody approved" in agent.replies[0].message
    assert result.state == "completed"


async def test_ask_user_timeout_can_kill(dev_env: WorkflowEnvironment, worker: Worker) -> None:
    async with FakeAgent(Scenario().bash("pip install requests").text("ok")) as agent:
        handle = await start_job(dev_env.client, worker.task_queue, agent.base_url,
                                 config="approvals: {timeout: 1s, on_timeout: kill}\n")
        result = (await asyncio.wait_for(handle.result(), 60)).status
    assert result.state == "killed" and agent.aborts
