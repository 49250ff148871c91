"""The event-stream consumer behind the ``stream_events`` activity: the job's eyes and reflexes.

For the life of a job (one *generation* of it: the workflow restarts the
consumer when its inputs change) it reads the session's ``GET /event``
stream, forwards what the workflow must know as :class:`EventBatch` signals,
and applies policy decisions that need no human at once: an auto-approve or
a deny is first recorded, then replied to the agent, without waiting for a
workflow task. It is recorded by the signal that delivers it, or (from 0.6,
``record``) by a heartbeat, and delivered with the next batch (see
:mod:`.records`).

After every (re)connect it *reconciles*: opencode does not replay events
missed while disconnected, so pending asks, the session's status and its
steps are read back from the API. Asks left behind by an abort are never
approved (PROTOCOL finding 3). Delivery to the workflow is at-least-once.

Its parts: the connection (read, reconnect, silence) in :mod:`.connection`; when a batch
goes in :mod:`.delivery`; the reply in :mod:`.replies`; heartbeat records in :mod:`.records`.
Independent of Temporal (``send`` and ``heartbeat`` are injected): tested against a fake agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict
from decimal import Decimal
from typing import Any, Final

from jobgov.domain import budget
from jobgov.domain.asks import NormalizedAsk, PermissionAsk, unjudgeable
from jobgov.domain.budget import BudgetState
from jobgov.domain.decide import Verdict, decide
from jobgov.domain.items import AskItem, EventItem, SessionItem, StepItem
from jobgov.domain.watermark import covered
from jobgov.opencode.client import AgentClient, AgentError
from jobgov.opencode.events import (
    DONE_TOOL_STATES,
    Event,
    ToolNames,
    ends_run,
    message_events,
    read_ask,
    replied_item,
    session_item,
    status_item,
    unfinished_run,
)
from jobgov.opencode.pricing import price_step
from jobgov.opencode.usage import UsageLedger
from jobgov.policy.normalize import normalize
from jobgov.temporal import metrics
from jobgov.temporal.activities.connection import Resync, Stopped, StreamConnection
from jobgov.temporal.activities.delivery import due_now, may_wait
from jobgov.temporal.activities.reachability import Reachability
from jobgov.temporal.activities.records import MAX_UNDELIVERED, Undelivered
from jobgov.temporal.activities.replies import ReplyFailed, send_reply
from jobgov.temporal.activities.stream_settings import StreamProgress, StreamSettings, WorkflowGone
from jobgov.temporal.metrics import AGENT_UNREACHABLE, Metrics
from jobgov.temporal.payloads import EventBatch, StreamInput

__all__ = ["EventStreamConsumer", "StreamProgress", "StreamSettings", "WorkflowGone"]

_LOG = logging.getLogger(__name__)

#: Events that never change a session's messages: an idle after one of them needs no second read.
_NO_CHANGE: Final = frozenset({"session.status", "session.idle"})
_CANCELLED: Final = "the workflow cancelled it (new inputs for a new stream, or its run is closing)"


class EventStreamConsumer(StreamConnection):
    """Consumes one session's events for a job until cancelled, or until its workflow is gone.

    The connection (reading, reconnecting, silence) is :class:`~.connection.StreamConnection`'s;
    this class gives the events their meaning: asks decided and replied, steps priced, what the
    workflow hears and when.

    Args:
        agent: The agent's API.
        input: The generation's input (policy, pricing, hold, budget, decided asks).
        send: Delivers a batch to the workflow; raises :class:`WorkflowGone` when
            the workflow no longer exists. Awaited before any automatic reply.
        heartbeat: Called with a progress dict every ``settings.heartbeat_every``.
        settings: Timing.
        logger: Where to log (the activity's logger in production).
        attempt: The activity attempt, for logs.
        last_status: The session status a previous attempt last knew (its heartbeat details).
        metrics: Where to count decisions' latency, reconnects and outages (``None``: nowhere).
        still_wanted: Asked when the connection ends, before reconnecting: ``False`` when the job's
            run has closed (it ended, or continued as new), so the consumer stops quietly instead
            of warning about an agent that went away with its job. ``None``: always wanted.
        record: Records heartbeat details durably (awaited): then automatic decisions are recorded
            by it before their reply and delivered with the next batch (``heartbeat``, the periodic
            beat, carries the same details). Answers ``False`` when the workflow has cancelled this
            stream; raises :class:`WorkflowGone` when the run has closed. ``None``: decisions are
            delivered (``send``) before their reply.
        carried: Decisions a previous attempt recorded and had not delivered: delivered first.
        streams: How many streams the worker process runs now, this one included: what may wait is
            delivered less often when they are many (see :func:`.delivery.spacing`). ``None``: one.
    """

    def __init__(
        self,
        agent: AgentClient,
        input: StreamInput,
        send: Callable[[EventBatch], Awaitable[None]],
        heartbeat: Callable[..., None],
        *,
        settings: StreamSettings | None = None,
        logger: logging.Logger | logging.LoggerAdapter[logging.Logger] | None = None,
        attempt: int = 1,
        last_status: str | None = None,
        metrics: Metrics | None = None,
        still_wanted: Callable[[], Awaitable[bool]] | None = None,
        record: Callable[[dict[str, Any]], Awaitable[bool]] | None = None,
        carried: Sequence[AskItem] = (),
        streams: Callable[[], int] | None = None,
    ) -> None:
        self._metrics = metrics
        self._wanted = still_wanted
        self._streams = streams
        self._send, self._heartbeat, self._attempt = send, heartbeat, attempt
        log = logger or _LOG
        reach = Reachability(send, input, log, lambda ms: self._count(AGENT_UNREACHABLE, ms, {}))
        super().__init__(agent, input, settings or StreamSettings(), log, reach,
                         StreamProgress(generation=input.generation, status=last_status))
        self._ledger = UsageLedger(fold=True)  # a step is kept only until its cost is final
        self._budget: BudgetState | None = input.budget
        self._decided = frozenset(input.decided)
        self._handled: set[str] = set()  # asks forwarded (and, if automatic, replied to)
        self._known: set[str] = set()  # asks of the session seen and not yet replied
        self._cancelled: set[str] = set()  # asks pending when the session ended: never approve
        self._tools = ToolNames()
        self._outbox: list[EventItem] = list(carried)
        self._record = record
        self._undelivered = Undelivered(carried)  # recorded in heartbeats, not yet sent
        self._settled: set[str] = set()  # asks of the outbox whose automatic reply went out (or was given up)
        self._recording = asyncio.Lock()
        self._delivered_status: str | None = None  # of the last session item delivered
        self._budget_news = False  # the local budget crossed a threshold since the last delivery
        #: Events of the session heard on this connection that may change its messages (all but
        #: ``session.status`` and ``session.idle``), counted as they arrive.
        self._changes = 0
        #: How the session's last run ended, as last read (``_changes`` when the read went out, the
        #: verdict); reused while no change arrived since: both idles that end a run, in two batches.
        self._ending: tuple[int, str | None] | None = None

    @property
    def budget(self) -> BudgetState | None:
        """The local copy of the job budget, with the steps this consumer priced."""
        return self._budget

    def unsent(self) -> EventBatch:
        """What this stream holds and has not delivered, for a stream stopped in the middle.

        An automatic decision whose reply had not gone out goes unapplied (``auto`` is ``None``):
        the workflow decides that ask itself, and a second reply finds it answered if the first
        one did reach the agent after all."""
        items = [item.model_copy(update={"auto": None})
                 if isinstance(item, AskItem) and item.auto is not None and item.ask.ask.id not in self._settled
                 else item for item in self._outbox]
        return EventBatch(generation=self._input.generation, items=items)

    async def run(self) -> None:
        """Consume until cancelled (raises ``CancelledError``) or the workflow is gone (returns)."""
        if self._attempt > 1:
            self._log.info("stream %s: attempt %d, reconciling", self._input.session_id, self._attempt)
        beat = asyncio.create_task(self._beat())
        try:
            try:
                if self._outbox:
                    self._log.info("stream %s: delivering %d decisions a previous attempt recorded",
                                   self._input.session_id, len(self._outbox))  # fmt: skip
                    await self._flush()
                await self._reconnect_forever()
            except Stopped:
                await self._flush()  # what this stream holds goes to the workflow, which decides now
                self._log.info("stream %s: %s; stream stopped", self._input.session_id, self._stop)
        except WorkflowGone as exc:
            self._log.info("stream %s: workflow gone (%s); stopping", self._input.session_id, exc)
        finally:
            beat.cancel()
            await asyncio.wait({beat})

    async def _beat(self) -> None:
        while True:
            self._heartbeat(self._details())
            await asyncio.sleep(self._settings.heartbeat_every)

    def _details(self) -> dict[str, Any]:
        if self._record is None:
            return asdict(self.progress)
        return self._undelivered.details(self.progress)

    async def _record_now(self) -> bool:
        """One heartbeat RPC with the current details, awaited. One at a time, each with the details
        of its own moment: a record that left earlier must never land later and drop a newer one.

        The periodic beats stay the SDK's (its core sends them, and cancels a stream whose attempt
        the server no longer knows); they carry the same details, so the newest records are in
        every heartbeat. Beats of our own, awaited on a busy event loop, timed streams out at
        1,000 jobs (``make bench``)."""
        assert self._record is not None
        async with self._recording:
            details = self._details()
            self._heartbeat(details)  # the SDK's own heartbeats carry the newest details too
            return await self._record(details)

    # ------------------------------------------------------------------ the connection's hooks

    def _connecting(self) -> None:
        self._ending = None  # a new connection: what was missed while away is read again

    async def _connected(self) -> None:
        self._outbox.append(SessionItem(status="connected"))
        await self._flush()  # at once: the workflow may wait for it to prompt
        await self._reconcile()

    async def _still_wanted(self) -> bool:
        return self._wanted is None or await self._wanted()

    def _arrived(self, event: Event) -> None:
        """Runs as events *arrive*, ahead of processing: the end of a run cancels its asks.

        The main loop may be awaiting a signal while an abort arrives; cancelling
        here means an ask recorded for auto-approval is then not replied to.
        """
        kind, props = event["type"], event["properties"]
        if kind not in _NO_CHANGE:
            self._changes += 1
        if kind == "permission.asked" and isinstance(props.get("id"), str):
            self._known.add(props["id"])
        elif kind == "permission.replied":
            self._known.discard(str(props.get("requestID")))
        elif ends_run(event):
            self._cancelled |= self._known
            self._known.clear()

    def _due_now(self) -> bool:
        return due_now(self._outbox, delivered_status=self._delivered_status, by_heartbeat=self._record is not None,
                       budget_news=self._budget_news)

    def _may_wait(self) -> float | None:
        if not self._outbox:
            return None
        return may_wait(self._outbox, self._settings, by_heartbeat=self._record is not None,
                        plan_budget=self._input.plan_budget, streams=self._streams() if self._streams else 1)

    async def _on_event(self, event: Event) -> None:
        kind = event["type"]
        if kind == "permission.asked":
            read = read_ask(event["properties"])
            if read is None:
                self._log.error("stream %s: a permission.asked names no ask id and session; it cannot be "
                                "answered", self._input.session_id)  # fmt: skip
                return
            ask, problem = read
            await self._handle_ask(ask, stale=ask.id in self._cancelled, problem=problem)
        elif kind == "permission.replied":
            self._outbox.append(replied_item(event))
        elif kind in ("message.part.updated", "message.updated"):
            self._learn(event)
            self._price()  # at once: a step that spends the budget holds the very next ask
        elif (item := session_item(event)) is not None:
            self._outbox.append(item)
            if item.status in ("busy", "retry", "idle"):
                self.progress.status = item.status

    def _learn(self, event: Event) -> tuple[str, str | None] | None:
        """Feed the ledger, and learn tool names; returns a tool part's ``(callID, state)``."""
        self._ledger.add_event(event)
        return self._tools.learn(event)

    def _price(self) -> None:
        """Price newly counted steps whose model is known (the rest wait for their message)."""
        priced = False
        for step in self._ledger.pending_pricing():
            if step.model_id is None:
                continue
            cost = price_step(step, self._input.pricing)
            self._ledger.record_cost(cost)
            if not covered(step.part_id, self._input.counted_through):  # the workflow counted it long ago
                self._outbox.append(StepItem(step=step, cost=cost))
            priced = True
        if priced and self._input.budget is not None:
            # input.budget already counts the steps the workflow received from earlier
            # generations, and reconcile feeds those steps to this fresh ledger again:
            # add only what this session's ledger has beyond what the workflow counted.
            spent_usd, spent_tokens = self._ledger.spend(self._input.session_id)
            base = self._input.budget
            extra_usd = max(spent_usd - base.spent_usd, Decimal(0))
            extra_tokens = max(spent_tokens - base.spent_tokens, 0)
            before = self._budget
            self._budget, _ = budget.apply(base, extra_usd, extra_tokens)
            if budget.crossed(before, self._budget):
                self._budget_news = True  # a warning or the limit: the workflow acts on it now

    def _is_decided(self, ask_id: str) -> bool:
        return ask_id in self._decided or covered(ask_id, self._input.decided_through)

    def _holding(self) -> bool:
        return self._input.hold or budget.holds(self._budget)

    async def _handle_ask(self, ask: PermissionAsk, *, stale: bool, problem: str | None = None) -> None:
        """Record an ask for the workflow and, when the policy alone decides it, apply that.

        ``problem``: the ask could not be read as sent (too deeply nested, malformed ...): a person decides.
        """
        if ask.session_id != self._input.session_id or self._is_decided(ask.id) or ask.id in self._handled:
            return
        read_at = asyncio.get_running_loop().time()
        tool_name = self._tools.of(ask)
        if problem is not None:
            self._log.warning("stream %s: ask %s %s; a person decides it", self._input.session_id, ask.id, problem)
            normalized = unjudgeable(ask, self._input.worktree, problem)
        else:
            normalized = self._normalize(ask, tool_name)
        if stale:
            self._outbox.append(AskItem(ask=normalized, tool_name=tool_name, stale=True))
            self._handled.add(ask.id)
            return
        self._known.add(ask.id)
        holding = self._holding()
        verdict = decide(self._input.policy, normalized, holding=holding)
        if holding or not verdict.by_policy:
            # A person decides (ask-user), or the job holds: the workflow decides everything then.
            self._outbox.append(AskItem(ask=normalized, tool_name=tool_name))
            self._handled.add(ask.id)
            return
        item = AskItem(ask=normalized, tool_name=tool_name, auto=verdict.decision)
        self._outbox.append(item)
        if not await self._record_decision(item):  # the durable record comes first
            return
        self._handled.add(ask.id)
        not_sent = await self._apply(ask.id, verdict)
        self._settled.add(ask.id)  # replied, or given up on: not to be decided again
        if not_sent is not None:
            await self._record_not_sent(item, not_sent)
            return
        elapsed_ms = (asyncio.get_running_loop().time() - read_at) * 1000
        action = "auto-approve" if verdict.outcome == "approve" else "deny"  # as the audit trail says
        self._count(metrics.AUTO_DECISION_LATENCY, elapsed_ms, {"action": action})

    async def _record_not_sent(self, item: AskItem, why: str) -> None:
        """The decision was recorded but its reply did not go out: the record still held says so
        (the audit trail must not say "once" for an ask the agent was never answered), in the
        heartbeat too. One delivered already (by signal, before the reply) stays as delivered."""
        if item not in self._outbox:
            self._log.warning("stream %s: the record of %s, delivered before its reply, says %s; no reply "
                              "went out: %s", self._input.session_id, item.ask.ask.id,
                              item.auto.action.value if item.auto else "?", why)
            return
        amended = item.model_copy(update={"not_sent": why})
        self._outbox[self._outbox.index(item)] = amended
        if self._record is not None:
            with contextlib.suppress(ValueError):
                self._undelivered.remove(item)
                self._undelivered.append(amended)
            with contextlib.suppress(Exception):  # best effort: the outbox holds the truth too
                await self._record_now()

    async def _record_decision(self, item: AskItem) -> bool:
        """Record an automatic decision durably before it is applied; ``False``: do not apply it.

        By heartbeat when the stream can (``record``) and holds few undelivered decisions,
        else by delivering it now. A heartbeat answered "stop" (the workflow has new inputs for a
        new stream, or its run is closing): the decision goes to the workflow unapplied, and the
        workflow decides the ask itself.
        """
        if self._record is None or len(self._undelivered) >= MAX_UNDELIVERED:
            await self._flush()
            return True
        self._undelivered.append(item)
        if await self._record_now():
            return True
        self._undelivered.remove(item)
        self._outbox[self._outbox.index(item)] = item.model_copy(update={"auto": None})
        self._handled.add(item.ask.ask.id)
        self._request_stop(_CANCELLED)
        with contextlib.suppress(Exception):  # best effort: details without the unapplied decision
            await self._record_now()
        return False

    def _normalize(self, ask: PermissionAsk, tool_name: str | None) -> NormalizedAsk:
        try:
            return normalize(ask, self._input.worktree, tool_name=tool_name)
        except Exception as exc:  # noqa: BLE001 - never guess: an ask we cannot read goes to a person
            self._log.exception("stream %s: cannot normalise ask %s", self._input.session_id, ask.id)
            return unjudgeable(ask, self._input.worktree, f"{type(exc).__name__}: {exc}")

    def _count(self, name: str, value: float, labels: dict[str, str]) -> None:
        if self._metrics is not None:
            self._metrics.add(name, value, labels)

    async def _apply(self, request_id: str, verdict: Verdict) -> str | None:
        """Reply to the agent (see :func:`.replies.send_reply`); on repeated failure, resynchronise
        (the ask will be re-handled)."""
        try:
            return await send_reply(self._agent, request_id, verdict, settings=self._settings,
                                    cancelled=self._cancelled, log=self._log, session_id=self._input.session_id)
        except ReplyFailed as exc:
            self._handled.discard(request_id)
            raise Resync(str(exc)) from None

    async def _reconcile(self) -> None:
        """Learn what happened while disconnected: pending asks, status, steps, tool names."""
        sid = self._input.session_id
        # Order matters. Pending asks are read before the status, so an ask listed for a
        # session found not busy really was left behind; they join ``_known`` at once so
        # an end of run arriving on the stream from now on cancels them.
        listed = await self._agent.list_permissions()
        if listed is None:
            self._log.warning("stream %s: GET /permission answered 400 (a webfetch ask is pending); "
                              "asks made while disconnected are not recovered", sid)  # fmt: skip
        pending: list[PermissionAsk] = []
        problems: dict[str, str | None] = {}
        for raw in listed or []:
            if raw.get("sessionID") != sid:
                continue
            read = read_ask(raw)
            if read is None:
                self._log.error("stream %s: a pending permission names no ask id; it cannot be answered", sid)
                continue
            ask, problem = read
            if not self._is_decided(ask.id) and ask.id not in self._handled:
                pending.append(ask)
                problems[ask.id] = problem
                self._known.add(ask.id)
        status = (await self._agent.session_status()).get(sid) or {"type": "idle"}
        busy = status.get("type") in ("busy", "retry")
        tool_states: dict[str, str | None] = {}
        changes = self._changes
        messages = await self._agent.session_messages(sid)
        self._ending = (changes, unfinished_run(messages))  # the status read next may be an idle
        for event in message_events(messages, sid):
            if (tool := self._learn(event)) is not None:
                tool_states[tool[0]] = tool[1]
        self._price()
        self._reconciled_status(status)
        for ask in pending:
            call = ask.tool.call_id if ask.tool else ""
            # A tool that already finished (an abort ends it as "error") is not waiting.
            stale = not busy or tool_states.get(call) in DONE_TOOL_STATES or ask.id in self._cancelled
            await self._handle_ask(ask, stale=stale, problem=problems.get(ask.id))
        await self._flush()
        self.progress.reconciles += 1

    def _reconciled_status(self, status: dict[str, Any]) -> None:
        """Forward the status read back after a (re)connect: it may be the only news of a run's end.

        A snapshot is not an event: on a first connection it may predate the prompt the
        workflow is sending right now. The workflow knows that: an "idle" ends a job only
        after evidence of work (a busy, a step, a live ask), so forwarding it is always safe,
        and withholding it could leave a job waiting forever for an end it missed (e.g. a run
        that ended while the workflow continued as new and the stream was restarting).
        """
        item = status_item(status)
        if item is None:
            return
        self._outbox.append(item)
        self.progress.status = item.status

    async def _check_run_ends(self) -> None:
        """An idle ends a run: say whether that run left its work unfinished (the workflow then
        continues or fails the job instead of completing it). The messages are read once per
        batch, however many idle items it holds (``session.status`` idle and ``session.idle``), and
        not again for a later batch when nothing that changes them has arrived since the last read
        (at connect or here): a long session's messages are megabytes."""
        idle = [n for n, item in enumerate(self._outbox)
                if isinstance(item, SessionItem) and item.status == "idle" and item.unfinished is None]
        if not idle:
            return
        if self._ending is not None and self._ending[0] == self._changes:
            why = self._ending[1]  # nothing that changes the messages arrived since they were read
        else:
            changes = self._changes
            try:
                why = unfinished_run(await self._agent.session_messages(self._input.session_id))
            except AgentError as exc:  # the idle is news enough; whether it finished stays unknown
                self._log.warning("stream %s: cannot read how the run ended: %s", self._input.session_id, exc)
                return
            self._ending = (changes, why)
        if why is not None:
            for n in idle:
                self._outbox[n] = self._outbox[n].model_copy(update={"unfinished": why})

    async def _flush(self) -> None:
        """Send everything ready as one batch; kept for the next try if sending fails."""
        self._flush_at = None
        if not self._outbox:
            return
        await self._check_run_ends()
        batch = EventBatch(generation=self._input.generation, items=list(self._outbox))
        await self._send(batch)
        self._outbox.clear()
        self._undelivered.clear()  # every undelivered decision was in the outbox
        self._settled.clear()
        self._budget_news = False
        statuses = [item.status for item in batch.items if isinstance(item, SessionItem)]
        self._delivered_status = statuses[-1] if statuses else self._delivered_status
        self.progress.batches += 1
