"""Small helpers both workflows use: validator errors and when to continue as new."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

#: The ``type`` of the error a validator raises for a decision that cannot apply.
INVALID_DECISION = "InvalidDecision"


def reject_invalid(check: Callable[[], None]) -> None:
    """Run a validator's ``check``; its ``ValueError`` becomes a non-retryable ``ApplicationError``.

    Raised in a validator, this never reaches history; the Temporal UI and the CLI show the message.
    """
    try:
        check()
    except ValueError as exc:
        raise ApplicationError(str(exc), type=INVALID_DECISION, non_retryable=True) from None


def continue_as_new_due(history_limit: int) -> bool:
    """The server suggests continuing as new, or the history is past ``history_limit`` events."""
    info = workflow.info()
    return info.is_continue_as_new_suggested() or info.get_current_history_length() > history_limit


def refresh_wake(dues: list[datetime], slack: timedelta) -> datetime | None:
    """When a job's refresh timer wakes for the refreshes held back until ``dues`` (none: no timer).

    ``slack`` after the earliest is due: a job at work has a workflow task in between (a delivery),
    which does the refresh and cancels the timer; only a job gone quiet needs the timer to fire.
    """
    return min(dues) + slack if dues else None
