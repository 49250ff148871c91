"""What the job's book asks the workflow to do after a change: plain data, carried out in order.

:class:`~jobgov.temporal.workflows.book.JobBook` returns these; the workflow executes them
(reply to an ask, abort the run, prompt, notify, report to the plan, restart the stream).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from jobgov.temporal.payloads import NotifyKind


@dataclass(frozen=True)
class Reply:
    request_id: str
    reply: Literal["once", "reject"]
    message: str | None = None


@dataclass(frozen=True)
class Abort:
    pass


@dataclass(frozen=True)
class Prompt:
    text: str


@dataclass(frozen=True)
class Notify:
    kind: NotifyKind
    message: str


@dataclass(frozen=True)
class ReportToPlan:
    pass


@dataclass(frozen=True)
class RestartStream:
    """The stream activity's inputs changed (hold, budget): start a new generation."""


Effect = Reply | Abort | Prompt | Notify | ReportToPlan | RestartStream


class DecisionRejected(ValueError):
    """A human decision that cannot apply (unknown ask, not paused, ...): rejected by the validator."""
