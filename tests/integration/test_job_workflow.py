"""JobWorkflow and PlanWorkflow on the real Temporal dev server, against the fake agent.

The fake agent speaks opencode 1.18.33's captured protocol over real HTTP;
the worker runs jobgov's real activities (stream consumer, replies, aborts).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from jobgov import names
from jobgov.temporal.activities.bundle import AgentSettings
from jobgov.temporal.activities.stream_settings import StreamSettings
from jobgov.temporal.payloads import (
    ApproveInput,
    DenyInput,
    JobResult,
    JobStatus,
    KillInput,
    PlanResumeInput,
    PlanStatus,
    ResumeInput,
)
from jobgov.temporal.plugin import JobGovPlugin
from jobgov.temporal.state import DecisionRecord
from jobgov.testing import FakeAgent, Scenario
from tests.integration.jobs import plan_jobs, plan_status, start_job, status, wait_for, wait_until

pytestmark = pytest.mark.temporal

STEP_USD = 0.00375  # 1000 input + 50 output tokens at 3/15 USD per million


def step_finishes(agent: FakeAgent) -> list[str]:
    """The step-finish part ids the agent sent (each counted once by jobgov)."""
    return sorted({e["properties"]["part"]["id"] for e in agent.events if e["type"] == "message.part.updated"
                   and e["properties"]["part"].get("type") == "step-finish"})


def actions(result: JobStatus) -> dict[str, str]:
    return {d.request_id: d.action for d in result.decisions}


async def approve(handle: WorkflowHandle[Any, Any], request_id: str, **kw: Any) -> DecisionRecord:
    return await handle.execute_update(names.UPDATE_JOB_APPROVE, ApproveInput(request_id=request_id, **kw),
                                       result_type=DecisionRecord)


async def test_auto_decisions_ask_user_and_usage(dev_env: WorkflowEnvironment, worker: Worker) -> None:
    scenario = Scenario().bash("ls -la").bash("npm install left-pad").bash("cat /etc/passwd").text("Done.")
    async with FakeAgent(scenario) as agent:
        handle = await start_job(dev_env.client, worker.task_queue, agent.base_url)
        pending = await wait_for(handle, lambda s: bool(s.pending))
        assert pending.state == "awaiting-approval"
        ask = pending.pending[0]
        assert (ask.permission, ask.category) == ("bash", "install_packages")
        # The auto-approved ask was answered by the stream activity, before anyone looked.
        assert [r.reply for r in agent.replies] == ["once"]
        record = await approve(handle, ask.id, by="ann")
        assert (record.action, record.actor) == ("approve", "ann")
        result = (await handle.result()).status
    assert result.state == "completed"
    by_permission = {d.patterns[0]: (d.action, d.actor) for d in result.decisions}
    assert by_permission == {
        "ls -la": ("auto-approve", "policy"),
        "npm install left-pad": ("approve", "ann"),
        "cat /etc/passwd": ("deny", "policy"),
    }
    assert [r.reply for r in agent.replies] == ["once", "once", "reject"]
    assert agent.replies[2].message is not None and "Denied by jobgov policy" in agent.replies[2].message
    assert result.steps == 4 and result.tokens["total"] == 4 * 1050
    assert result.cost_usd == pytest.approx(4 * STEP_USD)
    assert result.cost_sources == ["override"]


async def test_deny_with_message_and_unknown_request(dev_env: WorkflowEnvironment, worker: Worker) -> None:
    # A second ask keeps the job running after the deny (else it may end before the last approve).
    scenario = Scenario().bash("pip install requests").bash("pip install other").text("ok")
    async with FakeAgent(scenario) as agent:
        handle = await start_job(dev_env.client, worker.task_queue, agent.base_url)
        ask = (await wait_for(handle, lambda s: bool(s.pending))).pending[0]
        with pytest.raises(WorkflowUpdateFailedError) as info:
            await approve(handle, "per_nope")
        assert "no pending ask per_nope" in str(info.value.cause)
        # One sentence for a person: the worker's stack trace stays out of the rejection.
        cause = info.value.cause
        assert isinstance(cause, ApplicationError) and cause.type == "InvalidDecision"
        assert cause.failure is not None and cause.failure.stack_trace == ""
        # A wrong key: the missing field is named, with the keys the input did have.
        with pytest.raises(WorkflowUpdateFailedError) as info:
            await handle.execute_update(names.UPDATE_JOB_APPROVE, {"requestid": ask.id}, result_type=DecisionRecord)
        assert isinstance(info.value.cause, ApplicationError) and info.value.cause.type == "InvalidInput"
        assert info.value.cause.message == "ApproveInput: request_id: Field required (the input has requestid)"
        await handle.execute_update(names.UPDATE_JOB_DENY, DenyInput(request_id=ask.id, by="bob", reason="vendor it"),
                                    result_type=DecisionRecord)
        second = (await wait_for(handle, lambda s: any(p.id != ask.id for p in s.pending))).pending[0]
        with pytest.raises(WorkflowUpdateFailedError) as info:
            await approve(handle, ask.id)  # already decided: rejected by the validator
        assert "already decided" in str(info.value.cause)
        await approve(handle, second.id)
        result = (await handle.result()).status
    assert actions(result)[ask.id] == "deny"
    denied = next(r for r in agent.replies if r.request_id == ask.id)
    assert denied.reply == "reject" and denied.message == "vendor it"


async def test_always_grants_the_exact_request_for_the_job(dev_env: WorkflowEnvironment, worker: Worker) -> None:
    scenario = Scenario().bash("npm install left-pad").bash("npm install left-pad").bash("npm install other").text("ok")
    async with FakeAgent(scenario) as agent:
        handle = await start_job(dev_env.client, worker.task_queue, agent.base_url)
        first = (await wait_for(handle, lambda s: bool(s.pending))).pending[0]
        await approve(handle, first.id, always=True)
        second = await wait_for(handle, lambda s: any(p.patterns == ["npm install other"] for p in s.pending))
        await approve(handle, second.pending[0].id)
        result = (await handle.result()).status
    assert [d.action for d in result.decisions] == ["approve-always", "grant", "approve"]
    # opencode's broad `always` is never forwarded: every reply is "once".
    assert [r.reply for r in agent.replies] == ["once", "once", "once"]


async def test_budget_warns_pauses_and_resumes(dev_env: WorkflowEnvironment, worker: Worker) -> None:
    config = "budget:\n  job: {usd: 0.01, warn_at: [0.5], on_exceed: pause}\n"
    scenario = Scenario().bash("echo 1").bash("echo 2").bash("echo 3").bash("echo 4").text("Done.")
    async with FakeAgent(scenario) as agent:
        handle = await start_job(dev_env.client, worker.task_queue, agent.base_url, config=config)
        paused = await wait_for(handle, lambda s: s.state == "paused")
        assert paused.paused_reason is not None and "budget exceeded" in paused.paused_reason
        assert any("50%" in w for w in paused.warnings)
        await wait_until(lambda: bool(agent.aborts))  # the pause aborted the agent's run
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update(names.UPDATE_JOB_RESUME, ResumeInput(), result_type=JobStatus)
        resumed = await handle.execute_update(names.UPDATE_JOB_RESUME, ResumeInput(add_usd=1.0, by="ann"),
                                              result_type=JobStatus)
        assert resumed.state != "paused"
        result = (await handle.result()).status
    assert result.state == "completed"
    assert any("Continue" in p.text for p in agent.prompts[1:]), "the continue prompt was sent"
    # The job ended after the continued run's own work, not at the aborted run's late idle.
    assert result.steps == len(step_finishes(agent)) and agent.prompts[-1].text.startswith("Continue")
    assert result.budget is not None and result.budget.limit is not None and result.budget.limit.usd == pytest.approx(1.01)


async def test_budget_kill(dev_env: WorkflowEnvironment, worker: Worker) -> None:
    config = "budget:\n  job: {tokens: 1500, on_exceed: kill}\n"
    async with FakeAgent(Scenario().bash("echo 1").bash("echo 2").bash("echo 3").text("x")) as agent:
        handle = await start_job(dev_env.client, worker.task_queue, agent.base_url, config=config)
        result = (await handle.result()).status
    assert result.state == "killed" and agent.aborts


async def test_kill_update(dev_env: WorkflowEnvironment, worker: Worker) -> None:
    async with FakeAgent(Scenario().bash("pip install x").text("x")) as agent:
        handle = await start_job(dev_env.client, worker.task_queue, agent.base_url)
        ask = (await wait_for(handle, lambda s: bool(s.pending))).pending[0]
        killed = await handle.execute_update(names.UPDATE_JOB_KILL, KillInput(by="ann"), result_type=JobStatus)
        assert killed.state == "killed"
        result: JobResult = await handle.result()
    assert actions(result.status)[ask.id] == "killed"
    assert agent.aborts and agent.replies[-1].reply == "reject"


async def test_stale_asks_are_never_approved(dev_env: WorkflowEnvironment, worker: Worker) -> None:
    async with FakeAgent(Scenario().bash("pip install x").text("x")) as agent:
        handle = await start_job(dev_env.client, worker.task_queue, agent.base_url)
        ask = (await wait_for(handle, lambda s: bool(s.pending))).pending[0]
        # Someone aborts the run outside jobgov: opencode keeps the ask listed (finding 3).
        session_id = next(iter(agent.sessions))
        async with __import__("httpx").AsyncClient() as http:
            await http.post(f"{agent.base_url}/session/{session_id}/abort")
        cancelled = await wait_for(handle, lambda s: ask.id in actions(s))
        assert actions(cancelled)[ask.id] == "cancelled"
        # Rejected by the validator, or the job has already ended: never approved either way.
        with pytest.raises((WorkflowUpdateFailedError, RPCError)) as info:
            await approve(handle, ask.id)
        if isinstance(info.value, WorkflowUpdateFailedError):
            assert "already decided" in str(info.value.cause)
        result = (await handle.result()).status
    # The run ended (aborted outside jobgov); the left-behind ask was rejected, never approved.
    assert result.state == "completed"
    assert [(r.request_id, r.reply) for r in agent.replies] == [(ask.id, "reject")]


async def test_duplicated_events_count_once(dev_env: WorkflowEnvironment, worker: Worker) -> None:
    async with FakeAgent(Scenario().bash("ls").bash("git status").text("ok"), duplicate_events=True) as agent:
        handle = await start_job(dev_env.client, worker.task_queue, agent.base_url)
        result = (await handle.result()).status
    assert result.steps == 3 and result.cost_usd == pytest.approx(3 * STEP_USD)
    assert len(result.decisions) == 2


async def test_stream_drop_and_reconcile(dev_env: WorkflowEnvironment, worker: Worker) -> None:
    scenario = Scenario().bash("ls").bash("pip install x").bash("git status").text("ok")
    async with FakeAgent(scenario) as agent:
        handle = await start_job(dev_env.client, worker.task_queue, agent.base_url)
        await wait_for(handle, lambda s: bool(s.pending))
        # Drop the stream: the ask and usage after it are learned again by reconciling.
        agent.drop_streams()
        ask = (await status(handle)).pending[0]
        await approve(handle, ask.id)
        result = (await handle.result()).status
    assert result.state == "completed" and result.steps == 4
    assert sorted(actions(result).values()) == ["approve", "auto-approve", "auto-approve"]


async def test_plan_budget_pauses_every_job_and_resumes_them(dev_env: WorkflowEnvironment, worker: Worker) -> None:
    plan = f"plan-{__import__('uuid').uuid4().hex[:8]}"
    config = "budget:\n  plan: {usd: 0.02, on_exceed: pause}\n"
    scenario = Scenario(); [scenario.bash(f"echo {i}") for i in range(6)]; scenario.text("Done.")  # noqa: E702
    # Paced runs, so the plan's hold arrives while the jobs still work.
    async with FakeAgent(scenario, event_delay=0.05) as a, FakeAgent(scenario, event_delay=0.05) as b:
        h1 = await start_job(dev_env.client, worker.task_queue, a.base_url, config=config, plan=plan, job="one")
        h2 = await start_job(dev_env.client, worker.task_queue, b.base_url, config=config, plan=plan, job="two")
        plan_handle = dev_env.client.get_workflow_handle(names.plan_workflow_id(plan))
        for h in (h1, h2):
            held = await wait_for(h, lambda s: s.state in ("paused", "completed"))
            assert held.state == "paused" and held.paused_reason is not None and "plan" in held.paused_reason
        with pytest.raises(WorkflowUpdateFailedError):
            await h1.execute_update(names.UPDATE_JOB_RESUME, ResumeInput(add_usd=1), result_type=JobStatus)
        assert (await plan_status(plan_handle)).paused
        await plan_handle.execute_update(names.UPDATE_PLAN_RESUME, PlanResumeInput(add_usd=1.0), result_type=PlanStatus)
        results = [(await h.result()).status for h in (h1, h2)]
    assert [r.state for r in results] == ["completed", "completed"]
    totals = await plan_status(plan_handle)
    assert totals.cost_usd == pytest.approx(sum(r.cost_usd for r in results))
    await plan_handle.terminate("test over")


async def test_worker_restart_mid_job(dev_env: WorkflowEnvironment, task_queue: str) -> None:
    scenario = Scenario().bash("ls").bash("pip install x").bash("git status").text("ok")
    async with FakeAgent(scenario) as agent:
        async with Worker(dev_env.client, task_queue=task_queue):
            handle = await start_job(dev_env.client, task_queue, agent.base_url)
            ask = (await wait_for(handle, lambda s: bool(s.pending))).pending[0]
        # The worker is gone; the job waits durably. A new worker picks it up.
        async with Worker(dev_env.client, task_queue=task_queue, max_cached_workflows=0):
            await approve(handle, ask.id)
            result = (await handle.result()).status
    assert result.state == "completed" and result.steps == 4
    assert [r.reply for r in agent.replies].count("once") == 3


async def test_continue_as_new_carries_state(dev_env: WorkflowEnvironment, task_queue: str) -> None:
    scenario = Scenario(); [scenario.bash(f"echo {i}") for i in range(30)]; scenario.text("Done.")  # noqa: E702
    # Paced, and every decision delivered at once: many small batches, a long history.
    client = await Client.connect(dev_env.client.service_client.config.target_host, plugins=[JobGovPlugin(
        settings=AgentSettings(stream=StreamSettings(deliver_every=0.0)))])
    async with FakeAgent(scenario, event_delay=0.01) as agent, Worker(client, task_queue=task_queue):
        handle = await start_job(dev_env.client, task_queue, agent.base_url, continue_as_new_after=100)
        result = (await handle.result()).status
        first_run = await dev_env.client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id).describe()
    assert first_run.status == WorkflowExecutionStatus.CONTINUED_AS_NEW
    assert result.state == "completed" and result.steps == 31 and len(result.decisions) == 30
    assert result.cost_usd == pytest.approx(31 * STEP_USD)
    assert len(agent.replies) == 30


async def test_existing_session_without_prompt(dev_env: WorkflowEnvironment, worker: Worker) -> None:
    async with FakeAgent(Scenario().bash("ls").text("ok")) as agent:
        async with __import__("httpx").AsyncClient(base_url=agent.base_url) as http:
            session_id = (await http.post("/session", json={})).json()["id"]
            handle = await start_job(dev_env.client, worker.task_queue, agent.base_url, prompt=None,
                                     session_id=session_id)
            await wait_for(handle, lambda s: s.session_id == session_id)
            await wait_until(lambda: agent.subscriber_count >= 1)  # the job watches before the prompt
            await http.post(f"/session/{session_id}/prompt_async", json={"parts": [{"type": "text", "text": "go"}]})
        result = (await handle.result()).status
    assert result.state == "completed" and result.session_id == session_id


async def test_a_normal_job_end_stops_its_stream_quietly(dev_env: WorkflowEnvironment, task_queue: str,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    """The stream learns from a heartbeat that the job's run has closed: an info line, no failure.

    Heartbeats go out at most every second here (24 s by default), so the end is seen soon.
    """
    from datetime import timedelta

    caplog.set_level(logging.INFO, logger="temporalio.activity")
    async with FakeAgent(Scenario().bash("ls").text("Done.")) as agent, Worker(
        dev_env.client, task_queue=task_queue, max_heartbeat_throttle_interval=timedelta(seconds=1),
        default_heartbeat_throttle_interval=timedelta(seconds=1),
    ):
        handle = await start_job(dev_env.client, task_queue, agent.base_url)
        assert (await handle.result()).status.state == "completed"
        await wait_until(lambda: "the job's run has closed; stream stopped" in caplog.text, timeout=30)
        await wait_until(lambda: agent.subscriber_count == 0, timeout=10)
    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING and "stream_events" in str(r.__dict__)]
    assert not noisy, [r.getMessage() for r in noisy]


async def test_a_cancel_request_governs_like_kill(dev_env: WorkflowEnvironment, worker: Worker) -> None:
    """The UI's "Request Cancellation" (``temporal workflow cancel``): the agent's run is aborted,
    the pending ask rejected, and the job ends ``killed`` (the reason says: a cancel) in its status
    and search attributes, while Temporal shows the execution cancelled."""
    from temporalio.client import WorkflowFailureError
    from temporalio.exceptions import CancelledError

    async with FakeAgent(Scenario().bash("pip install x").text("x")) as agent:
        handle = await start_job(dev_env.client, worker.task_queue, agent.base_url)
        ask = (await wait_for(handle, lambda s: bool(s.pending))).pending[0]
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        assert isinstance(failure.value.cause, CancelledError)
        assert agent.aborts and [(r.request_id, r.reply) for r in agent.replies] == [(ask.id, "reject")]
    described = await handle.describe()
    assert described.status == WorkflowExecutionStatus.CANCELED
    attributes = described.typed_search_attributes
    assert (attributes.get(names.SA_STATE), attributes.get(names.SA_PENDING_ASKS)) == ("killed", 0)
    final = await status(handle)  # the query replays the closed history to its end
    assert final.state == "killed" and final.pending == []
    [record] = [d for d in final.decisions if d.request_id == ask.id]
    assert (record.action, record.reply) == ("killed", "reject") and "cancelled through Temporal" in (
        record.message or "")
    from temporalio.worker import Replayer

    from jobgov.temporal.plugin import JobGovPlugin

    await Replayer(workflows=[], plugins=[JobGovPlugin()]).replay_workflow(await handle.fetch_history())


async def test_the_plan_hears_every_change_of_a_jobs_state(dev_env: WorkflowEnvironment, worker: Worker) -> None:
    """``plan status`` shows a job waiting for a person as such, not the "running" of its last step."""
    async with FakeAgent(Scenario().bash("pip install x").text("x")) as agent:
        handle = await start_job(dev_env.client, worker.task_queue, agent.base_url)
        first = await wait_for(handle, lambda s: bool(s.pending))
        plan = dev_env.client.get_workflow_handle(names.plan_workflow_id(first.plan))

        async def job_state() -> str | None:
            return (await plan_jobs(plan)).get("job")

        states: list[str | None] = []

        async def reaches(state: str) -> bool:
            states.append(await job_state())
            return states[-1] == state

        deadline = asyncio.get_running_loop().time() + 30
        while not await reaches("awaiting-approval"):
            assert asyncio.get_running_loop().time() < deadline, states[-5:]
            await asyncio.sleep(0.1)
        await approve(handle, first.pending[0].id)
        await handle.result()
        deadline = asyncio.get_running_loop().time() + 30
        while not await reaches("completed"):
            assert asyncio.get_running_loop().time() < deadline, states[-5:]
            await asyncio.sleep(0.1)
        await plan.terminate("test over")


async def test_a_working_jobs_refreshes_ride_on_its_deliveries(dev_env: WorkflowEnvironment, worker: Worker) -> None:
    """A job at work (a step a second for 12 s, its plan without a budget) reports to its plan when
    its state changes, not every few seconds, and no refresh timer fires: its deliveries do the
    refreshes. The plan still ends with the job's exact totals (release 0.8)."""
    scenario = Scenario()
    for i in range(12):
        scenario.bash(f"ls {i}")
    async with FakeAgent(scenario.text("Done."), event_delay=0.1) as agent:
        handle = await start_job(dev_env.client, worker.task_queue, agent.base_url)
        result = (await handle.result()).status
    assert result.state == "completed" and len(agent.replies) == 12
    plan = dev_env.client.get_workflow_handle(names.plan_workflow_id(result.plan))
    reported = {j.job: j for j in (await plan_status(plan)).jobs}["job"]
    assert result.tokens["total"] > 0
    assert (reported.state.value, reported.tokens, float(reported.cost_usd)) == (
        "completed", result.tokens["total"], result.cost_usd)
    await plan.terminate("test over")
    events = (await handle.fetch_history()).events
    started = next(e.event_time.ToDatetime() for e in events
                   if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED)
    ended = events[-1].event_time.ToDatetime()
    assert (ended - started).total_seconds() > 10  # long enough for two 0.7 refreshes
    reports = [e for e in events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
               and e.activity_task_scheduled_event_attributes.activity_type.name == names.ACTIVITY_REPORT_TO_PLAN]
    assert len(reports) <= 3, len(reports)  # starting or running, completed; 0.7 added one each 5 s
    assert not [e for e in events if e.event_type == EventType.EVENT_TYPE_TIMER_FIRED]


async def test_a_lost_agent_shows_in_status_and_is_notified(dev_env: WorkflowEnvironment, worker: Worker) -> None:
    """The agent goes away mid-job (an ask pending): status says so at once, with when and why,
    a notification follows after ``agent.unreachable_notify_after``, and the job keeps retrying."""
    config = "agent: {unreachable_notify_after: 1s}\n"
    agent = FakeAgent(Scenario().bash("pip install x").text("x"))
    await agent.start()
    try:
        handle = await start_job(dev_env.client, worker.task_queue, agent.base_url, config=config)
        await wait_for(handle, lambda s: bool(s.pending))
    finally:
        await agent.stop()
    lost = await wait_for(handle, lambda s: s.agent is not None and not s.agent.reachable, timeout=20)
    assert lost.state == "agent-unreachable" and lost.agent is not None and "ConnectError" in (lost.agent.error or "")
    assert lost.pending  # still known, and decidable: the reply goes out once the agent is back
    seen: list[object] = []  # the search attribute says so too (upserted with the task that learned it)
    while not seen or seen[-1] != "agent-unreachable":
        assert len(seen) < 100, seen[-3:]
        if seen:
            await asyncio.sleep(0.1)
        seen.append((await handle.describe()).typed_search_attributes.get(names.SA_STATE))
    noticed = await wait_for(handle, lambda s: any("has been unreachable" in w for w in s.warnings), timeout=20)
    assert noticed.agent is not None and noticed.agent.notified
    # (A kill now would wait minutes for its abort and reply to fail against the gone agent.)
    await handle.terminate("test over")


async def test_a_run_that_ends_unfinished_is_continued_or_fails(dev_env: WorkflowEnvironment, worker: Worker) -> None:
    """The agent dies mid-step (opencode restarted): the job is never "completed" with the work
    undone. By default it sends the continue prompt; with ``on_interrupted: fail`` it fails."""
    async with FakeAgent(Scenario().bash("ls").crash().bash("echo never")) as agent:
        handle = await start_job(dev_env.client, worker.task_queue, agent.base_url)
        result = (await handle.result()).status
    continue_prompt = "Continue with the task where you left off."
    assert [p.text for p in agent.prompts] == ["Do the task.", continue_prompt]
    assert result.state == "completed"  # the continued run (the fake's default turn) finished
    assert any("ended unfinished" in w and "never completed" in w for w in result.warnings)

    async with FakeAgent(Scenario().bash("ls").crash()) as agent:
        handle = await start_job(dev_env.client, worker.task_queue, agent.base_url,
                                 config="agent: {on_interrupted: fail}\n")
        result = (await handle.result()).status
    assert result.state == "failed" and len(agent.prompts) == 1
    assert result.error is not None and result.error.startswith("the run ended unfinished: the agent's last step")


async def test_a_start_on_an_agent_that_never_answers_warns_then_fails(dev_env: WorkflowEnvironment,
                                                                       worker: Worker) -> None:
    from temporalio.client import WorkflowFailureError

    from jobgov.devserver import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    handle = await start_job(dev_env.client, worker.task_queue, dead, config="agent: {start_timeout: 4s}\n")
    retrying = await wait_for(handle, lambda s: any("cannot create the session" in w for w in s.warnings))
    assert retrying.state == "starting" and dead in retrying.warnings[-1]
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    assert f"the agent at {dead} did not answer within 0:00:04" in str(failure.value.cause)
    attributes = (await handle.describe()).typed_search_attributes
    assert attributes.get(names.SA_STATE) == "failed"
