"""jobgov's workflows: pure and deterministic (no I/O, clocks, randomness or env reads)."""

from __future__ import annotations

from jobgov.temporal.workflows.job import JobWorkflow
from jobgov.temporal.workflows.plan import PlanWorkflow

__all__ = ["JobWorkflow", "PlanWorkflow"]
