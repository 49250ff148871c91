"""JobWorkflow: one durable workflow per agent job.

The rules live in :class:`~jobgov.temporal.workflows.book.JobBook` (pure); this class
wires them to Temporal: the stream activity feeds event batches in by signal,
humans decide by update (validated before anything reaches history), the plan
holds and releases by signal, and the effects the book asks for (replies,
aborts, prompts, notifications, plan reports, stream restarts) run as
activities, in order, one at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Literal

import pydantic
from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, FailureError

from jobgov import names
from jobgov.domain import budget as budgets
from jobgov.domain.items import SessionItem
from jobgov.temporal.metrics import JOB_STATES, NOTIFICATIONS, Metrics
from jobgov.temporal.payloads import (
    AbortInput,
    ApproveInput,
    CreateSessionInput,
    DenyInput,
    EndInput,
    EventBatch,
    JobInput,
    JobResult,
    JobStatus,
    KillInput,
    NotifyInput,
    PlanHold,
    PromptInput,
    ReplyInput,
    ReportToPlanInput,
    ResumeInput,
    StreamInput,
)
from jobgov.temporal.state import DecisionRecord, JobCarry, JobState
from jobgov.temporal.workflows import calls
from jobgov.temporal.workflows.book import JobBook
from jobgov.temporal.workflows.effects import (
    Abort,
    Effect,
    Notify,
    Prompt,
    Reply,
    ReportToPlan,
    RestartStream,
)
from jobgov.temporal.workflows.support import continue_as_new_due, refresh_wake, reject_invalid

#: From release 0.2 on (names.PATCH_0_2): what the UI and the plan see of a job's spending is
#: refreshed at most this often, its state and pending asks at once. A search-attribute upsert and
#: a plan report for every step cost 5 history events a step.
REFRESH_EVERY = timedelta(seconds=5)
#: From release 0.8 (names.PATCH_0_8): how often a job whose plan has no budget reports its spending
#: to the plan (a change of state is reported at once; a plan with a budget hears of every step).
#: Each report is an activity and two workflow tasks: at 100 jobs, one every 5 s cost the worker
#: about 2 ms of CPU per ask (of 10).
PLAN_REFRESH_EVERY = timedelta(seconds=30)
#: From release 0.4 (names.PATCH_0_4): a job whose stream no worker has taken this long
#: after it was started shows ``queued``. A worker with a free slot takes it in well under a second.
QUEUE_AFTER = timedelta(seconds=10)


@workflow.defn(name=names.JOB_WORKFLOW)
class JobWorkflow:
    """Governs one opencode session: decisions, usage, budget, pauses."""

    @workflow.init
    def __init__(self, input: JobInput) -> None:
        self._input = input
        self._book = JobBook(
            plan=input.plan, job=input.job, workflow_id=workflow.info().workflow_id, agent_url=input.agent_url,
            worktree=input.worktree, config=input.config, carry=input.carry or JobCarry(), owner=input.owner,
        )
        self._effects: list[Effect] = []
        #: Where the agent-side activities run (the agent's host); None: this workflow's task queue.
        self._agent_queue = input.agent_queue or input.config.agent.queue
        self._lock = asyncio.Lock()
        self._stream: workflow.ActivityHandle[None] | None = None
        self._connected = False
        self._heard = False  # the current stream generation has sent something: a worker runs it
        self._admission = False  # names.PATCH_0_4: set when the first stream starts
        self._records = False  # names.PATCH_0_6: streams record automatic decisions in heartbeats
        self._plan_budget_said = False  # names.PATCH_0_7: streams are told whether the plan has a budget
        self._dirty = True
        self._bounded_drain = False
        self._shown: tuple[str, int] | None = None  # the state and pending count last upserted
        self._shown_at: datetime | None = None
        self._owe_show = False
        self._reported: str | None = None  # the state last reported to the plan
        self._reported_at: datetime | None = None
        self._owe_report = False
        self._continuing = False
        self._refresher: asyncio.Task[None] | None = None
        self._refresh_at: datetime | None = None  # when the refresher wakes (names.PATCH_0_8)
        self._ride = False  # names.PATCH_0_8: refreshes ride on other workflow tasks
        self._admitting: asyncio.Task[None] | None = None
        self._metrics: Metrics | None = None
        self._metric_state: str | None = None

    # ------------------------------------------------------------------ main loop

    @workflow.run
    async def run(self, input: JobInput) -> JobResult:
        # Runs started before this release drained without checking (their histories replay so).
        self._bounded_drain = workflow.patched(names.PATCH_0_2)
        self._ride = self._bounded_drain and workflow.patched(names.PATCH_0_8)
        try:
            return await self._govern(input)
        except asyncio.CancelledError:
            # "Request Cancellation" in the UI, `temporal workflow cancel`, handle.cancel().
            if workflow.patched(names.PATCH_0_3):
                await self._end_cancelled()
            raise
        except (FailureError, pydantic.ValidationError) as exc:
            if not workflow.patched(names.PATCH_0_3):
                raise
            if isinstance(exc, ActivityError) and isinstance(exc.cause, CancelledError):
                # The cancel reached an activity the run awaited (creating the session): still a cancel.
                await self._end_cancelled()
                raise asyncio.CancelledError from exc
            # These fail the workflow (not just its task): say so in the search attributes first.
            self._publish_failed()
            raise

    async def _end_cancelled(self) -> None:
        """A cancelled job ends like a killed one: the agent's run aborted, its asks rejected."""
        self._effects += self._book.cancel(workflow.now())
        await self._stop_stream()
        await self._drain()

    def _publish_failed(self) -> None:
        if self._input.search_attributes:
            workflow.upsert_search_attributes([names.SA_STATE.value_set(JobState.FAILED.value),
                                               names.SA_PENDING_ASKS.value_set(0)])

    async def _create_session(self, request: CreateSessionInput) -> str:
        """Create the session, retrying (with a warning) while the agent does not answer, for at
        most ``agent.start_timeout``; then the job fails naming the agent and the error."""
        if not workflow.patched(names.PATCH_0_3_START):
            return await calls.create_session(request, self._agent_queue)
        timeout = self._book.config.agent.start_timeout
        deadline, delay = workflow.now() + timeout, timedelta(seconds=1)
        while True:
            try:
                return await calls.create_session_once(request, self._agent_queue)
            except ActivityError as exc:
                cause = exc.cause or exc
                if isinstance(cause, CancelledError):
                    raise  # the job was cancelled
                if isinstance(cause, ApplicationError) and cause.non_retryable:
                    # The agent answered, and no retry can change its answer (a refused password, ...):
                    # the job fails with that answer as its own message, not "Activity task failed".
                    raise ApplicationError(cause.message, type=cause.type, non_retryable=True) from None
                why = getattr(cause, "message", None) or str(cause)
                if workflow.now() + delay >= deadline:
                    raise ApplicationError(f"the agent at {request.agent_url} did not answer within "
                                           f"{timeout}: {why}", type="AgentUnreachable", non_retryable=True) from None
                self._book.warn(f"cannot create the session on the agent at {request.agent_url} ({why}); retrying "
                                f"until {deadline:%H:%M:%S} UTC")
                self._dirty = True
                self._publish()
                await workflow.sleep(delay)
                delay = min(delay * 2, timedelta(seconds=15))

    async def _govern(self, input: JobInput) -> JobResult:
        book = self._book
        if book.s.session_id is None:
            session_id = input.session_id or await self._create_session(
                CreateSessionInput(agent_url=input.agent_url, title=f"{input.plan}/{input.job}")
            )
            book.started(session_id, prompt_sent=False)
        self._start_stream()
        if input.prompt is not None and not book.s.prompt_sent:
            # Subscribe first (the stream reconciles anyway), so the run's first events are seen live.
            await self._await_stream()
            if not (self._admission and book.finished):  # killed or cancelled while it waited
                await self._call(names.ACTIVITY_PROMPT, calls.prompt(PromptInput(
                    agent_url=input.agent_url, session_id=book.s.session_id or "", text=input.prompt),
                    self._agent_queue))
                book.started(book.s.session_id or "", prompt_sent=True)
        self._effects.append(ReportToPlan())

        while True:
            await self._drain(whole=False)
            if book.finished:
                break
            if continue_as_new_due(self._input.continue_as_new_after):
                await self._stop_stream()
                await workflow.wait_condition(workflow.all_handlers_finished)
                self._continuing = True  # the next run reports to the plan first thing
                await self._drain()
                workflow.continue_as_new(input.model_copy(update={"carry": book.compacted(), "prompt": None}))
            deadline = self._next_wake()
            timeout = max(deadline - workflow.now(), timedelta(0)) if deadline is not None else None
            try:
                await workflow.wait_condition(lambda: bool(self._effects) or self._dirty, timeout=timeout)
            except TimeoutError:
                self._wake(workflow.now())

        await self._stop_stream()
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._drain()
        return JobResult(status=book.status())

    async def _await_stream(self) -> None:
        """Wait until the current stream generation is connected, or the job has ended (killed,
        cancelled): an agent is never set to work unwatched. Runs before 0.4 waited 30 s at most."""
        if self._admission:
            await workflow.wait_condition(lambda: self._connected or self._book.finished)
            return
        try:
            await workflow.wait_condition(lambda: self._connected, timeout=timedelta(seconds=30))
        except TimeoutError:
            workflow.logger.warning("event stream not connected after 30 s; prompting anyway")

    # ------------------------------------------------------------------ effects

    async def _drain(self, *, whole: bool = True) -> None:
        """Carry out queued effects in order, then publish state to the UI.

        ``whole=False`` (the main loop): stop early once the run is due to continue as new. While
        events keep arriving the queue never empties, and a run that only checked between drains
        went thousands of events past its limit; the final drain before continuing is whole.
        """
        async with self._lock:
            while self._effects:
                if not whole and self._bounded_drain and continue_as_new_due(self._input.continue_as_new_after):
                    break
                effect = self._effects.pop(0)
                if isinstance(effect, ReportToPlan) and any(isinstance(e, ReportToPlan) for e in self._effects):
                    continue  # only the newest cumulative report matters
                await self._apply(effect)
            if self._state_unreported():
                self._effects.append(ReportToPlan())  # the main loop drains it next
            self._emit_metrics()
            if self._dirty:
                self._publish()
                self._dirty = False
            if self._ride:
                self._rearm()  # what this task refreshed needs no timer

    def _note_state(self) -> None:
        """Count the job entering a state: called wherever the state may change (every handler and
        drain), so a state that lasts a moment between two drains is counted too."""
        state = self._book.display_state().value
        if state != self._metric_state:
            self._metric_state = state
            self._book.metric_events.append((JOB_STATES, 1, {"state": state}))

    def _changed(self) -> None:
        """A handler changed the book: count the state, refresh the details now (the status query
        already shows the change, and the main loop may be awaiting an activity, a reply retried
        for minutes, before it publishes), and have the main loop publish the rest. Current details
        are no command and no history event: setting them here changes no workflow behaviour."""
        self._note_state()
        self._dirty = True
        workflow.set_current_details(self._book.details_markdown())

    def _emit_metrics(self) -> None:
        """What the book recorded (decisions, usage, states). Emitted on first execution only: the
        SDK drops workflow metrics on replay."""
        book = self._book
        self._note_state()
        if book.metric_events:
            if self._metrics is None:
                self._metrics = Metrics(workflow.metric_meter())
            events, book.metric_events = book.metric_events, []
            self._metrics.emit(events)

    def _state_unreported(self) -> bool:
        """The job's state changed (paused, resumed, awaiting approval) since the plan last heard."""
        return (self._reported is not None and not self._continuing and not self._effects
                and self._reported != self._book.display_state().value and workflow.patched(names.PATCH_0_3))

    async def _apply(self, effect: Effect) -> None:
        book, url = self._book, self._input.agent_url
        session_id = book.s.session_id or ""
        if isinstance(effect, Reply):
            await self._call(names.ACTIVITY_REPLY, calls.reply(ReplyInput(
                agent_url=url, request_id=effect.request_id, reply=effect.reply, message=effect.message),
                self._agent_queue))
        elif isinstance(effect, Abort):
            await self._call(names.ACTIVITY_ABORT, calls.abort(AbortInput(agent_url=url, session_id=session_id),
                                                              self._agent_queue))
        elif isinstance(effect, Prompt):
            await self._await_stream()  # so the continued run is seen live, not only reconciled
            if self._admission and book.finished:
                return  # killed while it waited for its stream
            await self._call(names.ACTIVITY_PROMPT, calls.prompt(PromptInput(
                agent_url=url, session_id=session_id, text=effect.text), self._agent_queue))
        elif isinstance(effect, Notify):
            workflow.logger.info("%s: %s", effect.kind, effect.message)
            book.metric_events.append((NOTIFICATIONS, 1, {"kind": effect.kind}))
            await self._call(names.ACTIVITY_NOTIFY, calls.notify(NotifyInput(
                kind=effect.kind, plan=book.plan, job=book.job, workflow_id=book.workflow_id,
                message=effect.message, webhook=book.config.notify.webhook)))
        elif isinstance(effect, ReportToPlan):
            if self._bounded_drain and (self._continuing or self._report_can_wait()):
                self._owe_report = not self._continuing
                if self._owe_report:
                    self._owe()
                return
            self._reported, self._reported_at, self._owe_report = book.display_state().value, workflow.now(), False
            await self._call(names.ACTIVITY_REPORT_TO_PLAN, calls.report_to_plan(ReportToPlanInput(
                plan=book.plan, budget=book.config.budget.plan, report=book.next_report())))
        elif isinstance(effect, RestartStream):
            self._restart_stream()

    async def _call(self, activity: str, call: Awaitable[None]) -> None:
        try:
            await call
        except ActivityError as exc:
            if isinstance(exc.cause, CancelledError) and workflow.patched(names.PATCH_0_3):
                raise asyncio.CancelledError from exc  # the job's cancel reached this call: end as cancelled
            # The agent may be gone for good; governance carries on and says so.
            message = f"{activity} failed: {exc.cause or exc}"
            workflow.logger.warning(message)
            self._book.warn(message)

    def _report_can_wait(self) -> bool:
        """The plan heard from this job a moment ago, in the same state, and has no budget for
        the spending to cross: it can wait. A plan budget is enforced on every step's report."""
        every = PLAN_REFRESH_EVERY if self._ride else REFRESH_EVERY
        return (self._book.config.budget.plan is None
                and self._reported == self._book.display_state().value and self._reported_at is not None
                and workflow.now() - self._reported_at < every)

    def _next_wake(self) -> datetime | None:
        """When the main loop must wake with nothing arriving: the next ask deadline."""
        return self._book.next_deadline()

    def _wake(self, now: datetime) -> None:
        self._effects += self._book.expire(now)
        self._note_state()

    def _owe(self) -> None:
        """A refresh was held back: one timer (not one per wake-up of the loop) brings it later.

        From 0.8 the timer wakes one refresh interval after the earliest refresh is due: a job at
        work has a workflow task (a delivery) in between, which does the refresh and cancels it."""
        if not self._ride:
            if self._refresher is None or self._refresher.done():
                self._refresher = asyncio.create_task(self._refresh_later(REFRESH_EVERY))
            return
        self._rearm()

    def _rearm(self) -> None:
        """0.8: the refresh timer wakes at :func:`refresh_wake` of what is held back now (moved when
        a refresh was done meanwhile, cancelled when nothing is held back)."""
        dues = []
        if self._owe_show and self._shown_at is not None:
            dues.append(self._shown_at + REFRESH_EVERY)
        if self._owe_report and self._reported_at is not None:
            dues.append(self._reported_at + PLAN_REFRESH_EVERY)
        wake = refresh_wake(dues, REFRESH_EVERY)
        if self._refresher is not None and not self._refresher.done():
            if wake == self._refresh_at:
                return
            self._refresher.cancel()
        self._refresher, self._refresh_at = None, wake
        if wake is not None:
            self._refresher = asyncio.create_task(
                self._refresh_later(max(wake - workflow.now(), timedelta(seconds=1))))

    async def _refresh_later(self, after: timedelta) -> None:
        await workflow.sleep(after)
        self._refresh_at = None
        if self._owe_report:
            self._effects.append(ReportToPlan())
        if self._owe_show:
            self._dirty = True

    def _publish(self) -> None:
        book = self._book
        workflow.set_current_details(book.details_markdown())
        if not self._input.search_attributes:
            return
        if self._bounded_drain:
            shown = (book.display_state().value, len(book.s.pending))
            now = workflow.now()
            if shown == self._shown and self._shown_at is not None and now - self._shown_at < REFRESH_EVERY:
                self._owe_show = True
                self._owe()
                return
            self._shown, self._shown_at, self._owe_show = shown, now, False
        workflow.upsert_search_attributes([
            names.SA_STATE.value_set(book.display_state().value),
            names.SA_PLAN.value_set(book.plan),
            names.SA_JOB.value_set(book.job),
            names.SA_COST_USD.value_set(float(book.s.cost_usd)),
            names.SA_TOKENS.value_set(book.s.tokens.total),
            names.SA_PENDING_ASKS.value_set(len(book.s.pending)),
        ])

    # ------------------------------------------------------------------ the stream activity

    def _stream_input(self) -> StreamInput:
        book = self._book
        return StreamInput(
            agent_url=self._input.agent_url, session_id=book.s.session_id or "", worktree=self._input.worktree,
            policy=book.policy, pricing=book.config.pricing, hold=book.paused or book.s.plan_hold is not None,
            # Only a budget whose excess holds asks matters to the activity (not one that just notifies).
            budget=book.s.budget if budgets.can_hold(book.s.budget.limit) else None,
            decided=list(book.s.decided), generation=book.s.generation,
            decided_through=book.s.decided_through, counted_through=book.s.counted_through,
            record_in_heartbeat=self._records,
            plan_budget=book.config.budget.plan is not None if self._plan_budget_said else None,
        )

    def _start_stream(self) -> None:
        # Every 0.4 rule that matters once asks can arrive: the first stream of a run decides them.
        self._admission = self._book.release_0_4 = workflow.patched(names.PATCH_0_4)
        self._records = workflow.patched(names.PATCH_0_6)
        self._plan_budget_said = workflow.patched(names.PATCH_0_7)
        self._heard = False
        if not self._admission:
            self._stream = calls.start_stream(self._stream_input())
            return
        queue = names.stream_task_queue(self._agent_queue or workflow.info().task_queue)
        self._stream = calls.start_stream(self._stream_input(), task_queue=queue)
        self._stream.add_done_callback(self._stream_ended)
        self._admitting = asyncio.create_task(self._watch_admission(self._book.s.generation, queue))

    def _stream_ended(self, done: asyncio.Task[None]) -> None:
        """A stream is retried without end, so one that fails has met what no retry fixes (the agent
        refuses the worker's password): the job fails, saying so. Cancelled ones were asked to stop."""
        if done is not self._stream or done.cancelled() or (error := done.exception()) is None:
            return
        cause = error.cause if isinstance(error, ActivityError) and error.cause is not None else error
        if isinstance(cause, CancelledError | asyncio.CancelledError):
            return  # stopped by this workflow (a restart, the job's end, continue-as-new)
        self._effects += self._book.fail(f"the event stream stopped: {getattr(cause, 'message', None) or cause}",
                                         workflow.now())
        self._dirty = True

    async def _watch_admission(self, generation: int, queue: str) -> None:
        """Say so, in the state, the details and to the plan, when no worker takes the stream."""
        book = self._book
        try:
            await workflow.wait_condition(
                lambda: self._heard or book.s.generation != generation or book.finished, timeout=QUEUE_AFTER)
        except TimeoutError:
            book.queued = (f"no worker has taken its event stream for {QUEUE_AFTER.seconds} s: every worker "
                           f"polling task queue {queue} already holds its --max-jobs streams, or none polls it; "
                           "the agent is prompted once one does")
            self._effects.append(ReportToPlan())
            self._dirty = True
            await self._drain()  # before the first prompt, nothing else drains

    def _restart_stream(self) -> None:
        """New inputs (hold, budget) take effect in a new generation; the old one is cancelled.

        TRY_CANCEL: the workflow does not wait for the old consumer to notice (that takes up to a
        heartbeat); both may briefly forward the same events, which the book ignores by id.
        """
        if self._stream is not None:
            self._stream.cancel()
            # Nobody awaits the old generation: consume its outcome (cancelled) so it is not
            # reported as an unretrieved exception.
            self._stream.add_done_callback(lambda done: done.cancelled() or done.exception())
        self._connected = False
        self._book.next_generation()
        self._start_stream()

    async def _stop_stream(self) -> None:
        """Before the run closes: cancel the stream, then collect what it recorded and has not
        delivered (names.PATCH_0_9; before, the collect came first, and a decision the stream
        recorded and applied after it was in no history once the job's newer run had ended).

        A job that completed needs no collect: the idle that completed it was delivered with
        every decision recorded before it, in order."""
        if self._stream is None:
            return
        collect = self._records and not (self._book.s.state is JobState.COMPLETED
                                         and workflow.patched(names.PATCH_0_6_COMPLETED))
        after_cancel = collect and workflow.patched(names.PATCH_0_9)
        if collect and not after_cancel:
            await self._collect()  # runs before 0.9: the stream could still record after this
        self._stream.cancel()
        with contextlib.suppress(ActivityError, asyncio.CancelledError):
            await self._stream
        self._stream = None
        if after_cancel:
            # After the cancel request, a record the stream makes is answered "cancelled" and not
            # applied, and the stream delivers that ask unapplied: then it is decided anew (the
            # records are marked collected). Every record applied before is in the details.
            await self._collect(after_cancel=True)

    async def _collect(self, *, after_cancel: bool = False) -> None:
        try:
            collected = await calls.collect_stream()
        except ActivityError as exc:
            message = (f"{names.ACTIVITY_COLLECT_STREAM} failed: {exc.cause or exc}; decisions the stream made "
                       "in its last seconds may be missing from the audit trail")
            workflow.logger.warning(message)
            self._book.warn(message)
            return
        if collected.items:
            batch = EventBatch(generation=-1, items=collected.items)
            book = self._book
            self._effects += (book.on_collected if after_cancel else book.on_batch)(batch, workflow.now())
            self._dirty = True

    # ------------------------------------------------------------------ signals

    @workflow.signal(name=names.SIGNAL_JOB_EVENTS, description=(
        "Internal: event batches from jobgov's stream activity. Do not send by hand."))
    def on_events(self, batch: EventBatch) -> None:
        """Events from the stream activity (asks, usage, session status), in order."""
        if batch.generation == self._book.s.generation:
            self._heard = True
            self._book.queued = None
            if any(isinstance(item, SessionItem) and item.status == "connected" for item in batch.items):
                self._connected = True
        if self._book.s.budget.limit is not None:  # only a budget warns (and so needs the marker)
            self._book.grouped_warnings = workflow.patched(names.PATCH_0_3)
        if any(isinstance(item, SessionItem) and item.unfinished for item in batch.items):
            self._book.interrupt_aware = workflow.patched(names.PATCH_0_3)
        self._effects += self._book.on_batch(batch, workflow.now())
        if (batch.agent is not None and batch.generation == self._book.s.generation
                and workflow.patched(names.PATCH_0_3)):
            self._effects += self._book.on_agent(batch.agent, workflow.now())
        self._changed()

    @workflow.signal(name=names.SIGNAL_JOB_PLAN_HOLD, description=(
        "Internal: the plan pauses or releases this job. Do not send by hand."))
    def on_plan_hold(self, hold: PlanHold) -> None:
        """The plan pauses (budget exceeded) or releases this job."""
        self._effects += self._book.plan_hold(hold, workflow.now())
        self._changed()

    # ------------------------------------------------------------------ updates (human decisions)

    async def _decide(self, effects: list[Effect]) -> None:
        self._effects += effects
        self._changed()
        await self._drain()

    @workflow.update(name=names.UPDATE_JOB_APPROVE, description=(
        'Approve a pending ask (ids in the details). Example: {"request_id": "per_123", "by": "ann"}; '
        '"always": true also approves that exact request for the rest of the job.'))
    async def approve(self, req: ApproveInput) -> DecisionRecord:
        """Approve a pending ask once, or always (a job-scoped grant of that exact request)."""
        record, effects = self._book.approve(req, workflow.now())
        await self._decide(effects)
        return record

    @approve.validator
    def _validate_approve(self, req: ApproveInput) -> None:
        reject_invalid(lambda: self._book.validate_decision(req.request_id))

    @workflow.update(name=names.UPDATE_JOB_DENY, description=(
        'Deny a pending ask; the agent is told the reason. Example: {"request_id": "per_123", '
        '"reason": "use the vendored copy"}'))
    async def deny(self, req: DenyInput) -> DecisionRecord:
        """Deny a pending ask; the reason is sent to the agent."""
        record, effects = self._book.deny(req, workflow.now())
        await self._decide(effects)
        return record

    @deny.validator
    def _validate_deny(self, req: DenyInput) -> None:
        reject_invalid(lambda: self._book.validate_decision(req.request_id))

    @workflow.update(name=names.UPDATE_JOB_RESUME, description=(
        'Resume a paused job, raising its budget first if it is spent. Example: {"add_usd": 1, "by": "ann"}'))
    async def resume(self, req: ResumeInput) -> JobStatus:
        """Resume a paused job, optionally raising its budget; the agent gets the continue prompt."""
        await self._decide(self._book.resume(req, workflow.now()))
        return self._book.status()

    @resume.validator
    def _validate_resume(self, req: ResumeInput) -> None:
        reject_invalid(lambda: self._book.validate_resume(req))

    @workflow.update(name=names.UPDATE_JOB_KILL, description=(
        'Abort the agent and end the job as killed. Example: {"by": "ann", "reason": "wrong branch"}'))
    async def kill(self, req: KillInput) -> JobStatus:
        """Abort the agent and end the job as killed."""
        await self._decide(self._book.kill(req, workflow.now()))
        return self._book.status()

    @kill.validator
    def _validate_kill(self, req: KillInput) -> None:
        reject_invalid(self._book.validate_kill)

    @workflow.update(name=names.UPDATE_JOB_END, description=(
        'For a job with an owner (jobgov mc watch): end it as its owner saw it end. Example: '
        '{"outcome": "completed", "by": "mission-control", "reason": "marked completed"}; "stopped" ends it killed.'))
    async def end(self, req: EndInput) -> JobStatus:
        """The job's owner ends it (``completed``, ``failed``, or ``stopped``: killed). Answers at
        once: the main loop carries out the rest (an abort and replies may retry for minutes
        against an agent its owner has already stopped)."""
        self._effects += self._book.end(req, workflow.now())
        self._changed()
        return self._book.status()

    @end.validator
    def _validate_end(self, req: EndInput) -> None:
        reject_invalid(lambda: self._book.validate_end(req))

    # ------------------------------------------------------------------ the same decisions, by signal

    async def _by_signal(self, decision: Literal["approve", "deny", "resume", "kill"], by: str,
                         request_id: str | None, check: Callable[[], None],
                         apply: Callable[[], list[Effect]]) -> None:
        """A decision sent as a signal (another workflow, `temporal workflow signal`). A signal cannot
        be refused before it reaches history, so it is checked here, as the update's validator
        would: one that cannot apply changes nothing and is kept, with why, in status and details.
        A repeated one finds its ask decided: applying it twice is impossible."""
        try:
            check()
        except ValueError as exc:
            workflow.logger.warning("refused %s signal from %s: %s", decision, by, exc)
            self._book.refuse(decision, request_id, by, str(exc), workflow.now())
            self._changed()
            return
        await self._decide(apply())

    @workflow.signal(name=names.SIGNAL_JOB_APPROVE, description=(
        "The approve update as a signal (for workflows and approval systems), same input; one that "
        "cannot apply is recorded as refused in the status."))
    async def approve_by_signal(self, req: ApproveInput) -> None:
        await self._by_signal("approve", req.by, req.request_id, lambda: self._book.validate_decision(req.request_id),
                              lambda: self._book.approve(req, workflow.now())[1])

    @workflow.signal(name=names.SIGNAL_JOB_DENY, description=(
        "The deny update as a signal, same input; one that cannot apply is recorded as refused."))
    async def deny_by_signal(self, req: DenyInput) -> None:
        await self._by_signal("deny", req.by, req.request_id, lambda: self._book.validate_decision(req.request_id),
                              lambda: self._book.deny(req, workflow.now())[1])

    @workflow.signal(name=names.SIGNAL_JOB_RESUME, description=(
        "The resume update as a signal, same input; one that cannot apply is recorded as refused."))
    async def resume_by_signal(self, req: ResumeInput) -> None:
        await self._by_signal("resume", req.by, None, lambda: self._book.validate_resume(req),
                              lambda: self._book.resume(req, workflow.now()))

    @workflow.signal(name=names.SIGNAL_JOB_KILL, description=(
        "The kill update as a signal, same input; one that cannot apply is recorded as refused."))
    async def kill_by_signal(self, req: KillInput) -> None:
        await self._by_signal("kill", req.by, None, self._book.validate_kill,
                              lambda: self._book.kill(req, workflow.now()))

    # ------------------------------------------------------------------ queries

    @workflow.query(name=names.QUERY_JOB_STATUS, description="The job's full status as JSON.")
    def status(self) -> JobStatus:
        """The job's full status: state, usage, cost, budget, pending asks, decisions."""
        return self._book.status()

