"""What a job's workflow carries: its state, pending asks, grants and audit trail.

Kept by :class:`~jobgov.temporal.workflows.job.JobWorkflow` and carried across
continue-as-new (as ``JobInput.carry``), so every shape here is recorded in
history: fields are only ever added, with defaults.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict

from jobgov.domain.asks import Category
from jobgov.domain.budget import BudgetState
from jobgov.domain.usage import CostRecord, StepUsage, TokenCounts


class Message(BaseModel):
    """Base of every recorded shape of jobgov's Temporal layer.

    Fields this version does not know are ignored, so that a newer client or worker talking to
    an older one (and the reverse, with every new field defaulted) works during a rolling deploy.
    """

    model_config = ConfigDict(extra="ignore")


class JobState(StrEnum):
    """Where a job is; also the ``JobGovState`` search attribute."""

    STARTING = "starting"
    QUEUED = "queued"
    """No worker has taken the job's event stream yet (every one is full, or none polls its
    queue): the job waits, unprompted, and ``JobStatus.queued`` says why. Shown, never carried."""
    RUNNING = "running"
    AGENT_UNREACHABLE = "agent-unreachable"
    """Running (or starting), but the stream cannot reach the agent: ``JobStatus.agent`` says
    since when and why. Shown, never carried; from 0.4."""
    AWAITING_APPROVAL = "awaiting-approval"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    KILLED = "killed"
    # How Temporal closed a job's workflow without the job ending it: reported by the client
    # from the execution's status (a terminated or timed-out workflow can publish nothing).
    TERMINATED = "terminated"
    TIMED_OUT = "timed-out"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        """The job has ended and takes no more decisions."""
        return self in _FINISHED


_FINISHED = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.KILLED, JobState.TERMINATED,
                       JobState.TIMED_OUT, JobState.CANCELLED})


class PendingAsk(Message):
    """An ask waiting for a human (or held while the job is paused)."""

    id: str
    permission: str
    patterns: list[str]
    category: Category
    reason: str
    rule: str | None = None
    asked_at: datetime
    deadline: datetime | None = None
    """When it is decided by ``approvals.on_timeout`` (``None``: never)."""


#: What finally happened to an ask (``decisions[].action``).
DecisionAction = Literal[
    "auto-approve",  # the policy approved it
    "deny",  # denied, by the policy or a person (``actor`` says who)
    "approve",  # a human approved it once
    "approve-always",  # a human approved it and granted that exact pattern for the job
    "grant",  # approved by an earlier approve-always of the same pattern
    "reject",  # a person denied it, as releases before 0.3 recorded it (now "deny")
    "timeout",  # nobody decided in time: approvals.on_timeout applied
    "cancelled",  # the run was aborted or paused while it was pending: never approved
    "killed",  # the job was killed (kill, a budget or timeout kill, a cancel request) while it was pending
]


class DecisionRecord(Message):
    """One entry of a job's audit trail."""

    request_id: str
    permission: str
    patterns: list[str]
    action: DecisionAction
    reply: Literal["once", "always", "reject"] | None
    """What the agent was answered (``None``: nothing, e.g. a cancelled ask)."""
    category: Category
    reason: str
    rule: str | None = None
    actor: str
    """``policy``, ``policy-recheck``, a person's name, ``timeout`` or ``jobgov``."""
    at: datetime
    message: str | None = None
    """The message sent to the agent with a rejection."""
    collected: bool = False
    """From 0.9: read by ``collect_stream`` from the heartbeat of a stream whose cancel was already
    requested, so the stream may not have applied it (a record answered "cancelled" is not
    applied). If the stream then delivers that ask unapplied, the ask is decided anew."""


class PendingEnd(Message):
    """The owner ended the job while its stream still saw the run at work (from 0.5): it ends
    when the run's idle arrives, so that the run's last steps are counted, or at ``due``."""

    outcome: Literal["completed", "failed"]
    why: str
    due: datetime


class RefusedDecision(Message):
    """A decision sent as a signal that could not apply. A signal cannot be refused before it
    reaches history (an update's validator can), so it is checked when applied, and kept here."""

    decision: Literal["approve", "deny", "resume", "kill"]
    request_id: str | None = None
    by: str
    reason: str
    at: datetime

    def describe(self) -> str:
        """``approve per_1 by ann at 12:00:00 UTC: no pending ask per_1 in job j`` (for details)."""
        what = f"{self.decision} {self.request_id}" if self.request_id else self.decision
        return f"{what} by {self.by} at {self.at:%H:%M:%S} UTC: {self.reason}"


#: Decisions by signal that could not apply, kept (the newest) by a job or a plan.
KEPT_REFUSED = 20


def keep_refused(kept: list[RefusedDecision], refused: RefusedDecision) -> list[RefusedDecision]:
    """``kept`` with ``refused`` added, the newest :data:`KEPT_REFUSED` only."""
    return [*kept, refused][-KEPT_REFUSED:]


class Grant(Message):
    """A job-scoped "always": this exact permission and patterns are approved from now on."""

    permission: str
    patterns: list[str]
    by: str
    at: datetime


class StepRecord(Message):
    """A counted model call with its price."""

    step: StepUsage
    cost: CostRecord


class AgentReach(Message):
    """Whether the stream activity reaches the job's agent (sent on a change, and kept)."""

    reachable: bool
    since: datetime
    """When it was last reached (unreachable), or reached again (reachable)."""
    error: str | None = None
    """Why it is not reached: the connection error, or how long no frame came."""
    notified: bool = False
    """The "unreachable" notification went out for this outage."""


class JobCarry(Message):
    """A job's whole state: kept by the workflow and carried across continue-as-new."""

    state: JobState = JobState.STARTING
    session_id: str | None = None
    prompt_sent: bool = False
    seen_busy: bool = False
    """The session was seen working (busy, a step, an ask), so an idle means "done"."""
    awaiting_run: bool = False
    """Resumed: only the continued run's own "busy" (or a live ask) counts as work."""
    counted: dict[str, Decimal] = {}
    """USD of every counted step by part id: a replayed or duplicated event never counts twice,
    and a step re-priced once its model is known changes the total by the difference only.
    Across continue-as-new only the newest are carried, the rest under ``counted_through``."""
    counted_through: str | None = None
    """Every step whose part id sorts at or before this was counted (see jobgov.domain.watermark)."""
    recent_steps: list[StepRecord] = []
    """Before 0.10, the newest steps with their prices (200 kept, 20 carried; nothing read them).
    From 0.10 none are kept or carried: every step is in history, in the signal that brought it.
    Unpatched: it changes no command, so 0.9 and 0.10 workers replay each other's histories."""
    tokens: TokenCounts = TokenCounts()
    cost_usd: Decimal = Decimal(0)
    agent_cost_usd: Decimal = Decimal(0)
    steps: int = 0
    cost_sources: list[str] = []
    budget: BudgetState = BudgetState()
    warnings: list[str] = []
    pending: dict[str, PendingAsk] = {}
    decided: list[str] = []
    """Ask ids decided or cancelled: never decided again (the newest; older ones under
    ``decided_through``)."""
    decided_through: str | None = None
    """Every ask whose id sorts at or before this was decided or cancelled."""
    decisions: list[DecisionRecord] = []
    grants: list[Grant] = []
    plan_hold: str | None = None
    """Why the plan holds this job (``None``: it does not)."""
    paused_reason: str | None = None
    error: str | None = None
    ended: str | None = None
    """Why the job ended, as its notification says (who killed it, its owner's word; from 0.5)."""
    ending: PendingEnd | None = None
    report_seq: int = 0
    generation: int = 0
    agent: AgentReach | None = None
    """The agent's reachability as the stream last reported it (``None``: never reported)."""
    continues: int = 0
    """Continue prompts sent for runs that ended unfinished."""
    refused: list[RefusedDecision] = []
    """The newest decisions sent by signal that could not apply (from 0.4)."""
