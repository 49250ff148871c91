"""Inputs and outputs of jobgov's workflows, activities, signals, updates and queries.

One pydantic model per call (STYLE: "one serializable input object per
call"), so fields can be added compatibly. Everything here is recorded in
workflow history and shown in the Temporal UI: no secrets. What a job's
workflow carries is in :mod:`jobgov.temporal.state`; the stream's items are in
:mod:`jobgov.domain.items`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import Field, model_validator

from jobgov.domain.budget import BudgetLimit, BudgetState, BudgetView
from jobgov.domain.config import EffectivePolicy, PlanConfig
from jobgov.domain.items import AskItem, EventItem
from jobgov.domain.usage import PricingConfig
from jobgov.temporal.state import (
    AgentReach,
    DecisionRecord,
    JobCarry,
    JobState,
    Message,
    PendingAsk,
    RefusedDecision,
)

#: What a notification is about (``NotifyInput.kind``, and the webhook payload's ``kind``).
NotifyKind = Literal["ask", "budget-warning", "paused", "resumed", "killed", "finished", "plan-paused",
                     "agent-unreachable"]


# ---------------------------------------------------------------------------
# Workflow inputs and results


class JobInput(Message):
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
    agent_queue: str | None = Field(default=None, min_length=1)
    """The task queue of workers on the agent's host (over ``config.agent.queue``; from 0.4)."""
    search_attributes: bool = True
    """Upsert jobgov's search attributes (off for servers that lack them, e.g. the time-skipping server)."""
    continue_as_new_after: int = Field(default=4_000, ge=100)
    """History events after which the workflow continues as new (or sooner, when the server
    suggests it). Well under 10,000, so that a burst of events never takes a run past it."""
    carry: JobCarry | None = None
    owner: str | None = Field(default=None, min_length=1)
    """Another system runs this session and ends the job (with the ``end`` update), e.g.
    ``mission-control`` for ``jobgov mc watch``: the job does not end when its session idles,
    and sends no continue prompt (from 0.5). ``None``: the idle after its work ends the job."""

    @model_validator(mode="after")
    def _needs_work(self) -> JobInput:
        if self.session_id is None and self.prompt is None and self.carry is None:
            raise ValueError("give a session id or a prompt")
        return self


class JobResult(Message):
    """A finished job: its final state, usage, cost and decision log."""

    status: JobStatus


class PlanJobReport(Message):
    """A job's cumulative usage as reported to its plan (idempotent: the newest ``seq`` wins)."""

    workflow_id: str
    job: str
    seq: int
    cost_usd: Decimal
    tokens: int
    state: JobState


class PlanInput(Message):
    """Start (or continue) a plan's workflow."""

    plan: str = Field(min_length=1)
    budget: BudgetLimit | None = None
    jobs: dict[str, PlanJobReport] = Field(default_factory=dict)
    """Carried across continue-as-new."""
    state: BudgetState | None = None
    paused: bool = False
    refused: list[RefusedDecision] = Field(default_factory=list)
    """Resumes sent by signal that could not apply (carried; from 0.4)."""


# ---------------------------------------------------------------------------
# Human decisions (updates) and plan holds (signal)


class ApproveInput(Message):
    """Approve a pending ask once, or always (a job-scoped grant of that exact pattern)."""

    request_id: str
    always: bool = False
    by: str = "unknown"
    reason: str | None = None


class DenyInput(Message):
    """Deny a pending ask; ``reason`` is sent to the agent, which then carries on without it."""

    request_id: str
    by: str = "unknown"
    reason: str | None = None


class _Resume(Message):
    """A resume, optionally raising a budget first (the raise is checked by the validator)."""

    add_usd: float | None = Field(default=None, gt=0)
    add_tokens: int | None = Field(default=None, gt=0)
    by: str = "unknown"


class ResumeInput(_Resume):
    """Resume a paused job, optionally raising its budget first."""


class KillInput(Message):
    """Abort the agent and end the job as killed."""

    by: str = "unknown"
    reason: str | None = None


class EndInput(Message):
    """The owner of a job (``JobInput.owner``) ends it, saying how its work ended."""

    outcome: Literal["completed", "failed", "stopped"]
    """``completed`` and ``failed`` end the job so; ``stopped`` ends it ``killed`` (the agent's
    run aborted, pending asks answered ``reject``)."""
    by: str = "unknown"
    reason: str | None = None


class PlanResumeInput(_Resume):
    """Resume every job of a paused plan, optionally raising the plan budget."""


class PlanHold(Message):
    """The plan tells a job to pause (``hold``) or to resume."""

    hold: bool
    reason: str = ""
    kill: bool = False
    """The plan's ``on_exceed`` is ``kill``: end the job instead of pausing it."""


# ---------------------------------------------------------------------------
# Queries


class JobStatus(Message):
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
    agent: AgentReach | None = None
    """Whether the agent is reached (``None``: nothing reported yet; clients before 0.3 ignore it)."""
    queued: str | None = None
    """Why the job waits for a worker to take its event stream (state ``queued``; from 0.4)."""
    refused: list[RefusedDecision] = Field(default_factory=list)
    """Decisions sent by signal that could not apply, newest last (from 0.4)."""
    owner: str | None = None
    """Who ends the job (``JobInput.owner``; from 0.5)."""
    ended: str | None = None
    """Why the job ended (who killed it, its owner's word, the error; from 0.5)."""


class PlanStatus(Message):
    """A plan's jobs, totals and budget."""

    plan: str
    workflow_id: str
    paused: bool
    jobs: list[PlanJobReport]
    cost_usd: float
    tokens: int
    budget: BudgetView | None
    refused: list[RefusedDecision] = Field(default_factory=list)
    """Resumes sent by signal that could not apply, newest last (from 0.4)."""


# ---------------------------------------------------------------------------
# Activities


class StreamInput(Message):
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
    decided: list[str] = Field(default_factory=list)
    """Ask ids the workflow has already decided or cancelled: never decide them again."""
    decided_through: str | None = None
    """And every ask id at or before this one."""
    counted_through: str | None = None
    """Steps at or before this part id were counted: they are not forwarded again."""
    generation: int = 0
    record_in_heartbeat: bool = False
    """From 0.6: record automatic decisions in the activity's heartbeat and deliver them in batches
    (the workflow collects the undelivered ones before its run closes); ``False``: deliver each by
    signal before replying (what workers and workflows before 0.6 do)."""
    plan_budget: bool | None = None
    """From 0.7: the job's plan has a budget of its own, which its workflow enforces on each step's
    usage: usage is delivered within ``StreamSettings.usage_every``. ``False``: usage waits for the
    next delivery like the decisions (``deliver_every``). ``None`` (runs before 0.7): as ``True``."""


class CollectedRecords(Message):
    """``collect_stream``'s result: automatic decisions the job's streams recorded, not yet delivered."""

    items: list[AskItem] = Field(default_factory=list)


class EventBatch(Message):
    """Events forwarded from the stream activity to the workflow, in order."""

    generation: int
    """The consumer generation that sent it; -1: handed on from a run that had closed (0.6)."""
    items: list[EventItem]
    agent: AgentReach | None = None
    """The agent became unreachable, or reachable again (workers before 0.3 ignore it)."""


class AgentCall(Message):
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


class NotifyInput(Message):
    """A notification: always logged; sent to ``notify.webhook`` when configured."""

    kind: NotifyKind
    plan: str
    job: str | None
    workflow_id: str
    message: str
    webhook: str | None = None


class ReportToPlanInput(Message):
    """Signal-with-start the plan workflow with a job's cumulative usage."""

    plan: str
    budget: BudgetLimit | None
    report: PlanJobReport


JobResult.model_rebuild()
