"""jobgov's workflows: pure and deterministic (no I/O, clocks, randomness or env reads)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobgov.temporal.workflows.job import JobWorkflow
    from jobgov.temporal.workflows.plan import PlanWorkflow

__all__ = ["JobWorkflow", "PlanWorkflow"]


def __getattr__(name: str) -> Any:
    if name == "JobWorkflow":
        from jobgov.temporal.workflows.job import JobWorkflow

        return JobWorkflow
    if name == "PlanWorkflow":
        from jobgov.temporal.workflows.plan import PlanWorkflow

        return PlanWorkflow
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
