"""The sizes ``run_worker`` gives its :class:`~temporalio.worker.Worker` (``jobgov.run.worker_options``),
and how it tunes the process's garbage collector (``jobgov.run.tune_collector``)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest
import typer

from jobgov.cli import app
from jobgov.opencode.client import KEEPALIVE
from jobgov.run import (
    CACHE_SPARE,
    CALL_SLOTS,
    GC_THRESHOLD,
    MIN_WORKFLOW_TASKS,
    run_worker,
    tune_collector,
    worker_options,
)
from jobgov.temporal.activities import AgentSettings


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


# ---------------------------------------------------------------------------- the garbage collector


@pytest.fixture
def collector() -> Iterator[None]:
    """The process's collector as it was, after the test (tune_collector changes it process-wide)."""
    thresholds, frozen = gc.get_threshold(), gc.get_freeze_count()
    assert frozen == 0, "the test process had frozen objects already"
    yield
    gc.set_threshold(*thresholds)
    gc.unfreeze()


def test_tuning_freezes_what_the_process_holds_and_raises_the_youngest_threshold(collector: None) -> None:
    gc.set_threshold(700, 11, 12)

    class Held:
        pass

    held = Held()  # an object the process holds, tracked by the collector
    assert gc.is_tracked(held)
    frozen = tune_collector(GC_THRESHOLD)
    assert gc.get_threshold() == (GC_THRESHOLD, 11, 12)  # the older generations' as they were
    assert frozen == gc.get_freeze_count() > 10_000  # pytest's and jobgov's modules, at least
    assert not any(o is held for o in gc.get_objects())  # frozen: out of the collector's sight
    gc.unfreeze()
    assert any(o is held for o in gc.get_objects(2))  # and back in the oldest generation once unfrozen


def test_a_threshold_of_0_leaves_the_collector_as_it_is(collector: None) -> None:
    before = gc.get_threshold()
    assert tune_collector(0) == 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_cycles_made_after_tuning_are_still_collected(collector: None) -> None:
    tune_collector(GC_THRESHOLD)

    class Node:
        other: object

    a, b = Node(), Node()
    a.other, b.other = b, a
    gone = weakref.ref(a)
    del a, b
    gc.collect()
    assert gone() is None


def test_a_threshold_below_0_is_refused_naming_the_field(collector: None) -> None:
    before = gc.get_threshold()
    with pytest.raises(ValueError, match=r"^gc_threshold: -1 is below 0 \(0 leaves Python's collector as it is\)$"):
        tune_collector(-1)
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


async def test_run_worker_refuses_a_threshold_below_0_before_connecting(collector: None) -> None:
    with pytest.raises(ValueError, match=r"^gc_threshold: -5 is below 0"):
        await run_worker("127.0.0.1:1", gc_threshold=-5, handle_signals=False)
    assert gc.get_freeze_count() == 0


def test_jobgov_worker_tunes_with_the_documented_threshold_by_default() -> None:
    """The command's default (it imports nothing of the worker's until it runs) is GC_THRESHOLD."""
    command = typer.main.get_command(app).commands["worker"]  # type: ignore[attr-defined]
    option = next(p for p in command.params if p.name == "gc_threshold")
    assert option.default == GC_THRESHOLD
    assert option.envvar == "JOBGOV_GC_THRESHOLD"


def test_jobgov_worker_keeps_agent_connections_as_long_as_the_agent_client_does_by_default() -> None:
    command = typer.main.get_command(app).commands["worker"]  # type: ignore[attr-defined]
    option = next(p for p in command.params if p.name == "agent_keepalive")
    assert option.default == KEEPALIVE == AgentSettings().agent_keepalive
    assert option.envvar == "JOBGOV_AGENT_KEEPALIVE"


@pytest.mark.parametrize("keepalive", [0.0, -1.0, float("nan")])
async def test_run_worker_refuses_an_agent_keepalive_of_0_or_less_before_connecting(keepalive: float) -> None:
    with pytest.raises(ValueError, match=r"^AgentSettings\.agent_keepalive: .* s; an idle connection must be kept "
                                         r"for more than 0 s$"):
        await run_worker("127.0.0.1:1", agent_keepalive=keepalive, handle_signals=False)
