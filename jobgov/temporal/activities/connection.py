"""Keeping one session's event stream open: the transport half of the stream consumer.

:class:`StreamConnection` connects to the agent's ``GET /event``, moves the session's events
into a queue as they arrive, hands them on in bursts, and reconnects with a backoff when the
stream drops, goes silent past ``idle_timeout``, or its frames stop for ``silent_after`` (the
agent is then reported unreachable, and reachable again at its next frame). It also keeps the
deadline of the next delivery, so that coalesced items never wait past it.

What the events *mean* (asks, steps, statuses, what the workflow must hear and when) is
:class:`~jobgov.temporal.activities.consumer.EventStreamConsumer`'s, through the hooks at the
end of the class. Independent of Temporal, like the consumer.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from typing import Final

from jobgov.opencode.client import AgentClient, AgentError, AgentHTTPError
from jobgov.opencode.events import Event, session_of
from jobgov.temporal import metrics
from jobgov.temporal.activities.errors import to_application_error
from jobgov.temporal.activities.reachability import Reachability
from jobgov.temporal.activities.stream_settings import StreamProgress, StreamSettings, WorkflowGone
from jobgov.temporal.payloads import StreamInput

__all__ = ["Resync", "Stopped", "StreamConnection"]


class Resync(Exception):
    """Reconnect (and so reconcile) now: the local view may be out of date."""


class Stopped(Exception):
    """The workflow cancelled this stream (a decision's heartbeat said so): deliver what is held, end."""


class _Ended:
    def __init__(self, error: BaseException | None) -> None:
        self.error = error


_CONNECTED: Final = object()
#: ``_next``'s answer when coalesced items have waited long enough.
_FLUSH_DUE: Final = object()
#: The agent was heard from again after it was reported unreachable (any frame, heartbeats too).
_HEARD: Final = object()
#: A decision's heartbeat was answered "cancelled": stop at the next event boundary.
_STOP: Final = object()
#: The connection's watchdog timer fired: a deadline (silence, delivery) may have come.
_WAKE: Final = object()
_Queued = Event | _Ended | object


class StreamConnection(abc.ABC):
    """One session's event stream, kept open until the consumer stops or its workflow is gone.

    Subclasses give what the events mean through the hooks :meth:`_connected`, :meth:`_arrived`,
    :meth:`_connecting`, :meth:`_on_event`, :meth:`_due_now`, :meth:`_may_wait`, :meth:`_flush`,
    :meth:`_still_wanted` and :meth:`_count`.
    """

    def __init__(self, agent: AgentClient, input: StreamInput, settings: StreamSettings,
                 log: logging.Logger | logging.LoggerAdapter[logging.Logger], reach: Reachability,
                 progress: StreamProgress) -> None:
        self._agent = agent
        self._input = input
        self._settings = settings
        self._log = log
        self._reach = reach
        self.progress = progress
        self._stop: str | None = None
        self._queue: asyncio.Queue[_Queued] | None = None
        self._carry: _Ended | None = None
        self._flush_at: float | None = None
        self._last_frame = 0.0
        self._attempt_connected = False
        #: The connection's one watchdog timer, and when it fires (see :meth:`_next`).
        self._watchdog: asyncio.TimerHandle | None = None
        self._watchdog_at = 0.0

    def _request_stop(self, why: str) -> None:
        """Stop at the next event boundary (never between an ask's record and its reply)."""
        if self._stop is None:
            self._stop = why
            if self._queue is not None:
                self._queue.put_nowait(_STOP)

    async def _reconnect_forever(self) -> None:
        loop = asyncio.get_running_loop()
        delay = self._settings.backoff_min
        while True:
            started = loop.time()
            self._attempt_connected = False
            try:
                await self._connection()
                reason = "closed by the agent"
            except AgentHTTPError as exc:
                if exc.status in (401, 403):  # no retry can fix a password: the job fails, saying why
                    raise to_application_error(exc, f"stream the events of {self._input.agent_url}") from exc
                reason = str(exc)
            except (AgentError, Resync) as exc:
                reason = str(exc)
            if self._stop is not None:
                raise Stopped(self._stop)
            if not await self._still_wanted():
                # The job ended (the stream hears of it from a heartbeat, up to ~24 s later), and
                # its agent went away with it: nothing is wrong, and nobody needs a warning.
                raise WorkflowGone(f"the job's run has closed; the agent's stream ended ({reason})")
            if not self._attempt_connected:
                await self._reach.lost(reason, self._last_frame)
            if loop.time() - started >= self._settings.backoff_max:
                delay = self._settings.backoff_min  # it was healthy: retry quickly
            self.progress.reconnects += 1
            self._count(metrics.AGENT_RECONNECTS, 1, {})
            self._log.warning(
                "stream %s: %s; reconnect %d in %.1fs",
                self._input.session_id, reason, self.progress.reconnects, delay,
            )  # fmt: skip
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._settings.backoff_max)

    async def _connection(self) -> None:
        """One connection: connect, reconcile, then process bursts until it drops."""
        queue: asyncio.Queue[_Queued] = asyncio.Queue()
        self._queue = queue
        if self._stop is not None:
            raise Stopped(self._stop)
        self._carry = None
        self._connecting()
        self._last_frame = asyncio.get_running_loop().time()
        reader = asyncio.create_task(self._read(queue))
        try:
            while True:
                first = await self._next(queue)
                if self._reach.unreachable and (first is _CONNECTED or first is _HEARD or isinstance(first, dict)):
                    await self._reach.back()  # heard from again
                if first is _HEARD:
                    continue
                if first is _STOP:
                    raise Stopped(self._stop)
                if first is _CONNECTED:
                    self.progress.connected = self._attempt_connected = True
                    await self._connected()
                    continue
                if isinstance(first, _Ended):
                    if isinstance(first.error, Exception):
                        raise first.error
                    return
                if first is _FLUSH_DUE:
                    await self._flush()
                    continue
                burst = [first, *self._drain(queue)]
                for event in burst:
                    assert isinstance(event, dict)
                    await self._on_event(event)
                if self._due_now():
                    await self._flush()
                elif (wait := self._may_wait()) is not None:
                    due = asyncio.get_running_loop().time() + wait
                    if self._flush_at is None or due < self._flush_at:
                        self._flush_at = due
        finally:
            self._queue = None
            self._disarm()
            self.progress.connected = False
            reader.cancel()
            # asyncio.wait, not ``await reader``: it never swallows a cancellation of this task.
            await asyncio.wait({reader})

    async def _read(self, queue: asyncio.Queue[_Queued]) -> None:
        """Reader task: moves our session's events into ``queue`` as they arrive."""
        try:
            async with self._agent.event_stream() as stream:
                queue.put_nowait(_CONNECTED)
                async for event in stream:
                    self._last_frame = asyncio.get_running_loop().time()
                    if self._reach.unreachable:
                        queue.put_nowait(_HEARD)
                    self.progress.events += 1
                    self.progress.last_event_id = event.get("id") or self.progress.last_event_id
                    if session_of(event) == self._input.session_id:
                        self._arrived(event)
                        queue.put_nowait(event)
            queue.put_nowait(_Ended(None))
        except Exception as exc:  # noqa: BLE001 - handed to the main loop, which decides
            queue.put_nowait(_Ended(exc))

    async def _next(self, queue: asyncio.Queue[_Queued]) -> _Queued:
        if self._carry is not None:
            carried, self._carry = self._carry, None
            return carried
        idle = self._settings.idle_timeout
        if idle is None and self._flush_at is None:  # no deadline to watch
            while (item := await queue.get()) is _WAKE:
                pass  # a watchdog armed for a delivery since made
            return item
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            if self._flush_at is not None and now >= self._flush_at:
                return _FLUSH_DUE
            remaining = self._last_frame + idle - now if idle is not None else float("inf")
            if remaining <= 0:
                raise Resync(f"no frame for {idle:.0f}s")
            silent = self._settings.silent_after
            if not self._reach.unreachable and now - self._last_frame >= silent:
                await self._reach.lost(f"no frame from the agent for {silent:g}s", self._last_frame)
                continue
            if not self._reach.unreachable:
                remaining = min(remaining, self._last_frame + silent - now)
            if self._flush_at is not None:
                remaining = min(remaining, self._flush_at - now)
            if not queue.empty():
                item = queue.get_nowait()
            else:
                self._arm(queue, now + remaining)
                item = await queue.get()
            if item is not _WAKE:
                return item
            # The watchdog fired: look at the deadlines again (frames may have moved them on).

    def _arm(self, queue: asyncio.Queue[_Queued], at: float) -> None:
        """Make sure the watchdog wakes :meth:`_next` by ``at``.

        One timer per connection, re-armed only when a deadline comes sooner than it: a timeout
        around every wait for an event cost a timer made and cancelled per event (2 to 3 % of a
        loaded worker's event loop, py-spy at 100 to 1,000 jobs). A timer that fires before the
        deadlines it was armed for (frames moved them on) only wakes :meth:`_next` to re-arm it.
        """
        if self._watchdog is not None:
            if self._watchdog_at <= at:
                return
            self._watchdog.cancel()
        self._watchdog_at = at
        self._watchdog = asyncio.get_running_loop().call_at(at, self._wake, queue)

    def _wake(self, queue: asyncio.Queue[_Queued]) -> None:
        self._watchdog = None
        queue.put_nowait(_WAKE)

    def _disarm(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    def _drain(self, queue: asyncio.Queue[_Queued]) -> list[_Queued]:
        """Everything already queued (one burst), up to a connection marker."""
        burst: list[_Queued] = []
        while not queue.empty():
            item = queue.get_nowait()
            if isinstance(item, _Ended):
                self._carry = item
                break
            if item is _STOP:
                self._carry = _Ended(Stopped(self._stop))
                break
            if item is not _CONNECTED and item is not _HEARD and item is not _WAKE:
                burst.append(item)
        return burst

    # ------------------------------------------------------------------ what the events mean

    @abc.abstractmethod
    def _connecting(self) -> None:
        """A new connection begins: forget what the last one learned that may have changed."""

    @abc.abstractmethod
    async def _connected(self) -> None:
        """The stream is open: learn what was missed while away."""

    @abc.abstractmethod
    def _arrived(self, event: Event) -> None:
        """An event of the session arrives: runs ahead of processing (the queue may be behind)."""

    @abc.abstractmethod
    async def _on_event(self, event: Event) -> None:
        """Process one event of a burst, in order."""

    @abc.abstractmethod
    def _due_now(self) -> bool:
        """After a burst: the workflow must hear of what is held now."""

    @abc.abstractmethod
    def _may_wait(self) -> float | None:
        """Seconds the held items may wait for their delivery (``None``: nothing is held)."""

    @abc.abstractmethod
    async def _flush(self) -> None:
        """Deliver what is held, and clear ``_flush_at``."""

    async def _still_wanted(self) -> bool:
        """Asked when a connection ends, before reconnecting: ``False`` when the job's run has closed."""
        return True

    @abc.abstractmethod
    def _count(self, name: str, value: float, labels: dict[str, str]) -> None:
        """Count a metric (``AGENT_RECONNECTS``)."""
