"""What people and the plan see of a job, and when it is refreshed: the workflow's side of it.

:class:`Publisher` sets the Temporal UI's current details at every publish, upserts the search
attributes (the state and pending asks at once, the spending at most every
:data:`REFRESH_EVERY`), decides when a report to the plan can wait, and keeps the one timer
that brings a refresh held back (from 0.8 it wakes one refresh interval after the earliest is
due, so a job at work, whose next delivery does the refresh, cancels it). Workflow code (it
calls ``temporalio.workflow``), passed through the sandbox;
:class:`~jobgov.temporal.workflows.job.JobWorkflow` owns one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

from temporalio import workflow

from jobgov import names
from jobgov.temporal.payloads import JobInput
from jobgov.temporal.workflows.book import JobBook
from jobgov.temporal.workflows.effects import Effect, ReportToPlan
from jobgov.temporal.workflows.support import refresh_wake

__all__ = ["PLAN_REFRESH_EVERY", "REFRESH_EVERY", "Publisher"]

#: From release 0.2 on (names.PATCH_0_2): what the UI and the plan see of a job's spending is
#: refreshed at most this often, its state and pending asks at once. A search-attribute upsert and
#: a plan report for every step cost 5 history events a step.
REFRESH_EVERY = timedelta(seconds=5)
#: From release 0.8 (names.PATCH_0_8): how often a job whose plan has no budget reports its spending
#: to the plan (a change of state is reported at once; a plan with a budget hears of every step).
#: Each report is an activity and two workflow tasks: at 100 jobs, one every 5 s cost the worker
#: about 2 ms of CPU per ask (of 10).
PLAN_REFRESH_EVERY = timedelta(seconds=30)


class Publisher:
    """A job's published state: its details, search attributes and reports to its plan.

    Args:
        book: The job's book.
        input: The run's input (``search_attributes``: whether the job has them).
        effects: The workflow's queue of effects, added to in place.
        touched: Marks the job's published state out of date (the main loop publishes it).
    """

    def __init__(self, book: JobBook, input: JobInput, effects: list[Effect], touched: Callable[[], None]) -> None:
        self._book, self._input, self._effects, self._touched = book, input, effects, touched
        #: names.PATCH_0_2: refreshes are bounded (set by the workflow's run).
        self.bounded = False
        #: names.PATCH_0_8: refreshes ride on other workflow tasks (set by the workflow's run).
        self.ride = False
        self._shown: tuple[str, int] | None = None  # the state and pending count last upserted
        self._shown_at: datetime | None = None
        self._owe_show = False
        #: The state last reported to the plan.
        self.reported: str | None = None
        self._reported_at: datetime | None = None
        self._owe_report = False
        self._refresher: asyncio.Task[None] | None = None
        self._refresh_at: datetime | None = None  # when the refresher wakes (names.PATCH_0_8)

    def report_now(self, *, continuing: bool) -> bool:
        """A report to the plan is due: ``True`` when it goes now (it is then noted as sent), ``False``
        when it waits (held back for the timer, or for the next run, when ``continuing``)."""
        if self.bounded and (continuing or self._report_can_wait()):
            self._owe_report = not continuing
            if self._owe_report:
                self._owe()
            return False
        self.reported, self._reported_at = self._book.display_state().value, workflow.now()
        self._owe_report = False
        return True

    def _report_can_wait(self) -> bool:
        """The plan heard from this job a moment ago, in the same state, and has no budget for
        the spending to cross: it can wait. A plan budget is enforced on every step's report."""
        every = PLAN_REFRESH_EVERY if self.ride else REFRESH_EVERY
        return (self._book.config.budget.plan is None
                and self.reported == self._book.display_state().value and self._reported_at is not None
                and workflow.now() - self._reported_at < every)

    def _owe(self) -> None:
        """A refresh was held back: one timer (not one per wake-up of the loop) brings it later.

        From 0.8 the timer wakes one refresh interval after the earliest refresh is due: a job at
        work has a workflow task (a delivery) in between, which does the refresh and cancels it."""
        if not self.ride:
            if self._refresher is None or self._refresher.done():
                self._refresher = asyncio.create_task(self._refresh_later(REFRESH_EVERY))
            return
        self.rearm()

    def rearm(self) -> None:
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
            self._touched()

    def publish(self) -> None:
        """The details now; the search attributes now, or held back for the refresh timer."""
        book = self._book
        workflow.set_current_details(book.details_markdown())
        if not self._input.search_attributes:
            return
        if self.bounded:
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
