"""The typed client API: start jobs, read their status, decide their asks.

:class:`JobGovClient` talks to Temporal only (never to agents or worker-side
modules); the CLI is a thin layer over it.
"""

from __future__ import annotations

from jobgov.client.api import DEFAULT_ADDRESS, JobGovClient
from jobgov.client.errors import (
    AlreadyRunningError,
    InputError,
    JobGovError,
    NoAnswerError,
    NotFoundError,
    RejectedError,
    UnreachableError,
    connect_error_reason,
)
from jobgov.client.inputs import build_job_input, check_name, default_actor
from jobgov.client.overview import JobOverview, JobsOverview, PlanTotals

__all__ = [
    "DEFAULT_ADDRESS",
    "AlreadyRunningError",
    "InputError",
    "JobGovClient",
    "JobGovError",
    "JobOverview",
    "JobsOverview",
    "NoAnswerError",
    "NotFoundError",
    "PlanTotals",
    "RejectedError",
    "UnreachableError",
    "build_job_input",
    "check_name",
    "connect_error_reason",
    "default_actor",
]
