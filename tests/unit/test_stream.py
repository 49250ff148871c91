"""The event-stream consumer against the FakeAgent: decisions, usage, reconnects, stale asks."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from jobgov.configfile import parse_plan_config
from jobgov.domain.asks import Action, Category
from jobgov.domain.budget import BudgetLimit, BudgetState
from jobgov.domain.config import EffectivePolicy
from jobgov.domain.items import AskItem, RepliedItem, SessionItem, StepItem
from jobgov.opencode.client import AgentClient, AgentUnreachable, new_http_client
from jobgov.opencode.events import ends_run, session_item
from jobgov.temporal.activities.consumer import (
    EventStreamConsumer,
    StreamSettings,
    WorkflowGone,
)
from jobgov.temporal.payloads import EventBatch, StreamInput
from jobgov.testing import FakeAgent, Scenario, Usage
from tests.helpers import CAPTURES

DEFAULTS = parse_plan_config("").policy_for(None)
ASK_SHELL = parse_plan_config("permissions:\n  shell_command: ask-user\n").policy_for(None)
FAST = StreamSettings(heartbeat_every=0.05, backoff_min=0.05, backoff_max=0.2, idle_timeout=3.0)
#: Long enough that a test can act on the agent while the consumer is disconnected.
SLOW_RECONNECT = StreamSettings(heartbeat_every=0.05, backoff_min=0.6, backoff_max=0.6, idle_timeout=3.0)


async def until(check: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    try:
        async with asyncio.timeout(timeout):
            while not check():
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


@dataclass
class Harness:
    """A FakeAgent, an API client, and a consumer whose ``send`` collects batches in memory."""

    fake: FakeAgent
    api: AgentClient
    worktree: str
    batches: list[EventBatch] = field(default_factory=list)
    heartbeats: list[dict[str, Any]] = field(default_factory=list)
    #: Per automatic AskItem: whether the agent had already received a reply when it was sent.
    replied_before_record: dict[str, bool] = field(default_factory=dict)
    on_send: Callable[[EventBatch], Awaitable[None]] | None = None
    task: asyncio.Task[None] | None = None
    consumer: EventStreamConsumer | None = None

    @property
    def items(self) -> list[Any]:
        return [item for batch in self.batches for item in batch.items]

    def of(self, kind: type[Any]) -> list[Any]:
        return [item for item in self.items if isinstance(item, kind)]

    def statuses(self) -> list[str]:
        return [item.status for item in self.of(SessionItem)]

    async def send(self, batch: EventBatch) -> None:
        for item in batch.items:
            if isinstance(item, AskItem) and item.auto is not None:
                rid = item.ask.ask.id
                self.replied_before_record[rid] = any(r.request_id == rid for r in self.fake.replies)
        if self.on_send is not None:
            await self.on_send(batch)
        self.batches.append(batch)

    async def start(self, session_id: str, settings: StreamSettings = FAST, **fields: Any) -> EventStreamConsumer:
        record, carried, streams = fields.pop("record", None), fields.pop("carried", ()), fields.pop("streams", None)
        stream_input = StreamInput(agent_url=self.fake.base_url, session_id=session_id, worktree=self.worktree,
                                   policy=fields.pop("policy", DEFAULTS), **fields)  # fmt: skip
        self.consumer = EventStreamConsumer(self.api, stream_input, self.send, self.heartbeats.append,
                                            settings=settings, record=record, carried=carried,
                                            streams=streams)  # fmt: skip
        self.task = asyncio.create_task(self.consumer.run())
        await self.connected(1)
        return self.consumer

    async def connected(self, times: int) -> None:
        """Wait for connection number ``times`` and its reconcile."""

        def reconciled() -> bool:
            done = self.consumer is not None and self.consumer.progress.reconciles >= times
            return done and self.statuses().count("connected") >= times

        await until(reconciled, what=f"{times} connections")

    async def session(self) -> str:
        return await self.api.create_session("test")

    async def stop(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


@pytest.fixture
def worktree(tmp_path: Path) -> str:
    path = tmp_path / "project"
    path.mkdir()
    return str(path)


@pytest_asyncio.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with new_http_client() as client:
        yield client


@contextlib.asynccontextmanager
async def harness(
    http: httpx.AsyncClient, worktree: str, script: Scenario | None = None, *,
    client: type[AgentClient] = AgentClient, **fake_options: Any,
) -> AsyncIterator[Harness]:
    async with FakeAgent(script, directory=worktree, heartbeat_interval=0.5, **fake_options) as fake:
        h = Harness(fake, client(http, fake.base_url), worktree)
        try:
            yield h
        finally:
            await h.stop()


# ---------------------------------------------------------------------------- policy decisions


async def test_auto_approve_is_recorded_before_the_reply(http: httpx.AsyncClient, worktree: str) -> None:
    async with harness(http, worktree, Scenario().bash("ls -la").text("Done.")) as h:
        sid = await h.session()
        await h.start(sid)

        async def slow(batch: EventBatch) -> None:
            # A slow signal: the reply must still wait for it.
            if any(isinstance(i, AskItem) for i in batch.items):
                await asyncio.sleep(0.2)

        h.on_send = slow
        await h.api.prompt_async(sid, "list files")
        # Wait for the run itself: the reconnect snapshot already said "idle" before it.
        await until(lambda: "busy" in h.statuses() and h.statuses()[-1] == "idle")
        (ask,) = h.of(AskItem)
        assert ask.auto is not None and ask.auto.action is Action.AUTO_APPROVE
        assert ask.tool_name == "bash" and not ask.stale
        assert h.replied_before_record == {ask.ask.ask.id: False}
        assert [(r.request_id, r.reply, r.message) for r in h.fake.replies] == [(ask.ask.ask.id, "once", None)]
        await until(lambda: bool(h.of(RepliedItem)))
        assert h.of(RepliedItem) == [RepliedItem(request_id=ask.ask.ask.id, reply="once")]


async def test_no_reply_when_the_record_fails(http: httpx.AsyncClient, worktree: str) -> None:
    async with harness(http, worktree, Scenario().bash("ls")) as h:
        sid = await h.session()
        await h.start(sid)

        async def fail(batch: EventBatch) -> None:
            if any(isinstance(i, AskItem) for i in batch.items):
                raise RuntimeError("temporal is down")

        h.on_send = fail
        await h.api.prompt_async(sid, "go")
        assert h.task is not None
        with pytest.raises(RuntimeError, match="temporal is down"):
            await asyncio.wait_for(h.task, 5)
        assert h.fake.replies == []


async def test_deny_rejects_with_a_message(http: httpx.AsyncClient, worktree: str) -> None:
    async with harness(http, worktree, Scenario().bash("rm -rf /etc/important").text("Ok, I won't.")) as h:
        sid = await h.session()
        await h.start(sid)
        await h.api.prompt_async(sid, "clean up")
        await h.fake.wait_idle(sid)
        (ask,) = h.of(AskItem)
        assert ask.auto is not None and ask.auto.action is Action.DENY
        (reply,) = h.fake.replies
        assert reply.reply == "reject"
        assert reply.message is not None and reply.message.startswith("Denied by jobgov policy: ")
        assert "outside the worktree" in reply.message
        # A reject with a message lets the run go on: the final text step is counted too.
        await until(lambda: len(h.of(StepItem)) == 2)


async def test_ask_user_goes_to_the_workflow_without_a_reply(http: httpx.AsyncClient, worktree: str) -> None:
    async with harness(http, worktree, Scenario().bash("ls")) as h:
        sid = await h.session()
        await h.start(sid, policy=ASK_SHELL)
        await h.api.prompt_async(sid, "go")
        await h.fake.wait_for_ask(sid)
        await until(lambda: bool(h.of(AskItem)))
        (ask,) = h.of(AskItem)
        assert ask.auto is None and not ask.stale
        await asyncio.sleep(0.2)
        assert h.fake.replies == []


async def test_hold_holds_asks_the_policy_would_approve(http: httpx.AsyncClient, worktree: str) -> None:
    async with harness(http, worktree, Scenario().bash("ls")) as h:
        sid = await h.session()
        await h.start(sid, hold=True)
        await h.api.prompt_async(sid, "go")
        await until(lambda: bool(h.of(AskItem)))
        assert h.of(AskItem)[0].auto is None
        await asyncio.sleep(0.2)
        assert h.fake.replies == []


async def test_decided_asks_are_ignored(http: httpx.AsyncClient, worktree: str) -> None:
    async with harness(http, worktree, Scenario().bash("ls")) as h:
        sid = await h.session()
        await h.api.prompt_async(sid, "go")
        pending = await h.fake.wait_for_ask(sid)
        await h.start(sid, decided=[pending["id"]])
        await asyncio.sleep(0.2)
        assert h.of(AskItem) == [] and h.fake.replies == []


async def test_a_spent_budget_holds_the_very_next_ask(http: httpx.AsyncClient, worktree: str) -> None:
    # The first step uses 1050 tokens; the limit is 1000: the bash ask of step 2 must be held.
    script = Scenario().text("Thinking.").bash("ls")
    async with harness(http, worktree, script) as h:
        sid = await h.session()
        consumer = await h.start(sid, budget=BudgetState(limit=BudgetLimit(tokens=1000)))
        await h.api.prompt_async(sid, "go")
        await until(lambda: bool(h.of(AskItem)))
        assert h.of(AskItem)[0].auto is None
        assert consumer.budget is not None and consumer.budget.exceeded
        items = h.items
        assert items.index(h.of(StepItem)[0]) < items.index(h.of(AskItem)[0])
        await asyncio.sleep(0.2)
        assert h.fake.replies == []


async def test_steps_the_workflow_counted_are_not_counted_again(http: httpx.AsyncClient, worktree: str) -> None:
    # Generation 2 of a job: the workflow has counted turn 1 (1050 tokens) in its budget.
    # Reconcile feeds turn 1's step to the new ledger again; it must not count twice.
    script = Scenario().text("Turn one.").next_turn().bash("ls").text("Done.")
    async with harness(http, worktree, script) as h:
        sid = await h.session()
        await h.api.prompt_async(sid, "one")
        await h.fake.wait_idle(sid)
        seen = BudgetState(limit=BudgetLimit(tokens=2000), spent_tokens=1050)
        consumer = await h.start(sid, budget=seen)
        await until(lambda: len(h.of(StepItem)) == 1)  # turn 1's step, from reconcile
        await h.api.prompt_async(sid, "two")
        await until(lambda: len(h.of(StepItem)) == 3)
        ask = h.of(AskItem)[0]
        assert ask.auto is not None and ask.auto.action is Action.AUTO_APPROVE
        assert consumer.budget is not None and consumer.budget.spent_tokens == 3150


async def test_tool_name_informs_normalisation(http: httpx.AsyncClient, worktree: str) -> None:
    async with harness(http, worktree) as h:
        sid = await h.session()
        await h.start(sid)
        part = {"id": "prt_1", "messageID": "msg_1", "sessionID": sid, "type": "tool", "tool": "read",
                "callID": "call_1", "state": {"status": "running", "input": {}, "time": {"start": 1}}}  # fmt: skip
        update = {"sessionID": sid, "part": part}
        await h.fake.emit({"id": "evt_a", "type": "message.part.updated", "properties": update})
        ask = {"id": "per_1", "sessionID": sid, "permission": "external_directory", "patterns": ["/etc/*"],
               "metadata": {"filepath": "/etc/hosts", "parentDir": "/etc"}, "always": ["/etc/*"],
               "tool": {"messageID": "msg_1", "callID": "call_1"}}  # fmt: skip
        await h.fake.emit({"id": "evt_b", "type": "permission.asked", "properties": ask})
        await until(lambda: bool(h.of(AskItem)))
        item = h.of(AskItem)[0]
        # A read outside the worktree is ask-user by default (an edit there would be denied).
        assert item.tool_name == "read" and item.auto is None
        assert item.ask.operations[0].category is Category.FILE_READ


# ---------------------------------------------------------------------------- usage and session status


async def test_steps_are_priced_once_across_duplicates_and_reconnects(http: httpx.AsyncClient, worktree: str) -> None:
    script = Scenario().bash("ls", usage=Usage(prompt_tokens=2000, completion_tokens=100)).text("Done.")
    async with harness(http, worktree, script, duplicate_events=True) as h:
        sid = await h.session()
        await h.start(sid)
        await h.api.prompt_async(sid, "go")
        await h.fake.wait_idle(sid)
        await until(lambda: len(h.of(StepItem)) == 2)
        h.fake.drop_streams()
        await h.connected(2)
        h.fake.drop_streams()
        await h.connected(3)
        await asyncio.sleep(0.1)
        steps = h.of(StepItem)
        assert len(steps) == 2 and len({s.step.part_id for s in steps}) == 2
        assert [s.step.tokens.total for s in steps] == [2100, 1050]
        assert all(s.step.model_id == "fake-model" and s.cost.source == "agent" for s in steps)
        assert steps[0].cost.usd == steps[0].step.agent_cost_usd > 0
        # The duplicated ask was recorded and answered once.
        assert len(h.of(AskItem)) == 1 and len(h.fake.replies) == 1


async def test_session_statuses_and_errors(http: httpx.AsyncClient, worktree: str) -> None:
    async with harness(http, worktree, Scenario().text("Hi.")) as h:
        sid = await h.session()
        await h.start(sid)
        await h.api.prompt_async(sid, "go")
        # Wait for the run itself: the reconnect snapshot already said "idle" before it.
        await until(lambda: "busy" in h.statuses() and h.statuses()[-1] == "idle")
        # The run as it happened; before it, at most the reconnect snapshot (the workflow ignores
        # an idle that no evidence of work precedes).
        statuses = h.statuses()
        assert statuses[0] == "connected" and statuses[-1] == "idle"
        assert statuses[1 : statuses.index("busy")] in ([], ["idle"])
        error = {"name": "APIError", "data": {"message": "Bad Request: model overloaded", "statusCode": 400}}
        await h.fake.emit({"id": "evt_e", "type": "session.error", "properties": {"sessionID": sid, "error": error}})
        await h.fake.emit({"id": "evt_r", "type": "session.status", "properties": {
            "sessionID": sid, "status": {"type": "retry", "attempt": 1, "message": "rate limited", "next": 1}}})
        await until(lambda: "retry" in h.statuses())
        assert [(i.status, i.message) for i in h.of(SessionItem)[-2:]] == [
            ("error", "Bad Request: model overloaded"), ("retry", "rate limited")]


async def test_other_sessions_are_ignored(http: httpx.AsyncClient, worktree: str) -> None:
    async with harness(http, worktree, Scenario().bash("ls")) as h:
        ours, theirs = await h.session(), await h.session()
        await h.start(ours)
        await h.api.prompt_async(theirs, "go")
        ask = await h.fake.wait_for_ask(theirs)
        await h.api.reply(ask["id"], "once")  # their run completes: steps, statuses
        await h.fake.wait_idle(theirs)
        await asyncio.sleep(0.2)
        assert h.of(AskItem) == [] and h.of(StepItem) == [] and h.of(RepliedItem) == []
        assert h.statuses() == ["connected", "idle"]  # only our own session's snapshot
        assert h.consumer is not None and h.consumer.progress.events > 10


# ---------------------------------------------------------------------------- reconnects and stale asks


async def test_reconcile_handles_an_ask_made_while_disconnected(http: httpx.AsyncClient, worktree: str) -> None:
    async with harness(http, worktree, Scenario().bash("ls").text("Done.")) as h:
        sid = await h.session()
        await h.start(sid, settings=SLOW_RECONNECT)
        h.fake.drop_streams()
        await h.api.prompt_async(sid, "go")
        pending = await h.fake.wait_for_ask(sid)
        assert h.fake.subscriber_count == 0  # asked while nobody listened: never replayed
        await h.connected(2)
        await h.fake.wait_idle(sid)
        (ask,) = h.of(AskItem)
        assert ask.ask.ask.id == pending["id"] and ask.tool_name == "bash"
        assert ask.auto is not None and ask.auto.action is Action.AUTO_APPROVE
        assert [r.reply for r in h.fake.replies] == ["once"]
        assert h.consumer is not None and h.consumer.progress.reconnects >= 1


async def test_an_ask_left_by_an_abort_is_stale_and_never_approved(http: httpx.AsyncClient, worktree: str) -> None:
    async with harness(http, worktree, Scenario().bash("ls")) as h:
        sid = await h.session()
        await h.start(sid, settings=SLOW_RECONNECT)
        h.fake.drop_streams()
        await h.api.prompt_async(sid, "go")
        pending = await h.fake.wait_for_ask(sid)
        await h.api.abort(sid)  # PROTOCOL finding 3: the ask stays listed
        assert [p["id"] for p in h.fake.pending] == [pending["id"]]
        await h.connected(2)
        await until(lambda: bool(h.of(AskItem)))
        (ask,) = h.of(AskItem)
        assert ask.stale and ask.auto is None
        await asyncio.sleep(0.2)
        assert h.fake.replies == []


async def test_an_abort_during_the_record_cancels_the_reply(http: httpx.AsyncClient, worktree: str) -> None:
    async with harness(http, worktree, Scenario().bash("ls")) as h:
        sid = await h.session()
        await h.start(sid)

        async def abort_meanwhile(batch: EventBatch) -> None:
            if any(isinstance(i, AskItem) for i in batch.items):
                await h.api.abort(sid)
                await asyncio.sleep(0.2)  # the abort's events arrive while the signal is in flight

        h.on_send = abort_meanwhile
        await h.api.prompt_async(sid, "go")
        await until(lambda: "aborted" in h.statuses())
        await asyncio.sleep(0.2)
        assert h.fake.replies == []  # a late "once" could run the aborted command


async def test_a_run_that_ended_while_disconnected_is_reported(http: httpx.AsyncClient, worktree: str) -> None:
    async with harness(http, worktree, Scenario().bash("ls")) as h:
        sid = await h.session()
        await h.start(sid, settings=SLOW_RECONNECT, policy=ASK_SHELL)
        await h.api.prompt_async(sid, "go")
        await until(lambda: bool(h.of(AskItem)))  # the run is live: busy, waiting for a person
        assert "busy" in h.statuses()
        h.fake.drop_streams()
        await h.api.reply(h.of(AskItem)[0].ask.ask.id, "once")  # answered elsewhere; the run ends
        await h.fake.wait_idle(sid)
        await h.connected(2)
        statuses = h.statuses()
        assert statuses[-2:] == ["connected", "idle"]  # the missed end of the run
        assert statuses[statuses.index("busy") :].count("idle") == 1


async def test_the_snapshot_status_is_always_forwarded(http: httpx.AsyncClient, worktree: str) -> None:
    # The session is idle. Whether a fresh consumer or a retried attempt, the snapshot goes to
    # the workflow, which alone knows whether an idle ends the job (it needs evidence of work).
    async with harness(http, worktree) as h:
        sid = await h.session()
        await h.start(sid)
        await until(lambda: h.statuses() == ["connected", "idle"])
        await h.stop()
        h.batches.clear()
        stream_input = StreamInput(agent_url=h.fake.base_url, session_id=sid, worktree=worktree, policy=DEFAULTS)
        h.consumer = EventStreamConsumer(h.api, stream_input, h.send, h.heartbeats.append, settings=FAST,
                                         attempt=2, last_status="busy")  # fmt: skip
        h.task = asyncio.create_task(h.consumer.run())
        await h.connected(1)
        assert h.statuses() == ["connected", "idle"]
        assert h.consumer.progress.status == "idle"


async def test_permission_list_400_is_tolerated(http: httpx.AsyncClient, worktree: str) -> None:
    async with harness(http, worktree, Scenario().webfetch("https://example.com"), webfetch_list_error=True) as h:
        sid = await h.session()
        await h.api.prompt_async(sid, "fetch")
        pending = await h.fake.wait_for_ask(sid)
        assert await h.api.list_permissions() is None
        await h.start(sid)  # reconcile cannot list asks, and goes on
        assert h.consumer is not None and h.consumer.progress.reconnects == 0
        await h.api.reply(pending["id"], "reject", "no network")
        await until(lambda: bool(h.of(RepliedItem)))
        assert h.of(RepliedItem)[0].request_id == pending["id"]


async def test_an_unreachable_agent_is_retried_forever_with_heartbeats(http: httpx.AsyncClient, worktree: str) -> None:
    async with FakeAgent(directory=worktree) as fake:
        url = fake.base_url
    h = Harness(fake, AgentClient(http, url), worktree)  # the port is closed now
    stream_input = StreamInput(agent_url=url, session_id="ses_x", worktree=worktree, policy=DEFAULTS)
    consumer = EventStreamConsumer(h.api, stream_input, h.send, h.heartbeats.append, settings=FAST)
    task = asyncio.create_task(consumer.run())
    try:
        await until(lambda: consumer.progress.reconnects >= 3)
        assert not task.done()
        # Nothing but the one report that the agent is unreachable (once per outage).
        assert h.heartbeats and h.heartbeats[-1]["reconnects"] >= 2
        assert [(b.items, b.agent is not None and b.agent.reachable) for b in h.batches] == [([], False)]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# ---------------------------------------------------------------------------- lifecycle


async def test_cancellation_ends_it_promptly(http: httpx.AsyncClient, worktree: str) -> None:
    async with harness(http, worktree) as h:
        sid = await h.session()
        await h.start(sid)
        await until(lambda: len(h.heartbeats) >= 3)  # heartbeats while idle
        assert h.heartbeats[-1]["connected"] is True and h.heartbeats[-1]["events"] >= 1
        assert h.task is not None
        h.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(h.task, 1.0)
        await until(lambda: h.fake.subscriber_count == 0, timeout=2.0)
        count = len(h.heartbeats)
        await asyncio.sleep(0.2)
        assert len(h.heartbeats) == count  # the heartbeat task is gone too


async def test_a_gone_workflow_stops_it_cleanly(http: httpx.AsyncClient, worktree: str) -> None:
    async with harness(http, worktree, Scenario().text("Hi.")) as h:
        sid = await h.session()
        await h.start(sid)

        async def gone(batch: EventBatch) -> None:
            raise WorkflowGone("workflow execution already completed")

        h.on_send = gone
        await h.api.prompt_async(sid, "go")
        assert h.task is not None
        await asyncio.wait_for(h.task, 5)  # returns, no exception
        await until(lambda: h.fake.subscriber_count == 0, timeout=2.0)


def test_policy_fixtures() -> None:
    assert isinstance(DEFAULTS, EffectivePolicy)
    assert ASK_SHELL.action_for(Category.SHELL_COMMAND, True) is Action.ASK_USER


# ---------------------------------------------------------------------------- real captures


async def test_replaying_a_real_run_applies_the_policy(http: httpx.AsyncClient, worktree: str) -> None:
    # approve.event.jsonl: bash "ls -la", an edit of hello.txt, then a write outside the worktree.
    capture = CAPTURES / "approve.event.jsonl"
    async with FakeAgent.from_capture(capture, directory=worktree, heartbeat_interval=0.5) as fake:
        h = Harness(fake, AgentClient(http, fake.base_url), worktree)
        try:
            sid = await h.session()
            await h.start(sid)
            await h.api.prompt_async(sid, "go")
            await fake.wait_idle(sid)
            finished = [e for e in fake.events if e["type"] == "message.part.updated"
                        and e["properties"]["part"]["type"] == "step-finish"]  # fmt: skip
            await until(lambda: len(h.of(StepItem)) == len(finished) and h.statuses()[-1] == "idle")
        finally:
            await h.stop()
    asks = h.of(AskItem)
    assert [(a.ask.ask.permission, a.auto and a.auto.action) for a in asks] == [
        ("bash", Action.AUTO_APPROVE), ("edit", Action.AUTO_APPROVE), ("external_directory", Action.DENY)]
    assert [r.reply for r in fake.replies] == ["once", "once", "reject"]
    assert fake.pending == []
    assert {s.step.part_id for s in h.of(StepItem)} == {e["properties"]["part"]["id"] for e in finished}


@pytest.mark.parametrize(
    ("capture", "status", "message"),
    [
        ("abort_while_permission_pending", "aborted", None),
        ("llm_error_400", "error", "fake upstream says: bad request"),
        ("text_sync", "busy", None),
    ],
)
def test_session_items_from_captures(capture: str, status: str, message: str | None) -> None:
    events = [json.loads(line) for line in (CAPTURES / f"{capture}.event.jsonl").read_text().splitlines()]
    items = [item for e in events if (item := session_item(e)) is not None]
    assert (status, message) in [(i.status, i.message) for i in items]
    assert items[-1].status == "idle"
    assert any(ends_run(e) for e in events)
    assert not any(ends_run(e) for e in events if e["type"] in ("permission.asked", "message.updated"))


async def test_the_agent_going_silent_or_away_is_reported_once_each_way(http: httpx.AsyncClient,
                                                                        worktree: str) -> None:
    from jobgov.temporal.state import AgentReach

    def reports(h: Harness) -> list[AgentReach]:
        return [b.agent for b in h.batches if b.agent is not None]

    silent = StreamSettings(heartbeat_every=0.05, backoff_min=0.05, backoff_max=0.2, idle_timeout=30.0,
                            silent_after=0.5)
    async with FakeAgent(directory=worktree, heartbeat_interval=2.0) as fake:
        h = Harness(fake, AgentClient(http, fake.base_url), worktree)
        try:
            await h.start(await h.session(), settings=silent)
            # No frame for 0.5 s (the fake agent's heartbeat comes every 2 s): unreachable, once.
            await until(lambda: len(reports(h)) == 1, what="an unreachable report")
            assert (reports(h)[0].reachable, reports(h)[0].error) == (False, "no frame from the agent for 0.5s")
            # The heartbeat frame arrives: reachable again, once.
            await until(lambda: len(reports(h)) == 2, what="a reachable report")
            assert reports(h)[1].reachable
            # The agent goes away: the reconnect fails, and that is reported at once.
            await fake.stop()
            await until(lambda: len(reports(h)) == 3, what="an unreachable report after the agent stopped")
            gone = reports(h)[2]
            assert not gone.reachable and "ConnectError" in (gone.error or ""), gone
            assert h.consumer is not None
            tried = h.consumer.progress.reconnects
            await until(lambda: h.consumer is not None and h.consumer.progress.reconnects >= tried + 3,
                        what="three more failed reconnects")
            assert len(reports(h)) == 3  # reconnects keep failing: still one report per outage
        finally:
            await h.stop()


async def test_a_stream_with_no_frame_for_its_idle_timeout_reconnects_and_reads_again(
        http: httpx.AsyncClient, worktree: str, caplog: pytest.LogCaptureFixture) -> None:
    """The fake agent's heartbeat comes every 30 s: each connection hears nothing for the idle
    timeout (1 s), is dropped and made again, and every new one reconciles."""
    quiet = StreamSettings(heartbeat_every=0.05, backoff_min=0.05, backoff_max=0.2, idle_timeout=1.0,
                           silent_after=0.5)
    caplog.set_level(logging.WARNING)
    async with FakeAgent(directory=worktree, heartbeat_interval=30.0) as fake:
        h = Harness(fake, AgentClient(http, fake.base_url), worktree)
        try:
            await h.start(await h.session(), settings=quiet)
            await until(lambda: h.consumer is not None and h.consumer.progress.reconnects >= 2,
                        what="two reconnects after silences")
            assert h.consumer is not None and h.consumer.progress.reconciles >= 2
        finally:
            await h.stop()
    reasons = [r.getMessage() for r in caplog.records if "reconnect" in r.getMessage()]
    assert reasons and all("no frame for 1s; reconnect" in reason for reason in reasons), reasons


@pytest.mark.parametrize(("capture", "expected"), [
    ("approve", None), ("text_sync", None), ("webfetch", None), ("llm_error_500_retry", None),
    ("bash_reject", None), ("reject_external", None),  # a rejection ends a run: not "unfinished"
    ("llm_error_400", None),  # an agent error: session.error fails the job
    ("abort_running_tool", "the run was aborted"), ("abort_while_permission_pending", "the run was aborted"),
])
def test_how_a_captured_run_ended(capture: str, expected: str | None) -> None:
    from jobgov.opencode.events import unfinished_run
    from tests.helpers import CAPTURES

    messages = json.loads((CAPTURES / f"{capture}.messages.json").read_text())
    assert unfinished_run(messages) == expected


def test_a_step_that_never_completed_or_stopped_after_its_tools_is_unfinished() -> None:
    from jobgov.opencode.events import unfinished_run

    def assistant(**info: Any) -> dict[str, Any]:
        return {"info": {"role": "assistant", "time": {"created": 1}, **info}, "parts": info.pop("parts", [])}

    assert "never completed" in (unfinished_run([assistant()]) or "")
    done_tool = {"type": "tool", "state": {"status": "completed"}}
    stopped = assistant(time={"created": 1, "completed": 2}, finish="tool-calls")
    stopped["parts"] = [done_tool]
    assert unfinished_run([stopped]) == "the run stopped after its tools ran, before the model answered"
    assert unfinished_run([]) is None


async def test_an_idle_says_whether_its_run_finished(http: httpx.AsyncClient, worktree: str) -> None:
    async with harness(http, worktree, Scenario().bash("ls").crash().bash("echo never")) as h:
        sid = await h.session()
        await h.start(sid)
        await h.api.prompt_async(sid, "go")
        await h.fake.wait_idle(sid)
        # The first idle is the status read at connect (before the prompt); then the run's own.
        await until(lambda: sum(i.status == "idle" for i in h.of(SessionItem)) >= 2, what="the run's idle")
        idle = [i for i in h.of(SessionItem) if i.status == "idle"]
        assert idle[0].unfinished is None
        assert idle[-1].unfinished is not None and "never completed" in idle[-1].unfinished
        assert [a.ask.ask.metadata.get("command") for a in h.of(AskItem)] == ["ls"]  # "echo never" never ran


class _CountingClient(AgentClient):
    """An agent client that counts its reads of the session's messages."""

    reads = 0

    async def session_messages(self, session_id: str) -> list[dict[str, Any]]:
        self.reads += 1
        return await super().session_messages(session_id)


async def test_a_run_s_end_reads_the_messages_once(http: httpx.AsyncClient, worktree: str) -> None:
    """Reads of ``GET /session/{id}/message``: one at connect (whose idle status reuses it) and one
    for the run's end, however many idles end it and in however many batches they come."""
    async with harness(http, worktree, Scenario().bash("ls").text("Done."), client=_CountingClient) as h:
        api = h.api
        assert isinstance(api, _CountingClient)
        sid = await h.session()
        await h.start(sid)
        assert api.reads == 1 and h.statuses().count("idle") == 1  # the connect's idle: no second read
        await h.api.prompt_async(sid, "go")
        await h.fake.wait_idle(sid)
        await until(lambda: h.statuses().count("idle") >= 2, what="the run's idle")
        assert api.reads == 2, api.reads
        assert all(i.unfinished is None for i in h.of(SessionItem) if i.status == "idle")


async def test_an_idle_after_a_change_reads_the_messages_again(http: httpx.AsyncClient, worktree: str) -> None:
    """A later idle reuses the verdict of the last read only while nothing that can change the
    messages arrived since; one such event in between and the messages are read again."""
    unfinished = [{"info": {"role": "assistant", "time": {"created": 1}}, "parts": []}]  # never completed

    class Canned(AgentClient):
        reads = 0

        async def session_messages(self, session_id: str) -> list[dict[str, Any]]:
            self.reads += 1
            return unfinished if self.reads > 1 else []

        @contextlib.asynccontextmanager
        async def event_stream(self) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
            raise AgentUnreachable("the agent is away")
            yield  # an async generator: entering raises

    async def send(batch: EventBatch) -> None:
        pass

    api = Canned(http, "http://127.0.0.1:9")
    consumer = EventStreamConsumer(api, StreamInput(agent_url=api.base_url, session_id="ses_1", worktree=worktree,
                                                    policy=DEFAULTS), send, lambda *_: None)

    async def idle() -> str | None:
        consumer._outbox[:] = [SessionItem(status="idle")]
        await consumer._check_run_ends()
        return consumer._outbox[0].unfinished

    assert await idle() is None and api.reads == 1  # the first read: the run finished
    assert await idle() is None and api.reads == 1  # nothing arrived since: the same verdict, no read
    consumer._changes += 1  # an event that can change the messages arrives (as _read counts it)
    assert "never completed" in (await idle() or "") and api.reads == 2
    assert "never completed" in (await idle() or "") and api.reads == 2
    with pytest.raises(AgentUnreachable):  # a new connection (here one that fails at once) forgets it
        await consumer._connection()
    assert "never completed" in (await idle() or "") and api.reads == 3  # events missed while away: read again
