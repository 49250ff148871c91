"""A job's stream activity, generation by generation: the workflow's side of it.

:class:`JobStream` starts the stream activity (on the stream task queue, from 0.4), says when no
worker takes it (``queued``), restarts it when its inputs change (a hold, a budget), fails the
job when it stops on what no retry fixes, and before the run closes cancels it and collects what
it recorded and has not delivered. Workflow code (it calls ``temporalio.workflow``), passed
through the sandbox; :class:`~jobgov.temporal.workflows.job.JobWorkflow` owns one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, CancelledError

from jobgov import names
from jobgov.domain import budget as budgets
from jobgov.temporal.payloads import EventBatch, JobInput, StreamInput
from jobgov.temporal.state import JobState
from jobgov.temporal.workflows import calls
from jobgov.temporal.workflows.book import JobBook
from jobgov.temporal.workflows.effects import Effect, ReportToPlan

__all__ = ["QUEUE_AFTER", "JobStream"]

#: From release 0.4 (names.PATCH_0_4): a job whose stream no worker has taken this long
#: after it was started shows ``queued``. A worker with a free slot takes it in well under a second.
QUEUE_AFTER = timedelta(seconds=10)


class JobStream:
    """The job's current stream generation.

    Args:
        book: The job's book.
        input: The run's input.
        agent_queue: Where the agent-side activities run (``None``: the workflow's task queue).
        effects: The workflow's queue of effects, added to in place.
        touched: Marks the job's published state out of date (the main loop publishes it).
        drain: Carries out the queued effects now.
    """

    def __init__(self, book: JobBook, input: JobInput, agent_queue: str | None, effects: list[Effect],
                 touched: Callable[[], None], drain: Callable[[], Awaitable[None]]) -> None:
        self._book, self._input, self._agent_queue = book, input, agent_queue
        self._effects, self._touched, self._drain = effects, touched, drain
        self._handle: workflow.ActivityHandle[None] | None = None
        #: The current generation said it is connected (the agent may be prompted).
        self.connected = False
        #: The current generation has sent something: a worker runs it.
        self.heard = False
        #: names.PATCH_0_4: set when the first stream starts.
        self.admission = False
        self._records = False  # names.PATCH_0_6: streams record automatic decisions in heartbeats
        self._plan_budget_said = False  # names.PATCH_0_7: streams are told whether the plan has a budget
        self._admitting: asyncio.Task[None] | None = None

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

    def start(self) -> None:
        # Every 0.4 rule that matters once asks can arrive: the first stream of a run decides them.
        self.admission = self._book.release_0_4 = workflow.patched(names.PATCH_0_4)
        self._records = workflow.patched(names.PATCH_0_6)
        self._plan_budget_said = workflow.patched(names.PATCH_0_7)
        self.heard = False
        if not self.admission:
            self._handle = calls.start_stream(self._stream_input())
            return
        queue = names.stream_task_queue(self._agent_queue or workflow.info().task_queue)
        self._handle = calls.start_stream(self._stream_input(), task_queue=queue)
        self._handle.add_done_callback(self._ended)
        self._admitting = asyncio.create_task(self._watch_admission(self._book.s.generation, queue))

    async def connect(self) -> None:
        """Wait until the current stream generation is connected, or the job has ended (killed,
        cancelled): an agent is never set to work unwatched. Runs before 0.4 waited 30 s at most."""
        if self.admission:
            await workflow.wait_condition(lambda: self.connected or self._book.finished)
            return
        try:
            await workflow.wait_condition(lambda: self.connected, timeout=timedelta(seconds=30))
        except TimeoutError:
            workflow.logger.warning("event stream not connected after 30 s; prompting anyway")

    def _ended(self, done: asyncio.Task[None]) -> None:
        """A stream is retried without end, so one that fails has met what no retry fixes (the agent
        refuses the worker's password): the job fails, saying so. Cancelled ones were asked to stop."""
        if done is not self._handle or done.cancelled() or (error := done.exception()) is None:
            return
        cause = error.cause if isinstance(error, ActivityError) and error.cause is not None else error
        if isinstance(cause, CancelledError | asyncio.CancelledError):
            return  # stopped by this workflow (a restart, the job's end, continue-as-new)
        self._effects += self._book.fail(f"the event stream stopped: {getattr(cause, 'message', None) or cause}",
                                         workflow.now())
        self._touched()

    async def _watch_admission(self, generation: int, queue: str) -> None:
        """Say so, in the state, the details and to the plan, when no worker takes the stream."""
        book = self._book
        try:
            await workflow.wait_condition(
                lambda: self.heard or book.s.generation != generation or book.finished, timeout=QUEUE_AFTER)
        except TimeoutError:
            book.queued = (f"no worker has taken its event stream for {QUEUE_AFTER.seconds} s: every worker "
                           f"polling task queue {queue} already holds its --max-jobs streams, or none polls it; "
                           "the agent is prompted once one does")
            self._effects.append(ReportToPlan())
            self._touched()
            await self._drain()  # before the first prompt, nothing else drains

    def restart(self) -> None:
        """New inputs (hold, budget) take effect in a new generation; the old one is cancelled.

        TRY_CANCEL: the workflow does not wait for the old consumer to notice (that takes up to a
        heartbeat); both may briefly forward the same events, which the book ignores by id.
        """
        if self._handle is not None:
            self._handle.cancel()
            # Nobody awaits the old generation: consume its outcome (cancelled) so it is not
            # reported as an unretrieved exception.
            self._handle.add_done_callback(lambda done: done.cancelled() or done.exception())
        self.connected = False
        self._book.next_generation()
        self.start()

    async def stop(self) -> None:
        """Before the run closes: cancel the stream, then collect what it recorded and has not
        delivered (names.PATCH_0_9; before, the collect came first, and a decision the stream
        recorded and applied after it was in no history once the job's newer run had ended).

        A job that completed needs no collect: the idle that completed it was delivered with
        every decision recorded before it, in order."""
        if self._handle is None:
            return
        collect = self._records and not (self._book.s.state is JobState.COMPLETED
                                         and workflow.patched(names.PATCH_0_6_COMPLETED))
        after_cancel = collect and workflow.patched(names.PATCH_0_9)
        if collect and not after_cancel:
            await self._collect()  # runs before 0.9: the stream could still record after this
        self._handle.cancel()
        with contextlib.suppress(ActivityError, asyncio.CancelledError):
            await self._handle
        self._handle = None
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
            self._touched()
