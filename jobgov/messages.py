"""Inputs and outputs of jobgov's workflows, activities, signals, updates and queries.

One pydantic model per call (STYLE: "one serializable input object per
call"), so fields can be added compatibly. Everything here is recorded in
workflow history and shown in the Temporal UI: no secrets.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from jobgov.budget import BudgetLimit, BudgetState, BudgetWarning
from jobgov.config import EffectivePolicy, PlanConfig
from jobgov.models import Category, Decision, NormalizedAsk, PermissionAsk
from jobgov.usage.ledger import CostRecord, StepUsage, TokenCounts
from jobgov.usage.pricing import PricingConfig


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JobState(StrEnum):
    """Where a job is; also the ``JobGovState`` search attribute."""

    STARTING = "starting"
    RUNNING = "running"
    AWAITING_APPROVAL = "awaiting-approval"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    KILLED = "killed"

    @property
    def finished(self) -> bool:
        """The job has ended and takes no more decisions."""
        return self in (JobState.COMPLETED, JobState.FAILED, JobState.KILLED)


# ---------------------------------------------------------------------------
# Job workflow state


class PendingAsk(_Message):
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
    "deny",  # the policy denied it
    "approve",  # a human approved it once
    "approve-always",  # a human approved it and granted that exact pattern for the job
    "grant",  # approved by an earlier approve-always of the same pattern
    "reject",  # a human denied it
    "timeout",  # nobody decided in time: approvals.on_timeout applied
    "cancelled",  # the run was aborted or paused while it was pending: never approved
]


class DecisionRecord(_Message):
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


class Grant(_Message):
    """A job-scoped "always": this exact permission and patterns are approved from now on."""

    permission: str
    patterns: list[str]
    by: str
    at: datetime


class StepRecord(_Message):
    """A counted model call with its price."""

    step: StepUsage
    cost: CostRecord


class BudgetView(_Message):
    """A budget as shown to people."""

    limit: BudgetLimit | None
    spent_usd: float
    spent_tokens: int
    warnings: list[BudgetWarning]
    exceeded: bool


class JobCarry(_Message):
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
    and a step re-priced once its model is known changes the total by the difference only."""
    recent_steps: list[StepRecord] = []
    """The newest steps with their prices (older ones stay in history)."""
    tokens: TokenCounts = TokenCounts()
    cost_usd: Decimal = Decimal(0)
    agent_cost_usd: Decimal = Decimal(0)
    steps: int = 0
    cost_sources: list[str] = []
    budget: BudgetState = BudgetState()
    warnings: list[str] = []
    pending: dict[str, PendingAsk] = {}
    decided: list[str] = []
    """Ask ids decided or cancelled: never decided again."""
    decisions: list[DecisionRecord] = []
    grants: list[Grant] = []
    plan_hold: str | None = None
    """Why the plan holds this job (``None``: it does not)."""
    paused_reason: str | None = None
    error: str | None = None
    report_seq: int = 0
    generation: int = 0


# ---------------------------------------------------------------------------
# Workflow inputs and results


class JobInput(_Message):
    """Start a governed job."""

    plan: str = Field(min_length=1)
    job: str = Field(min_length=1)
    agent_url: str = Field(min_length=1)
    """The ``opencode serve`` base URL, e.g. ``http://127.0.0.1:4096``."""
    worktree: str = Field(min_length=1)
    """The job's worktree (the agent's project directory), as the agent sees it."""
    session_id: str | None = None
    """Govern this existing session ..."""
    prompt: str | None = None
    """... or create a session and send it this prompt (both: prompt the given session)."""
    config: PlanConfig = PlanConfig()
    search_attributes: bool = True
    """Upsert jobgov's search attributes (off for servers that lack them, e.g. the time-skipping server)."""
    continue_as_new_after: int = Field(default=10_000, ge=100)
    """History events after which the workflow continues as new (well under Temporal's 50k limit)."""
    carry: JobCarry | None = None

    @model_validator(mode="after")
    def _needs_work(self) -> JobInput:
        if self.session_id is None and self.prompt is None and self.carry is None:
            raise ValueError("give a session id or a prompt")
        return self


class JobResult(_Message):
    """A finished job: its final state, usage, cost and decision log."""

    status: JobStatus


class PlanJobReport(_Message):
    """A job's cumulative usage as reported to its plan (idempotent: the newest ``seq`` wins)."""

    workflow_id: str
    job: str
    seq: int
    cost_usd: Decimal
    tokens: int
    state: JobState


class PlanInput(_Message):
    """Start (or continue) a plan's workflow."""

    plan: str = Field(min_length=1)
    budget: BudgetLimit | None = None
    jobs: dict[str, PlanJobReport] = {}
    """Carried across continue-as-new."""
    state: BudgetState | None = None
    paused: bool = False


# ---------------------------------------------------------------------------
# Human decisions (updates) and plan holds (signal)


class ApproveInput(_Message):
    """Approve a pending ask once, or always (a job-scoped grant of that exact pattern)."""

    request_id: str
    always: bool = False
    by: str = "unknown"
    reason: str | None = None


class DenyInput(_Message):
    """Deny a pending ask; ``reason`` is sent to the agent, which then carries on without it."""

    request_id: str
    by: str = "unknown"
    reason: str | None = None


class _Resume(_Message):
    """A resume, optionally raising a budget first (the raise is checked by the validator)."""

    add_usd: float | None = Field(default=None, gt=0)
    add_tokens: int | None = Field(default=None, gt=0)
    by: str = "unknown"


class ResumeInput(_Resume):
    """Resume a paused job, optionally raising its budget first."""


class KillInput(_Message):
    """Abort the agent and end the job as killed."""

    by: str = "unknown"
    reason: str | None = None


class PlanResumeInput(_Resume):
    """Resume every job of a paused plan, optionally raising the plan budget."""


class PlanHold(_Message):
    """The plan tells a job to pause (``hold``) or to resume."""

    hold: bool
    reason: str = ""
    kill: bool = False
    """The plan's ``on_exceed`` is ``kill``: end the job instead of pausing it."""


# ---------------------------------------------------------------------------
# Queries


class JobStatus(_Message):
    """Everything about a job, for the CLI, the UI and the job's result."""

    plan: str
    job: str
    workflow_id: str
    state: JobState
    session_id: str | None
    agent_url: str
    worktree: str
    tokens: dict[str, int]
    cost_usd: float
    agent_cost_usd: float
    steps: int
    cost_sources: list[str]
    budget: BudgetView | None
    pending: list[PendingAsk]
    decisions: list[DecisionRecord]
    warnings: list[str]
    paused_reason: str | None = None
    error: str | None = None


class PlanStatus(_Message):
    """A plan's jobs, totals and budget."""

    plan: str
    workflow_id: str
    paused: bool
    jobs: list[PlanJobReport]
    cost_usd: float
    tokens: int
    budget: BudgetView | None


# ---------------------------------------------------------------------------
# Activities


class StreamInput(_Message):
    """Consume one session's event stream for a job (one generation of the consumer)."""

    agent_url: str
    session_id: str
    worktree: str
    policy: EffectivePolicy
    pricing: PricingConfig = PricingConfig({})
    hold: bool = False
    """Never auto-decide: every ask goes to the workflow (paused, or told to hold)."""
    budget: BudgetState | None = None
    """The job budget as the workflow last saw it; asks are held once it is exceeded."""
    decided: list[str] = []
    """Ask ids the workflow has already decided or cancelled: never decide them again."""
    generation: int = 0


class AskItem(_Message):
    """A permission ask, normalised by the activity."""

    kind: Literal["ask"] = "ask"
    ask: NormalizedAsk
    tool_name: str | None = None
    auto: Decision | None = None
    """The activity applied this policy decision (auto-approve or deny) right after recording it."""
    stale: bool = False
    """Found pending for a session that is not running (left behind by an abort): never approve."""


class StepItem(_Message):
    """A priced model call."""

    kind: Literal["step"] = "step"
    step: StepUsage
    cost: CostRecord


class SessionItem(_Message):
    """A change of the session's status."""

    kind: Literal["session"] = "session"
    status: Literal["connected", "busy", "retry", "idle", "error", "aborted"]
    message: str | None = None


class RepliedItem(_Message):
    """An ask was answered (by jobgov, or by someone else through opencode)."""

    kind: Literal["replied"] = "replied"
    request_id: str
    reply: str


EventItem = Annotated[AskItem | StepItem | SessionItem | RepliedItem, Field(discriminator="kind")]


class EventBatch(_Message):
    """Events forwarded from the stream activity to the workflow, in order."""

    generation: int
    items: list[EventItem]


class AgentCall(_Message):
    """Common to every agent call."""

    agent_url: str


class CreateSessionInput(AgentCall):
    """``POST /session``."""

    title: str


class PromptInput(AgentCall):
    """``POST /session/{id}/prompt_async``."""

    session_id: str
    text: str


class ReplyInput(AgentCall):
    """``POST /permission/{id}/reply``."""

    request_id: str
    reply: Literal["once", "reject"]
    message: str | None = None


class AbortInput(AgentCall):
    """``POST /session/{id}/abort``."""

    session_id: str


class NotifyInput(_Message):
    """A notification: always logged; sent to ``notify.webhook`` when configured."""

    kind: Literal["ask", "budget-warning", "paused", "resumed", "killed", "finished", "plan-paused"]
    plan: str
    job: str | None
    workflow_id: str
    message: str
    webhook: str | None = None


class ReportToPlanInput(_Message):
    """Signal-with-start the plan workflow with a job's cumulative usage."""

    plan: str
    budget: BudgetLimit | None
    report: PlanJobReport


JobResult.model_rebuild()

__all__ = [
    "AbortInput",
    "ApproveInput",
    "AskItem",
    "CreateSessionInput",
    "DecisionRecord",
    "DenyInput",
    "EventBatch",
    "JobCarry",
    "JobInput",
    "JobResult",
    "JobState",
    "JobStatus",
    "KillInput",
    "NotifyInput",
    "PendingAsk",
    "PermissionAsk",
    "PlanHold",
    "PlanInput",
    "PlanJobReport",
    "PlanResumeInput",
    "PlanStatus",
    "PromptInput",
    "RepliedItem",
    "ReplyInput",
    "ReportToPlanInput",
    "ResumeInput",
    "SessionItem",
    "StepItem",
    "StreamInput",
    "TokenCounts",
]
