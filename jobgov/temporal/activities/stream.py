"""The ``stream_events`` activity: runs the job's event-stream consumer inside Temporal.

The consumer itself (:class:`~jobgov.temporal.activities.consumer.EventStreamConsumer`)
knows nothing of Temporal; this module injects what it needs: a ``send`` that
signals the exact workflow run (retrying briefly while the server is away),
the activity heartbeat, and the status a previous attempt last knew.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from typing import Any, Final

import httpx
from temporalio import activity
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from jobgov import names
from jobgov.opencode.client import AgentClient
from jobgov.opencode.credentials import AgentCredentials
from jobgov.temporal.activities.consumer import (
    EventStreamConsumer,
    StreamSettings,
    WorkflowGone,
)
from jobgov.temporal.metrics import Metrics
from jobgov.temporal.payloads import EventBatch, StreamInput

__all__ = ["StreamActivity"]

#: Signal failures worth retrying in place (the server is busy or briefly away).
_TRANSIENT_RPC: Final = frozenset(
    {RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.RESOURCE_EXHAUSTED,
     RPCStatusCode.ABORTED, RPCStatusCode.INTERNAL, RPCStatusCode.UNKNOWN}
)  # fmt: skip


class StreamActivity:
    """The long-running activity that consumes one session's events for a job.

    Args:
        http: Gives the HTTP client of one stream activity, for its life (see
            ``AgentActivities._stream_client``).
        settings: Timing of the consumer (its heartbeat is also capped at half the heartbeat timeout).
        signal_attempts: Tries to deliver one event batch while the Temporal server is briefly unavailable.
    """

    def __init__(self, http: Callable[[], AbstractAsyncContextManager[httpx.AsyncClient]], settings: StreamSettings,
                 signal_attempts: int, credentials: AgentCredentials | None = None) -> None:
        self._http = http
        self._credentials = credentials or AgentCredentials()
        self._settings = settings
        self._signal_attempts = signal_attempts

    @activity.defn(name=names.ACTIVITY_STREAM_EVENTS)
    async def stream_events(self, input: StreamInput) -> None:
        """Consume the session's events for the job until cancelled (see :mod:`.consumer`)."""
        info = activity.info()
        if info.workflow_id is None:
            raise ApplicationError("stream_events must be started by a job workflow", non_retryable=True)
        # The exact run: once it has closed (completed, or continued as new with its own
        # consumer) the signal fails with NOT_FOUND and this consumer stops.
        handle = activity.client().get_workflow_handle(info.workflow_id, run_id=info.workflow_run_id)
        settings = self._settings
        if info.heartbeat_timeout is not None:
            half = info.heartbeat_timeout.total_seconds() / 2
            settings = replace(settings, heartbeat_every=min(settings.heartbeat_every, half))

        async def send(batch: EventBatch) -> None:
            await self._signal(handle, batch)

        async def still_wanted() -> bool:
            """The job's run is still open (when Temporal cannot say, it is assumed so)."""
            try:
                return (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
            except RPCError as exc:
                return exc.status != RPCStatusCode.NOT_FOUND

        # A retried attempt resumes from its predecessor's last known session status, so a
        # run that ended in between is reported (see EventStreamConsumer._reconciled_status).
        previous = info.heartbeat_details[0] if info.heartbeat_details else None
        last_status = previous.get("status") if isinstance(previous, dict) else None
        async with self._http() as http:
            consumer = EventStreamConsumer(
                AgentClient(http, input.agent_url, auth=self._credentials.auth_for(input.agent_url)),
                input,
                send,
                activity.heartbeat,
                settings=settings,
                logger=activity.logger,
                attempt=info.attempt,
                last_status=last_status if isinstance(last_status, str) else None,
                metrics=Metrics(activity.metric_meter()),
                still_wanted=still_wanted,
            )
            try:
                await consumer.run()
            except asyncio.CancelledError:
                details = activity.cancellation_details()
                if details is None or not details.not_found:
                    raise  # a cancel the workflow requested, a shutdown, a pause: Temporal records it
                # The run has closed (the job ended, or continued as new with a consumer of its
                # own) and learned it from a heartbeat: the normal end of a stream, not a failure.
                activity.logger.info("stream %s: the job's run has closed; stream stopped", input.session_id)

    async def _signal(self, handle: WorkflowHandle[Any, Any], batch: EventBatch) -> None:
        delay = 0.2
        for attempt in range(1, self._signal_attempts + 1):
            try:
                await handle.signal(names.SIGNAL_JOB_EVENTS, batch)
                return
            except RPCError as exc:
                if exc.status == RPCStatusCode.NOT_FOUND:
                    raise WorkflowGone(exc.message) from exc
                if exc.status not in _TRANSIENT_RPC or attempt == self._signal_attempts:
                    raise
                activity.logger.warning("signal %s failed (%s); retrying", names.SIGNAL_JOB_EVENTS, exc.message)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
