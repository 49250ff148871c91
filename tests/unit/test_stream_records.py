"""The consumer's automatic decisions recorded in heartbeats (0.6), against the FakeAgent.

``record`` stands in for the heartbeat RPC: it keeps every details dict it is given and answers
as the server would (go on, stop, or the run is gone).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest
from temporalio.activity import ActivityCancellationDetails
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.converter import DataConverter
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import ActivityEnvironment

from jobgov import names
from jobgov.configfile import parse_plan_config
from jobgov.domain.asks import Action, Category, Decision, PermissionAsk, unjudgeable
from jobgov.domain.budget import BudgetLimit, BudgetState
from jobgov.domain.items import AskItem, SessionItem, StepItem
from jobgov.opencode.client import AgentClient
from jobgov.temporal.activities import AgentActivities, AgentSettings
from jobgov.temporal.activities.consumer import EventStreamConsumer, StreamSettings, WorkflowGone
from jobgov.temporal.activities.delivery import MAX_BATCH
from jobgov.temporal.activities.records import Undelivered, read_records
from jobgov.temporal.activities.stream import StreamActivity
from jobgov.temporal.activities.stream_settings import StreamInterrupted, StreamProgress
from jobgov.temporal.payloads import EventBatch, StreamInput
from jobgov.testing import FakeAgent, Scenario
from tests.unit.test_stream import FAST, harness, http, until, worktree  # noqa: F401 - fixtures

HELD = replace(FAST, deliver_every=3600.0)


class Server:
    """What the heartbeat RPC would do: keep the details; answer ``go`` (True), stop, or gone."""

    def __init__(self, replies: list[Any]) -> None:
        self.details: list[dict[str, Any]] = []
        self.replies = replies  # the fake agent's, to see what was replied when a record came
        self.answer: str = "go"
        self.recorded_before_reply: dict[str, bool] = {}

    def records(self, details: dict[str, Any]) -> list[str]:
        return [r["ask"]["ask"]["id"] for r in details[names.HEARTBEAT_RECORDS]]

    async def record(self, details: dict[str, Any]) -> bool:
        for ask_id in self.records(details):
            self.recorded_before_reply.setdefault(ask_id, all(r.request_id != ask_id for r in self.replies))
        if self.answer == "gone" and self.records(details):
            raise WorkflowGone("workflow execution already completed")
        if self.answer == "stop" and self.records(details):
            return False
        if self.answer == "paused" and self.records(details):
            raise StreamInterrupted("paused from Temporal")
        self.details.append(details)
        return True


async def test_a_decision_is_recorded_then_replied_then_delivered_with_the_runs_end(
        http: httpx.AsyncClient, worktree: str) -> None:  # noqa: F811
    async with harness(http, worktree, Scenario().bash("ls -la").bash("git status").bash("pwd").text("ok")) as h:
        server = Server(h.fake.replies)
        sid = await h.session()
        await h.start(sid, HELD, record=server.record)
        await h.api.prompt_async(sid, "go")
        await until(lambda: "busy" in h.statuses() and h.statuses()[-1] == "idle")
        asks = h.of(AskItem)
        assert [a.auto.action for a in asks if a.auto] == [Action.AUTO_APPROVE] * 3
        assert server.recorded_before_reply == {a.ask.ask.id: True for a in asks}
        assert [r.reply for r in h.fake.replies] == ["once"] * 3
        # Held an hour, the decisions went with the statuses that changed (the first busy, the idle):
        # at most two deliveries for three decisions, the last one with the run's end.
        batches = [b for b in h.batches if any(isinstance(i, AskItem) for i in b.items)]
        assert len(batches) <= 2, [[i.kind for i in b.items] for b in batches]
        last = batches[-1].items[-1]
        assert isinstance(last, SessionItem) and last.status == "idle"
        # The SDK's periodic heartbeats carried the records too until they were delivered; then none.
        assert any(server.records(beat) for beat in h.heartbeats)
        beats = len(h.heartbeats)
        await until(lambda: len(h.heartbeats) > beats)
        assert server.records(h.heartbeats[-1]) == []


async def test_a_worker_with_many_streams_holds_what_may_wait_longer(
        http: httpx.AsyncClient, worktree: str) -> None:  # noqa: F811
    # Deliveries at once (deliver_every 0) but 360,000 streams in the worker sharing 100 deliveries a
    # second: each waits an hour, so the decisions go with the statuses that change, as if held. (With
    # one stream, each decision goes 10 ms after its reply: the agent's events come 50 ms apart.)
    stretched = replace(FAST, deliver_every=0.0, deliveries_per_second=100.0)
    script = Scenario().bash("ls -la").bash("git status").bash("pwd").text("ok")
    async with harness(http, worktree, script, event_delay=0.05) as h:
        server = Server(h.fake.replies)
        sid = await h.session()
        await h.start(sid, stretched, record=server.record, plan_budget=False, streams=lambda: 360_000)
        await h.api.prompt_async(sid, "go")
        await until(lambda: "busy" in h.statuses() and h.statuses()[-1] == "idle")
        assert [r.reply for r in h.fake.replies] == ["once"] * 3
        batches = [b for b in h.batches if any(isinstance(i, AskItem) for i in b.items)]
        assert len(batches) <= 2, [[i.kind for i in b.items] for b in batches]
        last = batches[-1].items[-1]
        assert isinstance(last, SessionItem) and last.status == "idle"


async def test_a_batch_is_sent_once_it_holds_max_batch_items(http: httpx.AsyncClient, worktree: str) -> None:  # noqa: F811
    # Steps that ask nothing: only their usage, which waits for the next delivery (an hour here:
    # the plan has no budget).
    async with harness(http, worktree, Scenario.synthetic(600, ask=None), event_delay=0.001) as h:
        server = Server(h.fake.replies)
        sid = await h.session()
        await h.start(sid, HELD, record=server.record, plan_budget=False)
        await h.api.prompt_async(sid, "go")
        await until(lambda: h.statuses()[-1:] == ["idle"] and len(h.of(StepItem)) == 601, timeout=30)
        sizes = [len(b.items) for b in h.batches]
        assert len([n for n in sizes if n >= MAX_BATCH]) >= 1, sizes  # sent for its size, not held an hour
        assert max(sizes) < MAX_BATCH + 32, sizes  # at most one burst past the bound


async def test_a_stop_answer_leaves_the_ask_unreplied_to_the_workflow(
        http: httpx.AsyncClient, worktree: str) -> None:  # noqa: F811
    async with harness(http, worktree, Scenario().bash("ls -la").text("ok")) as h:
        server = Server(h.fake.replies)
        server.answer = "stop"  # the workflow cancelled this stream (new inputs), or its run closes
        sid = await h.session()
        await h.start(sid, HELD, record=server.record)
        await h.api.prompt_async(sid, "go")
        assert h.task is not None
        await asyncio.wait_for(h.task, 10)  # the stream ends by itself, without an error
        (ask,) = h.of(AskItem)
        assert ask.auto is None and not ask.stale  # the workflow decides it
        assert h.fake.replies == []
        assert len(h.fake.pending) == 1


async def test_a_closed_run_stops_the_stream_and_nothing_is_replied(
        http: httpx.AsyncClient, worktree: str) -> None:  # noqa: F811
    async with harness(http, worktree, Scenario().bash("ls -la").text("ok")) as h:
        server = Server(h.fake.replies)
        server.answer = "gone"
        sid = await h.session()
        await h.start(sid, HELD, record=server.record)
        await h.api.prompt_async(sid, "go")
        assert h.task is not None
        await asyncio.wait_for(h.task, 10)
        assert h.fake.replies == [] and len(h.fake.pending) == 1  # the newer run's stream decides it


async def test_a_paused_activity_fails_its_attempt_without_replying(
        http: httpx.AsyncClient, worktree: str) -> None:  # noqa: F811
    async with harness(http, worktree, Scenario().bash("ls -la").text("ok"), event_delay=0.1) as h:
        server = Server(h.fake.replies)
        sid = await h.session()
        await h.start(sid, HELD, record=server.record)
        await h.api.prompt_async(sid, "go")
        server.answer = "paused"  # the record of the ask hears it
        assert h.task is not None
        with pytest.raises(StreamInterrupted, match="paused"):
            await asyncio.wait_for(h.task, 10)
        assert h.fake.replies == [] and len(h.fake.pending) == 1  # the next attempt decides it


async def test_decisions_a_previous_attempt_recorded_are_delivered_first(
        http: httpx.AsyncClient, worktree: str) -> None:  # noqa: F811
    scenario = Scenario().bash("ls -la").bash("git status").text("ok")
    async with harness(http, worktree, scenario, event_delay=0.1) as h:
        server = Server(h.fake.replies)
        sid = await h.session()
        await h.start(sid, HELD, record=server.record)
        await h.api.prompt_async(sid, "go")
        await until(lambda: bool(h.fake.replies) and bool(server.details)
                    and bool(server.records(server.details[-1])), what="a reply and its record")
        await h.stop()  # the worker died: the decision is only in the heartbeat
        carried = read_records(server.details[-1])
        assert carried and not h.of(AskItem)
        h.batches.clear()
        await h.start(sid, HELD, record=server.record, carried=carried)
        assert h.batches[0].items == carried  # before anything of the new connection
        await until(lambda: h.statuses()[-1:] == ["idle"] and len(h.fake.replies) == 2, timeout=10)
        replied = [r.request_id for r in h.fake.replies]
        assert len(set(replied)) == 2  # each ask replied once: the new attempt found the first answered


def test_read_records_never_raises() -> None:
    assert read_records(None) == [] and read_records("x") == [] and read_records({}) == []
    assert read_records({names.HEARTBEAT_RECORDS: "not a list"}) == []
    assert read_records({names.HEARTBEAT_RECORDS: [{"kind": "ask"}, 3, None]}) == []


@pytest.mark.parametrize("settings", [StreamSettings()])
def test_decisions_wait_longer_than_usage(settings: StreamSettings) -> None:
    assert settings.deliver_every >= settings.coalesce


class _Handle:
    def __init__(self, client: _Client) -> None:
        self.client = client

    async def describe(self) -> Any:
        return SimpleNamespace(status=self.client.status, run_id=self.client.run_id)

    async def signal(self, name: str, batch: EventBatch) -> None:
        self.client.signals.append((name, batch))


class _Client:
    """The part of a Temporal client ``_hand_on`` uses: the job's latest run, and its signals."""

    def __init__(self, run_id: str, status: WorkflowExecutionStatus) -> None:
        self.run_id, self.status = run_id, status
        self.signals: list[tuple[str, EventBatch]] = []

    def get_workflow_handle(self, workflow_id: str) -> _Handle:
        assert workflow_id == "jobgov/p/j"
        return _Handle(self)


def _batch() -> EventBatch:
    ask = PermissionAsk(id="per_1", session_id="ses_1", permission="bash", patterns=["ls"])
    decided = AskItem(ask=unjudgeable(ask, "/w", "test"), auto=None)
    return EventBatch(generation=3, items=[SessionItem(status="busy"), decided])


@pytest.mark.parametrize(("latest", "status", "handed"), [
    ("run-2", WorkflowExecutionStatus.RUNNING, True),  # it continued as new: the newer run hears
    ("run-1", WorkflowExecutionStatus.COMPLETED, False),  # it ended: nobody to tell
    ("run-2", WorkflowExecutionStatus.TERMINATED, False),
])
async def test_a_closed_runs_asks_are_handed_on_to_its_newer_run(
        latest: str, status: WorkflowExecutionStatus, handed: bool) -> None:
    client = _Client(latest, status)
    env = ActivityEnvironment(client=cast(Client, client))
    await env.run(StreamActivity._hand_on, "jobgov/p/j", "run-1", _batch())
    if not handed:
        assert client.signals == []
        return
    ((name, batch),) = client.signals
    assert name == names.SIGNAL_JOB_EVENTS
    assert batch.generation == -1  # not the newer run's own stream generation
    assert [item.kind for item in batch.items] == ["ask"]  # its statuses are the newer stream's to tell


class _Service:
    """The heartbeat RPC: it keeps each request and answers "go on"."""

    def __init__(self) -> None:
        self.requests: list[Any] = []

    async def record_activity_task_heartbeat(self, request: Any, timeout: Any = None) -> Any:
        self.requests.append(request)
        return SimpleNamespace(cancel_requested=False, activity_paused=False, activity_reset=False)


class _RunHandle(_Handle):
    def __init__(self, client: _StreamClient, run_id: str | None) -> None:
        super().__init__(client)
        self.run_id = run_id

    async def signal(self, name: str, batch: EventBatch) -> None:
        client = cast(_StreamClient, self.client)
        if self.run_id is not None and client.closed:
            raise RPCError("workflow execution already completed", RPCStatusCode.NOT_FOUND, b"")
        client.sent.append((self.run_id, batch))


class _StreamClient(_Client):
    """What ``stream_events`` uses of a client: its run's handle, the heartbeat RPC, a converter."""

    namespace, identity = "default", "test"
    data_converter = DataConverter.default

    def __init__(self, run_id: str, status: WorkflowExecutionStatus) -> None:
        super().__init__(run_id, status)
        self.workflow_service = _Service()
        self.sent: list[tuple[str | None, EventBatch]] = []  # (the run signalled, None: the latest)
        self.closed = False  # the stream's own run (run-1) has closed

    def get_workflow_handle(self, workflow_id: str, *, run_id: str | None = None) -> _RunHandle:  # type: ignore[override]
        assert workflow_id == "jobgov/p/j"
        return _RunHandle(self, run_id)


@pytest.mark.parametrize("why", ["not_found", "cancel_requested"])
async def test_a_stream_the_sdk_cancels_delivers_its_decisions_or_hands_them_on(
        http: httpx.AsyncClient, worktree: str, why: str) -> None:  # noqa: F811
    """The SDK cancels a stream whose own heartbeat heard first that its run has closed (it
    continued as new: ``not_found``) or that the workflow stops it (``cancel_requested``, as before
    the run closes). The decision the stream recorded, replied and had not delivered goes to the
    newer run, or to the run itself while it is open."""
    client = _StreamClient("run-2", WorkflowExecutionStatus.RUNNING)
    scenario = Scenario().bash("ls -la").text("ok")
    async with FakeAgent(scenario, directory=worktree, event_delay=0.2) as fake:
        acts = AgentActivities(http, AgentSettings(stream=HELD))
        api = acts.agent(fake.base_url)
        sid = await api.create_session("t")
        env = ActivityEnvironment(client=cast(Client, client))
        env.info = replace(env.info, workflow_id="jobgov/p/j", workflow_run_id="run-1",
                           heartbeat_timeout=timedelta(seconds=30))
        policy = parse_plan_config("").policy_for(None)
        stream_input = StreamInput(agent_url=fake.base_url, session_id=sid, worktree=worktree, policy=policy,
                                   record_in_heartbeat=True, plan_budget=False)
        beats: list[dict[str, Any]] = []
        env.on_heartbeat = lambda *details: beats.append(details[0])
        task = asyncio.create_task(env.run(acts.stream_events, stream_input))
        await until(lambda: any(run == "run-1" for run, _ in client.sent))  # connected
        await api.prompt_async(sid, "go")
        await until(lambda: bool(fake.replies))  # auto-approved, recorded, replied; held an hour

        def reply_answered() -> bool:
            """The stream has read an event the agent sent after it answered the reply (the agent
            emits ``permission.replied`` first, then answers, then runs the tool)."""
            ids = [e["id"] for e in fake.events]
            replied = [n for n, e in enumerate(fake.events) if e["type"] == "permission.replied"]
            later = set(ids[replied[0] + 1:]) if replied else set()
            return any(beat.get("last_event_id") in later for beat in beats)

        await until(reply_answered)
        client.closed = why == "not_found"
        env.cancel(ActivityCancellationDetails(not_found=why == "not_found", cancel_requested=why != "not_found"))
        if why == "not_found":
            await asyncio.wait_for(task, 10)  # the normal end of a stream: no error
        else:
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(task, 10)
    assert [r.reply for r in fake.replies] == ["once"]
    assert client.workflow_service.requests  # recorded by its own heartbeat before the reply
    to = None if why == "not_found" else "run-1"
    ((_, batch),) = [(run, b) for run, b in client.sent if run == to and any(isinstance(i, AskItem) for i in b.items)]
    (ask,) = [i for i in batch.items if isinstance(i, AskItem)]
    assert ask.auto is not None and ask.auto.action is Action.AUTO_APPROVE  # applied: replied before the cancel
    assert ask.ask.ask.id == fake.replies[0].request_id


async def test_a_decision_whose_reply_this_stream_did_not_send_goes_unapplied(
        http: httpx.AsyncClient, worktree: str) -> None:  # noqa: F811
    """What a stream stopped in the middle holds: an automatic decision it did not see replied
    (here, one carried from an earlier attempt) goes unapplied, for the workflow to decide."""
    ask = PermissionAsk(id="per_1", session_id="ses_1", permission="bash", patterns=["ls"])
    auto = AskItem(ask=unjudgeable(ask, worktree, "test"),
                   auto=Decision(action=Action.AUTO_APPROVE, category=Category.OTHER, reason="read-only"))

    async def send(batch: EventBatch) -> None:
        raise AssertionError("nothing is sent: the stream never ran")

    async def record(details: dict[str, Any]) -> bool:
        return True

    stream_input = StreamInput(agent_url="http://agent.test", session_id="ses_1", worktree=worktree,
                               policy=parse_plan_config("").policy_for(None), record_in_heartbeat=True)
    consumer = EventStreamConsumer(AgentClient(http, "http://agent.test"), stream_input, send, lambda *_: None,
                                   settings=HELD, record=record, carried=[auto])
    (item,) = consumer.unsent().items
    assert isinstance(item, AskItem) and item.auto is None and item.ask == auto.ask


def _step_batches(batches: list[EventBatch]) -> tuple[list[bool], int]:
    """Of each batch that carried usage, whether it also carried the run's end; and the steps."""
    with_steps = [b for b in batches if any(isinstance(i, StepItem) for i in b.items)]
    ended = [any(isinstance(i, SessionItem) and i.status == "idle" for i in b.items) for b in with_steps]
    return ended, sum(1 for b in with_steps for i in b.items if isinstance(i, StepItem))


@pytest.mark.parametrize(("limit", "early"), [(2000, True), (100_000, False)])
async def test_a_budget_threshold_crossed_is_delivered_at_once(
        http: httpx.AsyncClient, worktree: str, limit: int, early: bool) -> None:  # noqa: F811
    # Each step uses 1050 tokens. Held an hour, usage waits for the run's end, unless a step
    # crosses a threshold of the job's budget (50 % of 2,000 at the first step): that goes now.
    script = Scenario().text("Thinking.").text("More.").text("Done.")
    async with harness(http, worktree, script, event_delay=0.02) as h:  # a step is not in the busy's burst
        server = Server(h.fake.replies)
        sid = await h.session()
        await h.start(sid, HELD, record=server.record, budget=BudgetState(limit=BudgetLimit(tokens=limit)),
                      plan_budget=False)
        await h.api.prompt_async(sid, "go")
        await until(lambda: "busy" in h.statuses() and h.statuses()[-1] == "idle")
        ended, steps = _step_batches(h.batches)
        assert ended[0] is not early, [[i.kind for i in b.items] for b in h.batches]
        assert steps == 3


@pytest.mark.parametrize("plan_budget", [True, None, False])
async def test_usage_waits_for_the_next_delivery_unless_the_plan_has_a_budget(
        http: httpx.AsyncClient, worktree: str, plan_budget: bool | None) -> None:  # noqa: F811
    # A plan's budget is enforced by its workflow on every step's usage: usage goes within
    # usage_every; without one (False) it waits, like the decisions; None: a run before 0.7.
    script = Scenario().text("Thinking.").text("More.").text("Done.")
    settings = replace(HELD, usage_every=0.01)
    async with harness(http, worktree, script, event_delay=0.05) as h:
        server = Server(h.fake.replies)
        sid = await h.session()
        await h.start(sid, settings, record=server.record, plan_budget=plan_budget)
        await h.api.prompt_async(sid, "go")
        await until(lambda: "busy" in h.statuses() and h.statuses()[-1] == "idle")
        ended, steps = _step_batches(h.batches)
        assert ended[0] is (plan_budget is False), [[i.kind for i in b.items] for b in h.batches]
        assert steps == 3


def test_undelivered_decisions_are_in_every_details_in_order_until_removed() -> None:
    first, second = (AskItem(ask=unjudgeable(PermissionAsk(id=f"per_{n}", session_id="ses_1", permission="bash",
                                                           patterns=["ls"]), "/w", "test")) for n in (1, 2))
    held = Undelivered([first])
    held.append(second)
    progress = StreamProgress(generation=1)
    assert read_records(held.details(progress)) == [first, second] and len(held) == 2
    held.remove(first)
    assert read_records(held.details(progress)) == [second]
    with pytest.raises(ValueError):
        held.remove(first)
    held.clear()
    assert held.details(progress)[names.HEARTBEAT_RECORDS] == [] and held.details(progress)["generation"] == 1


async def test_a_decision_whose_reply_did_not_go_out_says_so(
        http: httpx.AsyncClient, worktree: str) -> None:  # noqa: F811
    """Someone answers the ask between its record and the stream's reply: the stream's reply finds
    it answered, and the record (heartbeat and delivery) says that no reply went out."""
    async with harness(http, worktree, Scenario().bash("ls -la").text("ok")) as h:
        server = Server(h.fake.replies)

        async def record(details: dict[str, Any]) -> bool:
            for ask_id in server.records(details):
                if ask_id in {p["id"] for p in h.fake.pending}:
                    await h.api.reply(ask_id, "reject")  # answered elsewhere (opencode's own UI, say)
            return await server.record(details)

        sid = await h.session()
        await h.start(sid, HELD, record=record)
        await h.api.prompt_async(sid, "go")
        await until(lambda: bool(h.of(AskItem)), timeout=10)
        [ask] = h.of(AskItem)
        assert ask.not_sent == "the agent had already been answered"
        assert ask.auto is not None and ask.auto.action is Action.AUTO_APPROVE
        assert [r.reply for r in h.fake.replies] == ["reject"]  # only the other answer went out
        last = [r.get("not_sent") for beat in server.details for r in beat[names.HEARTBEAT_RECORDS]][-1]
        assert last == "the agent had already been answered"  # the durable record says so too
