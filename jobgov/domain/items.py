"""What the stream tells a job: asks, priced steps, session status changes and replies.

The stream activity turns opencode's events into these items and signals them
to the job's workflow in order (:class:`~jobgov.temporal.payloads.EventBatch`);
the job book applies them. They are recorded in history: fields are only ever
added, with defaults.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from jobgov.domain.asks import Decision, NormalizedAsk
from jobgov.domain.usage import CostRecord, StepUsage


class _Item(BaseModel):
    model_config = ConfigDict(extra="ignore")


class AskItem(_Item):
    """A permission ask, normalised by the activity."""

    kind: Literal["ask"] = "ask"
    ask: NormalizedAsk
    tool_name: str | None = None
    auto: Decision | None = None
    """The activity applied this policy decision (auto-approve or deny) right after recording it."""
    stale: bool = False
    """Found pending for a session that is not running (left behind by an abort): never approve."""
    not_sent: str | None = None
    """From 0.9: the activity decided ``auto`` but no reply went out, and why (the run ended
    first, the agent had been answered already, it refused the reply). The audit trail says so."""


class StepItem(_Item):
    """A priced model call."""

    kind: Literal["step"] = "step"
    step: StepUsage
    cost: CostRecord


class SessionItem(_Item):
    """A change of the session's status."""

    kind: Literal["session"] = "session"
    status: Literal["connected", "busy", "retry", "idle", "error", "aborted"]
    message: str | None = None
    unfinished: str | None = None
    """With ``idle``: why the run that just ended left its work unfinished (the agent restarted
    mid-step, someone else aborted it, it stopped after its tools before the model answered);
    ``None``: it finished, or nobody could tell. Workers before 0.3 ignore it."""


class RepliedItem(_Item):
    """An ask was answered (by jobgov, or by someone else through opencode)."""

    kind: Literal["replied"] = "replied"
    request_id: str
    reply: str


EventItem = Annotated[AskItem | StepItem | SessionItem | RepliedItem, Field(discriminator="kind")]
