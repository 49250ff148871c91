"""The ``report_to_plan`` activity: a job's cumulative usage, delivered to its plan's workflow."""

from __future__ import annotations

from temporalio import activity

from jobgov import names
from jobgov.temporal.payloads import PlanInput, ReportToPlanInput

__all__ = ["report_to_plan"]


@activity.defn(name=names.ACTIVITY_REPORT_TO_PLAN)
async def report_to_plan(input: ReportToPlanInput) -> None:
    """Signal-with-start the plan's workflow with a job's cumulative usage (the first job starts it)."""
    await activity.client().start_workflow(
        names.PLAN_WORKFLOW,
        PlanInput(plan=input.plan, budget=input.budget),
        id=names.plan_workflow_id(input.plan),
        task_queue=activity.info().task_queue,
        start_signal=names.SIGNAL_PLAN_JOB_REPORT,
        start_signal_args=[input.report],
    )
