"""The sizes ``run_worker`` gives its :class:`~temporalio.worker.Worker` (``jobgov.run.worker_options``)."""

from __future__ import annotations

import pytest

from jobgov.run import CACHE_SPARE, CALL_SLOTS, MIN_WORKFLOW_TASKS, worker_options


def test_a_worker_is_sized_for_its_jobs() -> None:
    assert worker_options(300) == {"max_concurrent_activities": 300 + CALL_SLOTS,
                                   "max_cached_workflows": 300 + CACHE_SPARE}


def test_workflow_tasks_bound_the_workflow_tasks_it_runs_at_once() -> None:
    assert worker_options(300, 4)["max_concurrent_workflow_tasks"] == 4
    assert worker_options(300, MIN_WORKFLOW_TASKS)["max_concurrent_workflow_tasks"] == 2
    assert "max_concurrent_workflow_tasks" not in worker_options(300, None)  # the SDK's default


@pytest.mark.parametrize("tasks", [1, 0, -3])
def test_fewer_than_two_workflow_tasks_are_refused_naming_the_field(tasks: int) -> None:
    """One slot is not enough: the core's polls of the sticky queue and of the task queue hold one
    each (with one, a job's query went unanswered: tests/integration/test_client.py)."""
    with pytest.raises(ValueError, match=rf"^workflow_tasks: {tasks} is below 2: a worker polls"):
        worker_options(300, tasks)
