"""The ``stream_events`` activity: runs the job's event-stream consumer inside Temporal.

The consumer itself (:class:`~jobgov.temporal.activities.consumer.EventStreamConsumer`)
knows nothing of Temporal; this module injects what it needs: a ``send`` that
signals the exact workflow run (retrying briefly while the server is away),
the activity heartbeat, from 0.6 a heartbeat RPC of its own that it awaits to
record an automatic decision (see :mod:`.records`), and what a previous
attempt last knew. ``collect_stream`` reads, for a workflow about to close its run, what
its streams recorded and have not delivered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from datetime import timedelta
from typing import Any, Final, TypeVar

import httpx
from temporalio import activity
from temporalio.api.common.v1 import Payloads
from temporalio.api.workflowservice.v1 import RecordActivityTaskHeartbeatRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
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
from jobgov.temporal.activities.records import read_records
from jobgov.temporal.activities.stream_settings import StreamInterrupted
from jobgov.temporal.metrics import Metrics
from jobgov.temporal.payloads import CollectedRecords, EventBatch, StreamInput

__all__ = ["StreamActivity"]

_T = TypeVar("_T")

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
        self._live = 0  # streams this worker process runs now (their deliveries share a budget)

    @property
    def live_streams(self) -> int:
        """How many ``stream_events`` activities this instance runs now."""
        return self._live

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
            try:
                await self._signal(handle, batch)
            except WorkflowGone:
                if input.record_in_heartbeat:
                    await self._hand_on(info.workflow_id or "", info.workflow_run_id or "", batch)
                raise

        async def record(details: dict[str, Any]) -> bool:
            return await self._heartbeat(info, details)

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
        carried = read_records(previous)
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
                record=record if input.record_in_heartbeat else None,
                carried=carried,
                streams=lambda: self._live,
            )
            self._live += 1
            try:
                await consumer.run()
            except StreamInterrupted as exc:
                raise ApplicationError(str(exc), type="StreamInterrupted") from exc
            except asyncio.CancelledError:
                details = activity.cancellation_details()
                if input.record_in_heartbeat and details is not None and (details.cancel_requested
                                                                          or details.not_found):
                    # The SDK heard it first (before a decision's own heartbeat did): the workflow
                    # stops this stream (new inputs, or its run is closing) or its run has closed.
                    # What the stream holds goes to the run, or to a newer one: decisions made after
                    # the run collected its stream's records, applied and recorded nowhere else.
                    # A worker's shutdown or a pause needs none of this: the next attempt delivers
                    # what the last heartbeat holds.
                    await self._deliver_unsent(send, consumer.unsent())
                if details is None or not details.not_found:
                    raise  # a cancel the workflow requested, a shutdown, a pause: Temporal records it
                # The run has closed (the job ended, or continued as new with a consumer of its
                # own) and learned it from a heartbeat: the normal end of a stream, not a failure.
                activity.logger.info("stream %s: the job's run has closed; stream stopped", input.session_id)
            finally:
                self._live -= 1

    @activity.defn(name=names.ACTIVITY_COLLECT_STREAM)
    async def collect_stream(self) -> CollectedRecords:
        """The automatic decisions the calling workflow's streams recorded and have not delivered
        (their last heartbeat's details): the workflow reads them before its run closes."""
        info = activity.info()
        if info.workflow_id is None:
            raise ApplicationError("collect_stream must be started by a job workflow", non_retryable=True)
        client = activity.client()
        described = await client.get_workflow_handle(info.workflow_id, run_id=info.workflow_run_id).describe()
        items = []
        for pending in described.raw_description.pending_activities:
            if pending.activity_type.name != names.ACTIVITY_STREAM_EVENTS or not pending.heartbeat_details.payloads:
                continue
            try:
                values = await client.data_converter.decode(pending.heartbeat_details.payloads)
            except Exception as exc:  # noqa: BLE001 - unreadable details: their asks are decided again
                activity.logger.error("stream activity %s: heartbeat details unreadable: %s", pending.activity_id, exc)
                continue
            items += read_records(values[0] if values else None)
        return CollectedRecords(items=items)

    async def _heartbeat(self, info: activity.Info, details: dict[str, Any]) -> bool:
        """Record ``details`` as this attempt's heartbeat, and wait until the server has them.

        ``False``: the workflow cancelled the activity. Raises :class:`WorkflowGone` when the server
        no longer knows the attempt (its run has closed, or the attempt timed out and another
        replaced it): nothing recorded may be applied then; :class:`StreamInterrupted` when the
        activity was paused or reset (the attempt fails, and is retried once unpaused).
        """
        client = activity.client()
        request = RecordActivityTaskHeartbeatRequest(
            task_token=info.task_token, namespace=client.namespace, identity=client.identity,
            details=Payloads(payloads=await client.data_converter.encode([details])),
        )  # fmt: skip
        answer = await self._retried(
            "heartbeat", lambda: client.workflow_service.record_activity_task_heartbeat(
                request, timeout=timedelta(seconds=10)))  # fmt: skip
        if answer.cancel_requested:
            return False
        if answer.activity_paused or answer.activity_reset:
            raise StreamInterrupted("the stream activity was paused or reset from Temporal; its next "
                                    "attempt resumes the stream")
        return True

    @staticmethod
    async def _deliver_unsent(send: Callable[[EventBatch], Awaitable[None]], batch: EventBatch) -> None:
        """Best effort: ``batch`` to the run, or handed on to a newer run when it has closed."""
        if not batch.items:
            return
        try:
            await send(batch)
        except WorkflowGone:
            pass  # handed on by ``send``
        except RPCError as exc:
            activity.logger.warning("could not deliver %d items a stopped stream held: %s", len(batch.items),
                                    exc.message)

    @staticmethod
    async def _hand_on(workflow_id: str, run_id: str, batch: EventBatch) -> None:
        """The run this stream served has closed: give the asks it still held to the job's newer
        run (it continued as new), if there is one. They may be decisions already applied."""
        asks = [item for item in batch.items if item.kind == "ask"]
        if not asks:
            return
        client: Client = activity.client()
        latest = client.get_workflow_handle(workflow_id)
        try:
            described = await latest.describe()
            if described.status != WorkflowExecutionStatus.RUNNING or described.run_id == run_id:
                return
            await latest.signal(names.SIGNAL_JOB_EVENTS, EventBatch(generation=-1, items=asks))
            activity.logger.info("handed %d asks on to the job's run %s", len(asks), described.run_id)
        except RPCError as exc:
            activity.logger.warning("could not hand %d asks on to the job's newer run: %s", len(asks), exc.message)

    async def _signal(self, handle: WorkflowHandle[Any, Any], batch: EventBatch) -> None:
        await self._retried(f"signal {names.SIGNAL_JOB_EVENTS}", lambda: handle.signal(names.SIGNAL_JOB_EVENTS, batch))

    async def _retried(self, what: str, call: Callable[[], Awaitable[_T]]) -> _T:
        """One RPC about this stream's run, tried again while the server is busy or briefly away;
        NOT_FOUND (the run, or this attempt, is gone) raises :class:`WorkflowGone`."""
        delay = 0.2
        for attempt in range(1, self._signal_attempts + 1):
            try:
                return await call()
            except RPCError as exc:
                if exc.status == RPCStatusCode.NOT_FOUND:
                    raise WorkflowGone(exc.message) from exc
                if exc.status not in _TRANSIENT_RPC or attempt == self._signal_attempts:
                    raise
                activity.logger.warning("%s failed (%s); retrying", what, exc.message)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
        raise AssertionError("unreachable: the last attempt returns or raises")
