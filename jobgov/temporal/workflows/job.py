"""JobWorkflow: one durable workflow per agent job.

Its body, handlers included, is :class:`~jobgov.temporal.workflows.governor.JobGovernor`; this
module only declares the workflow. The sandbox imports this module anew for every run (and
passes the governor through), so it is kept to the declaration.
"""

from __future__ import annotations

from temporalio import workflow

from jobgov import names
from jobgov.temporal.payloads import JobInput, JobResult
from jobgov.temporal.workflows.governor import JobGovernor


@workflow.defn(name=names.JOB_WORKFLOW)
class JobWorkflow(JobGovernor):
    """Governs one opencode session: decisions, usage, budget, pauses."""

    @workflow.init
    def __init__(self, input: JobInput) -> None:
        super().__init__(input)

    @workflow.run
    async def run(self, input: JobInput) -> JobResult:
        return await self.govern(input)
