"""Typed helpers for the activities the workflows run: one function per activity.

Workflows call activities by their durable names (:mod:`jobgov.names`) so that
workflow code never imports the activity modules (and with them httpx); these
helpers give each call its input and result types and its timeouts in one place.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

from jobgov import names
from jobgov.temporal.payloads import (
    AbortInput,
    CollectedRecords,
    CreateSessionInput,
    NotifyInput,
    PromptInput,
    ReplyInput,
    ReportToPlanInput,
    StreamInput,
)

#: Agent calls are short; Temporal retries them (the HTTP client does not).
AGENT_CALL_TIMEOUT = timedelta(seconds=30)
AGENT_CALL_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10), maximum_attempts=20
)
#: The stream runs for the job's life; a missed heartbeat means its worker died: retry elsewhere.
#: 30 s, not less: under load (hundreds of jobs on two cores) a 5 s timeout cancelled healthy
#: streams, and every retry reconnected and re-read the agent. The consumer beats every 10 s.
STREAM_HEARTBEAT = timedelta(seconds=30)
STREAM_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=500), maximum_interval=timedelta(seconds=15))
#: Plan notifications are logged by the activity; a stuck webhook must not hold the plan.
PLAN_NOTIFY_TIMEOUT = timedelta(seconds=30)


async def create_session(input: CreateSessionInput, task_queue: str | None = None) -> str:
    """``jobgov.create_session``: the new session's id."""
    result: str = await workflow.execute_activity(
        names.ACTIVITY_CREATE_SESSION, input, result_type=str, task_queue=task_queue,
        start_to_close_timeout=AGENT_CALL_TIMEOUT, retry_policy=AGENT_CALL_RETRY,
    )  # fmt: skip
    return result


async def create_session_once(input: CreateSessionInput, task_queue: str | None = None) -> str:
    """``jobgov.create_session``, one attempt: the job retries it itself, saying so meanwhile."""
    result: str = await workflow.execute_activity(
        names.ACTIVITY_CREATE_SESSION, input, result_type=str, task_queue=task_queue,
        start_to_close_timeout=AGENT_CALL_TIMEOUT, retry_policy=RetryPolicy(maximum_attempts=1),
    )  # fmt: skip
    return result


async def prompt(input: PromptInput, task_queue: str | None = None) -> None:
    """``jobgov.prompt``."""
    await _agent_call(names.ACTIVITY_PROMPT, input, task_queue)


async def reply(input: ReplyInput, task_queue: str | None = None) -> None:
    """``jobgov.reply`` (its result, whether the agent still knew the ask, is not needed here)."""
    await _agent_call(names.ACTIVITY_REPLY, input, task_queue)


async def abort(input: AbortInput, task_queue: str | None = None) -> None:
    """``jobgov.abort``."""
    await _agent_call(names.ACTIVITY_ABORT, input, task_queue)


#: Reading the streams' records is one describe; a run about to close must not wait long for it.
COLLECT_TIMEOUT = timedelta(seconds=10)
COLLECT_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_attempts=5)


async def collect_stream() -> CollectedRecords:
    """``jobgov.collect_stream``: the decisions the job's streams recorded and did not deliver."""
    result: CollectedRecords = await workflow.execute_activity(
        names.ACTIVITY_COLLECT_STREAM, result_type=CollectedRecords,
        start_to_close_timeout=COLLECT_TIMEOUT, retry_policy=COLLECT_RETRY,
    )  # fmt: skip
    return result


async def notify(input: NotifyInput) -> None:
    """``jobgov.notify`` from a job (retried like an agent call)."""
    await _agent_call(names.ACTIVITY_NOTIFY, input)


async def report_to_plan(input: ReportToPlanInput) -> None:
    """``jobgov.report_to_plan`` (retried like an agent call)."""
    await _agent_call(names.ACTIVITY_REPORT_TO_PLAN, input)


async def notify_from_plan(input: NotifyInput) -> None:
    """``jobgov.notify`` from a plan (the default retry policy)."""
    await workflow.execute_activity(names.ACTIVITY_NOTIFY, input, start_to_close_timeout=PLAN_NOTIFY_TIMEOUT)


async def _agent_call(activity: str, input: object, task_queue: str | None = None) -> None:
    await workflow.execute_activity(
        activity, input, start_to_close_timeout=AGENT_CALL_TIMEOUT, retry_policy=AGENT_CALL_RETRY,
        task_queue=task_queue,
    )


def start_stream(input: StreamInput, task_queue: str | None = None) -> workflow.ActivityHandle[None]:
    """Start ``jobgov.stream_events``: one generation of the job's event-stream consumer, on
    ``task_queue`` (``None``: the workflow's own, as runs before 0.4 did)."""
    handle: workflow.ActivityHandle[None] = workflow.start_activity(
        names.ACTIVITY_STREAM_EVENTS, input, task_queue=task_queue,
        start_to_close_timeout=timedelta(days=3650), heartbeat_timeout=STREAM_HEARTBEAT, retry_policy=STREAM_RETRY,
        cancellation_type=workflow.ActivityCancellationType.TRY_CANCEL,
    )  # fmt: skip
    return handle
