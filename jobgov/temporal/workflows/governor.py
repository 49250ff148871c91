"""JobGovernor: the body of :class:`~jobgov.temporal.workflows.job.JobWorkflow`, one durable
workflow per agent job.

The rules live in :class:`~jobgov.temporal.workflows.book.JobBook` (pure); this class
wires them to Temporal: the stream activity feeds event batches in by signal,
humans decide by update (validated before anything reaches history), the plan
holds and releases by signal, and the effects the book asks for (replies,
aborts, prompts, notifications, plan reports, stream restarts) run as
activities, in order, one at a time. The stream activity's generations are
:class:`~jobgov.temporal.workflows.streams.JobStream`'s, and what people and the
plan see of the job (details, search attributes, reports) is
:class:`~jobgov.temporal.workflows.publish.Publisher`'s.

Its handlers are declared here; ``job.py`` declares the workflow (its ``@workflow.defn``,
``@workflow.init`` and ``@workflow.run``). This module is passed through the workflow sandbox
like the other helpers: the sandbox imports the module defining a workflow class anew for each
run, and this body's bytecode alone is about 63 KB of a worker's memory for every job it runs.
Like every module of the workflows package, it does no I/O and reads no clock, randomness or
environment but through ``temporalio.workflow``; it keeps no module-level state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Literal

import pydantic
from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, FailureError

from jobgov import names
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
from jobgov.temporal.workflows.publish import Publisher
from jobgov.temporal.workflows.streams import JobStream
from jobgov.temporal.workflows.support import continue_as_new_due, reject_invalid


class JobGovernor:
    """Governs one opencode session: decisions, usage, budget, pauses (see ``JobWorkflow``)."""

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
        self._stream = JobStream(self._book, input, self._agent_queue, self._effects, self._touch, self._drain)
        self._dirty = True
        self._bounded_drain = False
        self._publisher = Publisher(self._book, input, self._effects, self._touch)
        self._continuing = False
        self._metrics: Metrics | None = None
        self._metric_state: str | None = None

    # ------------------------------------------------------------------ main loop

    async def govern(self, input: JobInput) -> JobResult:
        """The workflow's run (``JobWorkflow.run``)."""
        # Runs started before this release drained without checking (their histories replay so).
        self._bounded_drain = self._publisher.bounded = workflow.patched(names.PATCH_0_2)
        self._publisher.ride = self._bounded_drain and workflow.patched(names.PATCH_0_8)
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
        await self._stream.stop()
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
                self._publisher.publish()
                await workflow.sleep(delay)
                delay = min(delay * 2, timedelta(seconds=15))

    async def _govern(self, input: JobInput) -> JobResult:
        book = self._book
        if book.s.session_id is None:
            session_id = input.session_id or await self._create_session(
                CreateSessionInput(agent_url=input.agent_url, title=f"{input.plan}/{input.job}")
            )
            book.started(session_id, prompt_sent=False)
        self._stream.start()
        if input.prompt is not None and not book.s.prompt_sent:
            # Subscribe first (the stream reconciles anyway), so the run's first events are seen live.
            await self._stream.connect()
            if not (self._stream.admission and book.finished):  # killed or cancelled while it waited
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
                await self._stream.stop()
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

        await self._stream.stop()
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._drain()
        return JobResult(status=book.status())

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
                self._publisher.publish()
                self._dirty = False
            if self._publisher.ride:
                self._publisher.rearm()  # what this task refreshed needs no timer

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

    def _touch(self) -> None:
        """The book changed outside a handler (a stream's callbacks, the refresh timer): the main loop
        publishes it."""
        self._dirty = True

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
        reported = self._publisher.reported
        return (reported is not None and not self._continuing and not self._effects
                and reported != self._book.display_state().value and workflow.patched(names.PATCH_0_3))

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
            await self._stream.connect()  # so the continued run is seen live, not only reconciled
            if self._stream.admission and book.finished:
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
            if not self._publisher.report_now(continuing=self._continuing):
                return  # held back, for the refresh timer or the next run
            await self._call(names.ACTIVITY_REPORT_TO_PLAN, calls.report_to_plan(ReportToPlanInput(
                plan=book.plan, budget=book.config.budget.plan, report=book.next_report())))
        elif isinstance(effect, RestartStream):
            self._stream.restart()

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

    def _next_wake(self) -> datetime | None:
        """When the main loop must wake with nothing arriving: the next ask deadline."""
        return self._book.next_deadline()

    def _wake(self, now: datetime) -> None:
        self._effects += self._book.expire(now)
        self._note_state()

    # ------------------------------------------------------------------ signals

    @workflow.signal(name=names.SIGNAL_JOB_EVENTS, description=(
        "Internal: event batches from jobgov's stream activity. Do not send by hand."))
    def on_events(self, batch: EventBatch) -> None:
        """Events from the stream activity (asks, usage, session status), in order."""
        if batch.generation == self._book.s.generation:
            self._stream.heard = True
            self._book.queued = None
            if any(isinstance(item, SessionItem) and item.status == "connected" for item in batch.items):
                self._stream.connected = True
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

