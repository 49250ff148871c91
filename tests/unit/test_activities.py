"""AgentActivities in ActivityEnvironment: error translation, notify, plan reports, stream wiring."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import ActivityEnvironment

from jobgov import names
from jobgov.configfile import parse_plan_config
from jobgov.domain.items import SessionItem
from jobgov.opencode.client import AgentClient, new_http_client
from jobgov.temporal.activities import AgentActivities, AgentSettings, StreamSettings
from jobgov.temporal.activities.errors import ERROR_AGENT_HTTP, ERROR_AGENT_REJECTED
from jobgov.temporal.activities.notify import expand_env
from jobgov.temporal.payloads import (
    AbortInput,
    CreateSessionInput,
    EventBatch,
    NotifyInput,
    PlanInput,
    PlanJobReport,
    PromptInput,
    ReplyInput,
    ReportToPlanInput,
    StreamInput,
)
from jobgov.temporal.state import JobState
from jobgov.testing import FakeAgent
from tests.helpers import answering_true

URL = "http://agent.test"


def activities(handler: Any, **settings: Any) -> AgentActivities:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return AgentActivities(http, AgentSettings(**settings), environ={"HOOK_TOKEN": "s3cret"})


def test_all_activities_and_their_names() -> None:
    definitions = [activity._Definition.must_from_callable(f) for f in AgentActivities().all_activities()]
    defined = {d.name for d in definitions}
    assert defined == {
        names.ACTIVITY_STREAM_EVENTS, names.ACTIVITY_CREATE_SESSION, names.ACTIVITY_PROMPT, names.ACTIVITY_REPLY,
        names.ACTIVITY_ABORT, names.ACTIVITY_NOTIFY, names.ACTIVITY_REPORT_TO_PLAN, names.ACTIVITY_COLLECT_STREAM,
    }  # fmt: skip


async def test_lazy_http_client_is_created_once_and_closed() -> None:
    acts = AgentActivities()
    first = acts.http
    assert acts.http is first and first.follow_redirects is False
    await acts.aclose()
    assert first.is_closed


async def test_the_plugin_opens_and_closes_the_clients_with_the_worker() -> None:
    from jobgov.temporal.plugin import JobGovPlugin

    plugin = JobGovPlugin()
    acts = plugin.agent_activities
    async with acts.running(), acts.running():
        calls = acts._client()
        # Streams hold a connection for a job's life: each has a client of its own, closed with it.
        async with acts._stream_client() as one, acts._stream_client() as other:
            assert len({id(calls), id(one), id(other)}) == 3 and not one.is_closed
        assert one.is_closed and other.is_closed and not calls.is_closed
    assert calls.is_closed


async def test_a_client_given_to_the_plugin_is_left_open() -> None:
    from jobgov.temporal.plugin import JobGovPlugin

    async with httpx.AsyncClient() as mine:
        plugin = JobGovPlugin(http=mine)
        async with plugin.agent_activities.running():
            assert plugin.agent_activities.http is mine
            async with plugin.agent_activities._stream_client() as streams:
                assert streams is mine
        assert not mine.is_closed


async def test_agent_calls() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        route = (request.method, request.url.path)
        if route == ("POST", "/session"):
            return httpx.Response(200, json={"id": "ses_1"})
        if route == ("POST", "/session/ses_1/prompt_async"):
            return httpx.Response(204)
        if route == ("POST", "/permission/per_1/reply"):
            return httpx.Response(200, json=True)
        if route == ("POST", "/permission/per_2/reply"):
            return httpx.Response(404, json={"_tag": "PermissionNotFoundError", "requestID": "per_2"})
        if route == ("POST", "/session/ses_1/abort"):
            return httpx.Response(200, json=True)
        return httpx.Response(500)

    acts, env = activities(handler), ActivityEnvironment()
    assert await env.run(acts.create_session, CreateSessionInput(agent_url=URL, title="p/j")) == "ses_1"
    await env.run(acts.prompt, PromptInput(agent_url=URL, session_id="ses_1", text="go"))
    assert await env.run(acts.reply, ReplyInput(agent_url=URL, request_id="per_1", reply="once")) is True
    assert await env.run(acts.reply, ReplyInput(agent_url=URL, request_id="per_2", reply="reject")) is False
    await env.run(acts.abort, AbortInput(agent_url=URL, session_id="ses_1"))


async def test_agent_errors_become_temporal_errors() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/prompt_async"):
            return httpx.Response(404, json={"name": "NotFoundError", "data": {"message": "Session not found"}})
        return httpx.Response(503, headers={"Retry-After": "2"})

    acts, env = activities(handler), ActivityEnvironment()
    with pytest.raises(ApplicationError) as rejected:
        await env.run(acts.prompt, PromptInput(agent_url=URL, session_id="ses_9", text="go"))
    assert rejected.value.non_retryable and rejected.value.type == ERROR_AGENT_REJECTED
    assert "Session not found" in rejected.value.message
    with pytest.raises(ApplicationError) as busy:
        await env.run(acts.abort, AbortInput(agent_url=URL, session_id="ses_1"))
    assert not busy.value.non_retryable and busy.value.type == ERROR_AGENT_HTTP
    assert busy.value.next_retry_delay == timedelta(seconds=2)


# ---------------------------------------------------------------------------- notify


def test_expand_env() -> None:
    assert expand_env("https://h/${A}/x?t=${B}", {"A": "1", "B": "2"}) == ("https://h/1/x?t=2", [])
    assert expand_env("https://h/${A}/$B", {}) == ("https://h//$B", ["A"])


def note(webhook: str | None) -> NotifyInput:
    return NotifyInput(kind="paused", plan="p", job="j", workflow_id="wf", message="budget exceeded", webhook=webhook)


async def test_notify_posts_json_with_secrets_from_the_worker_env(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    with caplog.at_level(logging.INFO):
        await ActivityEnvironment().run(activities(handler).notify, note("https://hooks.test/${HOOK_TOKEN}"))
    (request,) = seen
    assert str(request.url) == "https://hooks.test/s3cret"
    payload = json.loads(request.content)
    assert payload["kind"] == "paused" and payload["message"] == "budget exceeded" and "webhook" not in payload
    assert payload["text"] == "[jobgov] paused p/j: budget exceeded"
    assert "budget exceeded" in caplog.text and "s3cret" not in caplog.text


async def test_notify_without_webhook_only_logs(caplog: pytest.LogCaptureFixture) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no request expected")

    with caplog.at_level(logging.INFO):
        await ActivityEnvironment().run(activities(handler).notify, note(None))
        await ActivityEnvironment().run(activities(handler).notify, note("https://hooks.test/${MISSING}"))
    assert "MISSING not set" in caplog.text


@pytest.mark.parametrize(("status", "attempts"), [(500, 3), (429, 3), (400, 1), (None, 3)])
async def test_webhook_failures_never_fail_the_activity(
    status: int | None, attempts: int, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if status is None:
            raise httpx.ConnectError("refused https://hooks.test/s3cret", request=request)
        return httpx.Response(status)

    acts = activities(handler, webhook_attempts=3, webhook_backoff=0.01)
    await ActivityEnvironment().run(acts.notify, note("https://hooks.test/${HOOK_TOKEN}"))
    assert len(calls) == attempts
    assert "failed" in caplog.text and "s3cret" not in caplog.text


# ---------------------------------------------------------------------------- Temporal client use


class FakeHandle:
    def __init__(self, client: FakeClient, workflow_id: str, run_id: str | None) -> None:
        self.client, self.workflow_id, self.run_id = client, workflow_id, run_id

    async def signal(self, name: str, arg: Any) -> None:
        self.client.signals.append((self.workflow_id, self.run_id, name, arg))
        if self.client.failures:
            raise self.client.failures.pop(0)


class FakeClient:
    """The two Client methods the activities use."""

    def __init__(self) -> None:
        self.started: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        self.signals: list[tuple[str, str | None, str, Any]] = []
        self.failures: list[Exception] = []

    async def start_workflow(self, *args: Any, **kwargs: Any) -> None:
        self.started.append((args, kwargs))

    def get_workflow_handle(self, workflow_id: str, *, run_id: str | None = None) -> FakeHandle:
        return FakeHandle(self, workflow_id, run_id)


def environment(client: FakeClient, **info: Any) -> ActivityEnvironment:
    env = ActivityEnvironment(client=cast(Client, client))
    env.info = replace(env.info, **info)
    return env


async def test_report_to_plan_signals_with_start() -> None:
    client = FakeClient()
    report = PlanJobReport(
        workflow_id="jobgov-job-p-j", job="j", seq=3, cost_usd=Decimal(1), tokens=10, state=JobState.RUNNING
    )
    await environment(client, task_queue="q1").run(
        AgentActivities().report_to_plan, ReportToPlanInput(plan="p", budget=None, report=report)
    )
    ((args, kwargs),) = client.started
    assert args == (names.PLAN_WORKFLOW, PlanInput(plan="p", budget=None))
    assert kwargs == {"id": names.plan_workflow_id("p"), "task_queue": "q1",
                      "start_signal": names.SIGNAL_PLAN_JOB_REPORT, "start_signal_args": [report]}  # fmt: skip


def rpc(status: RPCStatusCode) -> RPCError:
    return RPCError(status.name, status, b"")


async def test_stream_events_signals_its_run_and_stops_when_the_workflow_is_gone(tmp_path: Path) -> None:
    client = FakeClient()
    # One transient failure is retried in place; NOT_FOUND ends the activity cleanly.
    client.failures = [rpc(RPCStatusCode.UNAVAILABLE)]
    async with FakeAgent(directory=str(tmp_path)) as fake, new_http_client() as http:
        settings = AgentSettings(stream=StreamSettings(heartbeat_every=10.0, backoff_min=0.05))
        acts = AgentActivities(http, settings)
        sid = await acts.agent(fake.base_url).create_session("t")
        env = environment(client, workflow_id="wf-1", workflow_run_id="run-1", heartbeat_timeout=timedelta(seconds=1))
        beats: list[dict[str, Any]] = []
        env.on_heartbeat = lambda *details: beats.append(details[0])
        policy = parse_plan_config("").policy_for(None)
        stream_input = StreamInput(agent_url=fake.base_url, session_id=sid, worktree=str(tmp_path), policy=policy)
        task = asyncio.create_task(env.run(acts.stream_events, stream_input))
        async with asyncio.timeout(5):
            while len(client.signals) < 2:  # "connected", failed once, then delivered
                await asyncio.sleep(0.01)
        workflow_id, run_id, name, batch = client.signals[1]
        assert (workflow_id, run_id, name) == ("wf-1", "run-1", names.SIGNAL_JOB_EVENTS)
        assert isinstance(batch, EventBatch) and batch.items == [SessionItem(status="connected")]
        async with asyncio.timeout(5):  # every half heartbeat timeout (0.5 s), though 10 s was configured
            while len(beats) < 2:
                await asyncio.sleep(0.01)
        client.failures = [rpc(RPCStatusCode.NOT_FOUND)]
        await fake.emit({"id": "evt_1", "type": "session.idle", "properties": {"sessionID": sid}})
        await asyncio.wait_for(task, 5)  # returned, no error


async def test_stream_events_counts_the_streams_it_runs(tmp_path: Path) -> None:
    """The consumer is told how many streams its worker runs (their deliveries share a budget)."""
    client = FakeClient()
    async with FakeAgent(directory=str(tmp_path)) as fake, new_http_client() as http:
        acts = AgentActivities(http, AgentSettings(stream=StreamSettings(heartbeat_every=10.0, backoff_min=0.05)))
        policy = parse_plan_config("").policy_for(None)
        sessions = [await acts.agent(fake.base_url).create_session(f"t{n}") for n in range(2)]
        tasks = []
        for n, sid in enumerate(sessions):
            env = environment(client, workflow_id=f"wf-{n}", workflow_run_id=f"run-{n}",
                              heartbeat_timeout=timedelta(seconds=10))
            stream_input = StreamInput(agent_url=fake.base_url, session_id=sid, worktree=str(tmp_path), policy=policy)
            tasks.append(asyncio.create_task(env.run(acts.stream_events, stream_input)))
        async with asyncio.timeout(5):
            while len(client.signals) < 2 or acts.stream.live_streams < 2:  # both connected
                await asyncio.sleep(0.01)
        assert acts.stream.live_streams == 2
        client.failures = [rpc(RPCStatusCode.NOT_FOUND)] * 2  # the runs are gone: both streams stop
        for sid in sessions:
            await fake.emit({"id": f"evt_{sid}", "type": "session.idle", "properties": {"sessionID": sid}})
        await asyncio.wait_for(asyncio.gather(*tasks), 5)
        assert acts.stream.live_streams == 0


async def test_every_agent_client_of_the_activities_keeps_idle_connections_as_the_settings_say() -> None:
    """The shared client and each stream's give an idle connection up after ``agent_keepalive``."""
    acts = AgentActivities(settings=AgentSettings(agent_keepalive=0.05))
    async with answering_true() as (url, closed), acts.running(), acts._stream_client() as streams:
        for http in (acts.http, streams):
            assert await AgentClient(http, url).reply("per_1", "once")
            await asyncio.wait_for(closed[-1].wait(), 10)  # the client gave it up, idle
        assert len(closed) == 2
