"""jobgov's workflows: pure and deterministic (no I/O, clocks, randomness or env reads)."""

from __future__ import annotations

from jobgov.workflows.job import JobWorkflow
from jobgov.workflows.plan import PlanWorkflow

__all__ = ["JobWorkflow", "PlanWorkflow"]
