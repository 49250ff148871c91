"""PlanWorkflow: one per plan; holds the plan budget over all its jobs.

Jobs report their *cumulative* usage (signal-with-start, so the first job
starts the plan); a report with an older sequence number than the last one
seen is ignored, so duplicated or reordered reports never count twice. When
the plan budget is exceeded every running job is paused (or killed) by signal
and released together when a person resumes the plan.
"""

from __future__ import annotations

from decimal import Decimal

from temporalio import workflow

from jobgov import names
from jobgov.domain import budget as budgets
from jobgov.temporal.payloads import (
    NotifyInput,
    NotifyKind,
    PlanHold,
    PlanInput,
    PlanJobReport,
    PlanResumeInput,
    PlanStatus,
)
from jobgov.temporal.state import RefusedDecision, keep_refused
from jobgov.temporal.workflows import calls
from jobgov.temporal.workflows.support import continue_as_new_due, reject_invalid

#: Continue-as-new well before Temporal's history limits.
HISTORY_EVENTS_LIMIT = 10_000


@workflow.defn(name=names.PLAN_WORKFLOW)
class PlanWorkflow:
    """The plan's budget, and the jobs it pauses and releases together."""

    @workflow.init
    def __init__(self, input: PlanInput) -> None:
        self._input = input
        self._jobs: dict[str, PlanJobReport] = dict(input.jobs)
        self._budget = input.state or budgets.BudgetState(limit=input.budget)
        self._paused = input.paused
        self._refused: list[RefusedDecision] = list(input.refused)
        self._outbox: list[tuple[str, PlanHold]] = []
        self._notes: list[tuple[NotifyKind, str]] = []

    @workflow.run
    async def run(self, input: PlanInput) -> None:
        while True:
            await workflow.wait_condition(
                lambda: bool(self._outbox or self._notes) or continue_as_new_due(HISTORY_EVENTS_LIMIT)
            )
            await self._flush()
            if continue_as_new_due(HISTORY_EVENTS_LIMIT):
                await workflow.wait_condition(workflow.all_handlers_finished)
                await self._flush()
                workflow.continue_as_new(PlanInput(plan=input.plan, budget=self._budget.limit, jobs=self._jobs,
                                                   state=self._budget, paused=self._paused,
                                                   refused=self._refused))

    async def _flush(self) -> None:
        while self._notes:
            kind, message = self._notes.pop(0)
            workflow.logger.info("%s: %s", kind, message)
            await calls.notify_from_plan(NotifyInput(kind=kind, plan=self._input.plan, job=None,
                                                     workflow_id=workflow.info().workflow_id, message=message))
        while self._outbox:
            workflow_id, hold = self._outbox.pop(0)
            try:
                await workflow.get_external_workflow_handle(workflow_id).signal(names.SIGNAL_JOB_PLAN_HOLD, hold)
            except Exception as exc:  # noqa: BLE001 - a job that has ended cannot be held; that is fine
                workflow.logger.info("could not signal %s: %s", workflow_id, exc)
        workflow.set_current_details(self._details())

    def _running_jobs(self) -> list[str]:
        return [wid for wid, report in self._jobs.items() if not report.state.finished]

    # ------------------------------------------------------------------ signals

    @workflow.signal(name=names.SIGNAL_PLAN_JOB_REPORT, description=(
        "Internal: a job's cumulative usage, from jobgov's activities. Do not send by hand."))
    def on_job_report(self, report: PlanJobReport) -> None:
        """A job's cumulative usage; the newest ``seq`` per job wins."""
        previous = self._jobs.get(report.workflow_id)
        if previous is not None and previous.seq >= report.seq:
            return
        delta_usd = report.cost_usd - (previous.cost_usd if previous else Decimal(0))
        delta_tokens = report.tokens - (previous.tokens if previous else 0)
        self._jobs[report.workflow_id] = report
        self._budget, outcome = budgets.apply(self._budget, delta_usd, delta_tokens)
        grouped = workflow.patched(names.PATCH_0_3) if outcome.warnings else False
        for text in budgets.warning_texts(f"plan {self._input.plan}", outcome.warnings, grouped=grouped):
            self._notes.append(("budget-warning", text))
        if outcome.exceeded:
            why = f"plan budget exceeded ({', '.join(outcome.exceeded_dimensions)})"
            if outcome.action == "notify":
                self._notes.append(("budget-warning", f"plan {self._input.plan}: {why}"))
            else:
                self._paused = True
                kill = outcome.action == "kill"
                self._outbox += [(wid, PlanHold(hold=True, reason=why, kill=kill)) for wid in self._running_jobs()]
                self._notes.append(("plan-paused", f"plan {self._input.plan}: {why}; "
                                    f"{'killed' if kill else 'paused'} {len(self._running_jobs())} jobs"))
        elif self._paused and previous is None and not report.state.finished:
            # A job that starts while the plan is paused is held too.
            self._outbox.append((report.workflow_id, PlanHold(hold=True, reason="the plan is paused")))

    # ------------------------------------------------------------------ updates

    @workflow.update(name=names.UPDATE_PLAN_RESUME, description=(
        'Resume every job the plan paused, raising its budget first. Example: {"add_usd": 5, "by": "ann"}'))
    async def resume(self, req: PlanResumeInput) -> PlanStatus:
        """Resume every job of the plan, optionally raising the plan budget first."""
        self._resume(req)
        return self.status()

    def _resume(self, req: PlanResumeInput) -> None:
        self._budget = self._raised(req)
        self._paused = False
        self._outbox += [(wid, PlanHold(hold=False, reason=f"resumed by {req.by}")) for wid in self._running_jobs()]
        self._notes.append(("resumed", f"plan {self._input.plan} resumed by {req.by}"))

    @resume.validator
    def _validate_resume(self, req: PlanResumeInput) -> None:
        reject_invalid(lambda: self._check_resume(req))

    @workflow.signal(name=names.SIGNAL_PLAN_RESUME, description=(
        "The resume update as a signal (for workflows and approval systems), same input; one that "
        "cannot apply is recorded as refused in the status."))
    def resume_by_signal(self, req: PlanResumeInput) -> None:
        """Checked when applied (a signal cannot be refused before history): a refused one changes nothing."""
        try:
            self._check_resume(req)
        except ValueError as exc:
            workflow.logger.warning("refused resume signal from %s: %s", req.by, exc)
            refused = RefusedDecision(decision="resume", by=req.by, reason=str(exc), at=workflow.now())
            self._refused = keep_refused(self._refused, refused)
            workflow.set_current_details(self._details())
            return
        self._resume(req)

    def _check_resume(self, req: PlanResumeInput) -> None:
        if not self._paused:
            raise ValueError(f"plan {self._input.plan} is not paused")
        self._raised(req)

    def _raised(self, req: PlanResumeInput) -> budgets.BudgetState:
        return budgets.raised_for_resume(self._budget, req.add_usd, req.add_tokens, "plan")

    # ------------------------------------------------------------------ queries

    @workflow.query(name=names.QUERY_PLAN_STATUS, description="The plan's jobs, totals and budget as JSON.")
    def status(self) -> PlanStatus:
        """The plan's jobs (latest reports), totals and budget."""
        view = budgets.view(self._budget)
        return PlanStatus(
            plan=self._input.plan, workflow_id=workflow.info().workflow_id, paused=self._paused,
            jobs=list(self._jobs.values()), cost_usd=float(sum((r.cost_usd for r in self._jobs.values()), Decimal(0))),
            tokens=sum(r.tokens for r in self._jobs.values()), budget=view, refused=self._refused,
        )

    def _details(self) -> str:
        status = self.status()
        state = "paused" if status.paused else "running"
        # "0.0037 USD": the Temporal UI renders details as markdown with maths ($ starts a formula).
        head = f"**plan {status.plan}** · {state} · {status.cost_usd:.4f} USD · {status.tokens} tokens"
        rows = [f"- {r.job}: {r.state.value}, {float(r.cost_usd):.4f} USD, {r.tokens} tokens" for r in status.jobs]
        if status.paused:
            rows.append("Paused: send update `resume` (e.g. `{\"add_usd\": 5}`).")
        rows += [f"Refused signal: {r.describe()}" for r in status.refused[-3:]]
        return "\n".join([head, *rows])

