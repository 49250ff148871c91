"""A team's own approval workflow, as tests need one: it approves a job's ask by signal (a workflow
cannot send an update)."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from jobgov import names
    from jobgov.temporal.payloads import ApproveInput


@workflow.defn(name="tests.Approver")
class Approver:
    @workflow.run
    async def run(self, job_workflow_id: str, request_id: str) -> None:
        job = workflow.get_external_workflow_handle(job_workflow_id)
        await job.signal(names.SIGNAL_JOB_APPROVE, ApproveInput(request_id=request_id, by="approver-workflow"))
