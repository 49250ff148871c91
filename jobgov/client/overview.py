"""The overview models behind ``jobgov jobs``: one row per job and a totals line per plan.

:meth:`JobGovClient.list_jobs <jobgov.client.JobGovClient.list_jobs>` and
:meth:`JobGovClient.overview <jobgov.client.JobGovClient.overview>` return
them; the CLI renders them as a table or as JSON. They are client-side only
(never sent through Temporal) and are re-exported from :mod:`jobgov.client`.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from jobgov.domain.budget import BudgetView
from jobgov.temporal.payloads import JobStatus


class JobOverview(BaseModel):
    """One row of ``jobgov jobs``: a job's state and spending, from its status or from visibility."""

    model_config = ConfigDict(extra="forbid")

    plan: str
    job: str
    workflow_id: str
    state: str
    """A :class:`~jobgov.temporal.payloads.JobState` value, or how Temporal closed it (``terminated``, ...)."""
    cost_usd: float
    tokens: int
    pending: int
    steps: int | None = None
    started_at: datetime | None = None
    closed_at: datetime | None = None
    paused_reason: str | None = None
    status: JobStatus | None = Field(default=None, exclude=True)
    """The full status when it could be read (query or result); not part of the JSON row."""


class PlanTotals(BaseModel):
    """A plan's line in ``jobgov jobs``: the listed jobs added up, and the plan's own budget."""

    model_config = ConfigDict(extra="forbid")

    plan: str
    jobs: int
    cost_usd: float
    tokens: int
    pending: int
    paused: bool | None = None
    """``None``: the plan's workflow could not be read."""
    budget: BudgetView | None = None


class JobsOverview(BaseModel):
    """Everything ``jobgov jobs`` shows."""

    model_config = ConfigDict(extra="forbid")

    jobs: list[JobOverview]
    plans: list[PlanTotals]
