"""``EventReader``: reads an opencode ``/event`` stream in the background, for test assertions.

It works the same against :class:`~jobgov.testing.fake_agent.FakeAgent` and a
real ``opencode serve``::

    async with EventReader(client) as events:       # returns after server.connected
        ...
        ask = await events.next("permission.asked", session_id=sid)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
from httpx_sse import aconnect_sse

from jobgov.testing._service import AsyncService

__all__ = ["EventReader"]

Match = Callable[[dict[str, Any]], bool]


def event_session(evt: dict[str, Any]) -> str | None:
    """The session an event is about, if it names one."""
    props: dict[str, Any] = evt.get("properties", {})
    sid = props.get("sessionID") or props.get("info", {}).get("sessionID")
    return str(sid) if sid else None


class EventReader(AsyncService):
    """Collects ``/event`` frames into :attr:`events`; :meth:`next` walks them with a cursor.

    Args:
        client: an ``httpx.AsyncClient`` whose ``base_url`` is the server.
        path: the stream path (``/event``).
        connect_timeout: how long to wait for the first frame (opencode boots the
            project instance on the first subscription, PROTOCOL.md finding 8).
        read_timeout: the longest silence tolerated (opencode heartbeats every 10 s).
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        path: str = "/event",
        *,
        connect_timeout: float = 30.0,
        read_timeout: float = 60.0,
    ) -> None:
        self._client = client
        self._path = path
        self._connect_timeout = connect_timeout
        self._timeout = httpx.Timeout(connect_timeout, read=read_timeout)
        #: Every frame received, decoded, in order.
        self.events: list[dict[str, Any]] = []
        #: Set once the stream has ended (server closed it, or an error).
        self.closed = asyncio.Event()
        self.error: BaseException | None = None
        self._cursor = 0
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Connect, and return once the first frame has arrived."""
        self._task = asyncio.create_task(self._read(), name=f"event-reader-{self._path}")
        await self.next(lambda e: True, timeout=self._connect_timeout, consume=False)

    async def stop(self) -> None:
        """Stop reading (idempotent); the same as :meth:`aclose`."""
        await self.aclose()

    async def aclose(self) -> None:
        """Stop reading (idempotent)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                async with asyncio.timeout(5.0):
                    await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # we are being cancelled ourselves, not just the reader

    async def _read(self) -> None:
        try:
            async with aconnect_sse(
                self._client, "GET", self._path, timeout=self._timeout
            ) as source:
                source.response.raise_for_status()
                async for sse in source.aiter_sse():
                    if sse.data:
                        self.events.append(json.loads(sse.data))
                        self._changed.set()
        except (httpx.HTTPError, ValueError) as exc:
            self.error = exc
        finally:
            self.closed.set()
            self._changed.set()

    def types(self, session_id: str | None = None) -> list[str]:
        """The event types received so far (of one session if given)."""
        return [e["type"] for e in self.events if session_id in (None, event_session(e))]

    async def next(
        self,
        match: str | Match | None = None,
        *,
        session_id: str | None = None,
        timeout: float = 10.0,
        consume: bool = True,
    ) -> dict[str, Any]:
        """The next event after the cursor that has type ``match`` (or satisfies it).

        Events skipped on the way are passed over for good (the cursor moves past
        them). Raises ``TimeoutError`` after ``timeout`` seconds, or
        ``EOFError`` if the stream ends first.
        """

        def ok(evt: dict[str, Any]) -> bool:
            if session_id is not None and event_session(evt) != session_id:
                return False
            if match is None:
                return True
            return evt.get("type") == match if isinstance(match, str) else match(evt)

        deadline = time.monotonic() + timeout
        while True:
            while self._cursor < len(self.events):
                evt = self.events[self._cursor]
                if ok(evt):
                    if consume:
                        self._cursor += 1
                    return evt
                self._cursor += 1
            if self.closed.is_set():
                raise EOFError(f"stream ended while waiting for {match!r} ({self.error!r})")
            self._changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"no {match!r} event within {timeout}s; saw {self.types()[-20:]}"
                )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self._changed.wait()
