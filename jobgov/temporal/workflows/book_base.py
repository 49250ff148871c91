"""A job's book, the part every rule stands on: its state, what it shows, and the moves the rules make.

:class:`BookBase` holds the job's state (:class:`~jobgov.temporal.payloads.JobCarry`), derives
what people read from it (the displayed state, ``status``, the Temporal UI's details, the search
attributes' figures) and what a continue-as-new carries, and makes the moves that many rules
share: record a decision in the audit trail, answer every pending ask ``reject``, pause, finish.
The rules themselves (what each input changes) are :class:`~jobgov.temporal.workflows.book.JobBook`'s.
Pure and deterministic, like the book: no I/O, no clock (``now`` is passed in).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from jobgov.domain import budget as budgets
from jobgov.domain.asks import Decision
from jobgov.domain.budget import BudgetView
from jobgov.domain.config import EffectivePolicy, PlanConfig
from jobgov.domain.watermark import compact, covered
from jobgov.temporal.metrics import ASKS, MetricEvent
from jobgov.temporal.payloads import JobStatus, PlanJobReport
from jobgov.temporal.state import DecisionAction, DecisionRecord, JobCarry, JobState, PendingAsk
from jobgov.temporal.workflows.effects import Abort, Effect, Notify, Prompt, Reply, ReportToPlan, RestartStream

#: What a continue-as-new carries of the lists that grow with the job (the rest stays in the
#: history of earlier runs; ids go under watermarks): the carried state stays bounded.
CARRIED_IDS = 256
CARRIED_DECISIONS = 50
CARRIED_WARNINGS = 20
#: Decisions kept in state (older ones stay in the history of earlier runs).
KEPT_DECISIONS = 1000


class BookBase:
    """A job's state, what it shows, and the moves its rules share."""

    def __init__(self, *, plan: str, job: str, workflow_id: str, agent_url: str, worktree: str,
                 config: PlanConfig, carry: JobCarry, owner: str | None = None) -> None:
        self.plan, self.job, self.workflow_id = plan, job, workflow_id
        #: Who ends the job (``JobInput.owner``): ``None``, the job's own idle after its work does.
        self.owner = owner
        self.agent_url, self.worktree = agent_url, worktree
        self.config = config
        self.policy: EffectivePolicy = config.policy_for(job)
        self.s = carry
        if self.s.budget.limit is None and not self.s.counted and self.s.counted_through is None:
            self.s.budget = budgets.BudgetState(limit=config.budget.for_job(job))
        self._decided = set(self.s.decided)
        #: One budget warning per dimension naming every threshold crossed at once (set by the
        #: workflow from workflow.patched: runs before 0.3 sent one per threshold).
        self.grouped_warnings = False
        #: An idle that ends an unfinished run continues or fails the job (set by the workflow from
        #: workflow.patched: runs before 0.3 completed it).
        self.interrupt_aware = False
        #: Metric events since the workflow last emitted them (pure data; see jobgov.temporal.metrics).
        self.metric_events: list[MetricEvent] = []
        #: Release 0.4's rules (set by the workflow from workflow.patched): asks a kill ends are
        #: recorded "killed" (before: "cancelled"); an unreachable agent shows in the job's state.
        self.release_0_4 = False
        #: Why no worker has taken the job's event stream yet (``None``: one has, or it is not known
        #: to be waiting). Set by the workflow; a run's own, never carried: a new run finds out anew.
        self.queued: str | None = None

    # ------------------------------------------------------------------ derived

    @property
    def finished(self) -> bool:
        return self.s.state.finished

    @property
    def paused(self) -> bool:
        return self.s.state is JobState.PAUSED

    @property
    def holding(self) -> bool:
        """Asks must not be auto-decided: paused, held by the plan, or the budget is spent."""
        return self.paused or self.s.plan_hold is not None or self.budget_holds

    @property
    def budget_holds(self) -> bool:
        """The job budget is spent and its ``on_exceed`` stops the job."""
        return budgets.holds(self.s.budget)

    def display_state(self) -> JobState:
        if self.queued is not None and self.s.state in (JobState.STARTING, JobState.RUNNING):
            return JobState.QUEUED
        agent = self.s.agent
        if (self.release_0_4 and agent is not None and not agent.reachable
                and self.s.state in (JobState.STARTING, JobState.RUNNING)):
            return JobState.AGENT_UNREACHABLE
        if self.s.state is JobState.RUNNING and self.s.pending:
            return JobState.AWAITING_APPROVAL
        return self.s.state

    def next_deadline(self) -> datetime | None:
        deadlines = [p.deadline for p in self.s.pending.values() if p.deadline is not None]
        if self.s.ending is not None:
            deadlines.append(self.s.ending.due)
        if (notify_at := self._unreachable_notify_at()) is not None:
            deadlines.append(notify_at)
        return min(deadlines) if deadlines else None

    def _unreachable_notify_at(self) -> datetime | None:
        """When to say that the agent is unreachable (``None``: it is reached, or was said)."""
        agent = self.s.agent
        if agent is None or agent.reachable or agent.notified or self.finished:
            return None
        return agent.since + self.config.agent.unreachable_notify_after

    # ------------------------------------------------------------------ helpers

    def _record(self, *, ask_id: str, permission: str, patterns: list[str], action: DecisionAction,
                reply: Literal["once", "always", "reject"] | None, decision: Decision | PendingAsk,
                actor: str, now: datetime, message: str | None = None) -> DecisionRecord:
        record = DecisionRecord(
            request_id=ask_id, permission=permission, patterns=patterns, action=action, reply=reply,
            category=decision.category, reason=decision.reason, rule=decision.rule, actor=actor, at=now,
            message=message,
        )
        self.s.decisions = [*self.s.decisions, record][-KEPT_DECISIONS:]
        self.metric_events.append((ASKS, 1, {"action": action, "category": str(decision.category),
                                                     "actor": actor}))
        self._decided.add(ask_id)
        self.s.decided.append(ask_id)
        return record

    def _cancel_pending(self, now: datetime, why: str,
                        action: Literal["cancelled", "killed"] = "cancelled") -> list[Effect]:
        """Every pending ask is answered ``reject`` and never approved (PROTOCOL finding 3)."""
        effects: list[Effect] = []
        for pending in list(self.s.pending.values()):
            del self.s.pending[pending.id]
            self._record(ask_id=pending.id, permission=pending.permission, patterns=pending.patterns,
                         action=action, reply="reject", decision=pending, actor="jobgov", now=now,
                         message=why)
            effects.append(Reply(pending.id, "reject"))
        return effects

    def _pause(self, now: datetime, reason: str) -> list[Effect]:
        if self.finished or self.paused:
            return []
        self.s.state = JobState.PAUSED
        self.s.paused_reason = reason
        return [Abort(), *self._cancel_pending(now, f"paused: {reason}"), RestartStream(),
                Notify("paused", f"job {self.job} paused: {reason}")]

    def _finish(self, state: JobState, now: datetime, why: str) -> list[Effect]:
        if self.finished:
            return []
        effects: list[Effect] = []
        if state is JobState.KILLED:
            effects.append(Abort())
        killed = state is JobState.KILLED and self.release_0_4
        effects += self._cancel_pending(now, why, "killed" if killed else "cancelled")
        self.s.state, self.s.ended, self.s.ending = state, why, None
        kind: Literal["killed", "finished"] = "killed" if state is JobState.KILLED else "finished"
        return [*effects, ReportToPlan(), Notify(kind, f"job {self.job} {state.value}: {why}")]

    def _unpause(self, why: str) -> list[Effect]:
        self.s.state = JobState.RUNNING
        self.s.paused_reason = None
        # Only the continued run's own work makes its idle mean "done" (the aborted run idles late).
        self.s.seen_busy, self.s.awaiting_run = False, True
        return [RestartStream(), Prompt(self.config.agent.continue_prompt), Notify("resumed", f"job {self.job} {why}")]

    def _end_now(self, outcome: Literal["completed", "failed"], why: str, now: datetime) -> list[Effect]:
        if outcome == "failed":
            self.s.error = why
            return self._finish(JobState.FAILED, now, why)
        return self._finish(JobState.COMPLETED, now, why)

    def _granted(self, permission: str, patterns: list[str]) -> bool:
        return any(g.permission == permission and g.patterns == patterns for g in self.s.grants)

    # ------------------------------------------------------------------ views

    def budget_view(self) -> BudgetView | None:
        return budgets.view(self.s.budget)

    def status(self) -> JobStatus:
        s = self.s
        return JobStatus(
            plan=self.plan, job=self.job, workflow_id=self.workflow_id, state=self.display_state(),
            session_id=s.session_id, agent_url=self.agent_url, worktree=self.worktree,
            tokens=s.tokens.as_dict(), cost_usd=float(s.cost_usd), agent_cost_usd=float(s.agent_cost_usd),
            steps=s.steps, cost_sources=s.cost_sources, budget=self.budget_view(),
            pending=list(s.pending.values()),
            decisions=s.decisions, warnings=s.warnings, paused_reason=s.paused_reason, error=s.error,
            agent=s.agent, queued=self.queued, refused=s.refused, owner=self.owner, ended=s.ended,
        )

    def details_markdown(self) -> str:
        """A short summary for ``workflow.set_current_details`` (shown in the Temporal UI)."""
        s = self.s
        # Amounts read "0.0037 USD": the Temporal UI renders details as markdown with maths, where a
        # bare dollar sign starts a formula.
        lines = [f"**{self.display_state().value}** · {float(s.cost_usd):.4f} USD · {s.tokens.total} tokens"
                 f" · {s.steps} steps"]
        if self.queued is not None:
            lines.append(f"**Queued**: {self.queued}")
        if s.agent is not None and not s.agent.reachable:
            lines.append(f"**Agent unreachable** since {s.agent.since:%Y-%m-%d %H:%M:%S} UTC: {s.agent.error or '?'} "
                         "(the stream keeps retrying).")
        if s.ended:
            lines.append(f"Ended: {s.ended}")
        elif s.ending is not None:
            lines.append(f"Ending: {s.ending.why} (once the run's last steps arrive, by {s.ending.due:%H:%M:%S} UTC)")
        if s.paused_reason:
            lines.append(f"Paused: {s.paused_reason}. Send update `resume` (e.g. `{{\"add_usd\": 1}}`).")
        view = self.budget_view()
        if view is not None:
            limit = view.limit
            parts = []
            if limit is not None and limit.usd is not None:
                parts.append(f"{view.spent_usd:.4f} of {limit.usd:g} USD")
            if limit is not None and limit.tokens is not None:
                parts.append(f"{view.spent_tokens} of {limit.tokens} tokens")
            lines.append("Budget: " + ", ".join(parts) + (" — **exceeded**" if view.exceeded else ""))
        if s.warnings:
            lines.append("Latest warnings: " + "; ".join(s.warnings[-3:]))
        lines += [f"Refused signal: {r.describe()}" for r in s.refused[-3:]]
        if s.pending:
            lines.append("Pending asks (send update `approve` or `deny` with `{\"request_id\": ...}`):")
            lines += [f"- `{p.id}` {p.permission} `{' '.join(p.patterns)[:80]}`: {p.reason[:120]}"
                      for p in s.pending.values()]
        return "\n".join(lines)

    def is_decided(self, ask_id: str) -> bool:
        """The ask was decided or cancelled (in this run or an earlier one): never again."""
        return ask_id in self._decided or covered(ask_id, self.s.decided_through)

    def _counted(self, part_id: str) -> bool:
        return part_id in self.s.counted or covered(part_id, self.s.counted_through)

    def compacted(self) -> JobCarry:
        """The state to carry across continue-as-new, bounded whatever the job's length.

        Counted steps and decided asks keep their newest ids and a watermark for the rest (an
        ask still pending is never put under it); decisions and warnings keep
        their newest entries; everything else stays in the history of this run.
        """
        s = self.s
        counted, counted_through = compact(s.counted, s.counted_through, CARRIED_IDS)
        oldest_pending = min(s.pending) if s.pending else None
        decided, decided_through = compact(s.decided, s.decided_through, CARRIED_IDS, below=oldest_pending)
        return s.model_copy(update={
            "counted": {part_id: s.counted[part_id] for part_id in counted},
            "counted_through": counted_through,
            "decided": decided,
            "decided_through": decided_through,
            "decisions": s.decisions[-CARRIED_DECISIONS:],
            "recent_steps": [],  # from 0.10, none are kept (see JobCarry.recent_steps)
            "warnings": s.warnings[-CARRIED_WARNINGS:],
        })

    # ------------------------------------------------------------------ the workflow's bookkeeping

    def warn(self, message: str) -> None:
        """Keep a warning for status and details (e.g. an activity that failed for good)."""
        self.s.warnings.append(message)

    def next_report(self) -> PlanJobReport:
        """The job's cumulative usage for its plan, numbered so that the newest report wins."""
        self.s.report_seq += 1
        return PlanJobReport(workflow_id=self.workflow_id, job=self.job, seq=self.s.report_seq,
                             cost_usd=self.s.cost_usd, tokens=self.s.tokens.total, state=self.display_state())

    def next_generation(self) -> int:
        """Number a new generation of the stream activity (its batches carry it)."""
        self.s.generation += 1
        return self.s.generation
