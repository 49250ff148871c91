"""What Temporal's own records tell of a job: its newest run, how Temporal closed it and why,
its search attributes. Used when the job's workflow cannot answer a query itself."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import temporalio.exceptions
from temporalio.client import WorkflowExecution, WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import CancelledError, TerminatedError

from jobgov.temporal.payloads import JobResult
from jobgov.temporal.state import JobState

__all__ = ["CLOSED_STATES", "close_reason", "closed_as", "latest_runs", "sa"]


def sa(execution: WorkflowExecution, key: Any) -> Any:
    return execution.typed_search_attributes.get(key)


def latest_runs(executions: Iterable[WorkflowExecution]) -> list[WorkflowExecution]:
    """The newest run of each workflow id (older runs ended by continue-as-new or a restart)."""
    latest: dict[str, WorkflowExecution] = {}
    for e in executions:
        if e.status == WorkflowExecutionStatus.CONTINUED_AS_NEW:
            continue
        if e.id not in latest or e.start_time > latest[e.id].start_time:
            latest[e.id] = e
    return list(latest.values())


#: How Temporal closed a workflow that did not complete, as the job's state.
CLOSED_STATES = {
    WorkflowExecutionStatus.FAILED: JobState.FAILED,
    WorkflowExecutionStatus.TERMINATED: JobState.TERMINATED,
    WorkflowExecutionStatus.CANCELED: JobState.CANCELLED,
    WorkflowExecutionStatus.TIMED_OUT: JobState.TIMED_OUT,
}


async def close_reason(handle: WorkflowHandle[Any, JobResult]) -> str:
    """Why Temporal closed the workflow, in one line (the failure and its causes)."""
    try:
        await handle.result(follow_runs=False)
    except WorkflowFailureError as exc:
        parts: list[str] = []
        cause: BaseException | None = exc.cause
        while cause is not None:
            message = getattr(cause, "message", "") or str(cause)
            kind = getattr(cause, "type", None)
            if isinstance(cause, TerminatedError):
                message = f"terminated: {message or 'no reason given'}"
            elif isinstance(cause, CancelledError):
                message = "cancelled" + (f": {message}" if message and message != "Cancelled" else "")
            elif isinstance(cause, temporalio.exceptions.TimeoutError):
                message = f"timed out: {message}" if message else "timed out"
            elif kind:
                message = f"{kind}: {message}"
            if message and message not in parts:
                parts.append(message)
            cause = getattr(cause, "cause", None)
        return "; ".join(parts) or "closed by Temporal"
    except Exception as exc:  # noqa: BLE001 - the reason is best effort; the state is known
        return f"closed by Temporal ({type(exc).__name__})"
    return "closed by Temporal"


def closed_as(status: WorkflowExecutionStatus | None) -> str:
    return (status.name if status else "unknown").lower().replace("_", "-")


