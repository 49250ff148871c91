"""Every jobgov activity, composed over one shared HTTP client whose life the worker owns.

:class:`AgentActivities` builds the activity classes (agent calls, the event
stream, notifications) around one ``httpx.AsyncClient`` and hands their bound
methods to the worker (:meth:`AgentActivities.all_activities`). The plugin
opens it when a worker starts and closes it when the last worker using it
stops (:meth:`AgentActivities.running`).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from jobgov.opencode.client import AgentClient, new_http_client
from jobgov.temporal.activities.agent_calls import AgentCalls
from jobgov.temporal.activities.consumer import StreamSettings
from jobgov.temporal.activities.notify import Notifier, WebhookSettings
from jobgov.temporal.activities.plan_report import report_to_plan
from jobgov.temporal.activities.stream import StreamActivity

__all__ = ["AgentActivities", "AgentSettings"]


@dataclass(frozen=True)
class AgentSettings:
    """Worker-side settings of the activities (never recorded in history)."""

    stream: StreamSettings = field(default_factory=StreamSettings)
    """Timing of the event-stream consumer (its heartbeat is also capped at half the heartbeat timeout)."""
    signal_attempts: int = 5
    """Tries to deliver one event batch when the Temporal server is briefly unavailable."""
    webhook_timeout: float = 5.0
    """Seconds for one webhook POST."""
    webhook_attempts: int = 3
    """Tries per notification; then it is logged and dropped (notifications never block governance)."""
    webhook_backoff: float = 0.5
    """Seconds before the second try; doubled for each further try."""


class AgentActivities:
    """The activities of jobgov workers.

    Args:
        http: An HTTP client for the agents and webhooks, owned by the caller; when not
            given, one is created on first use and closed by :meth:`aclose`.
        settings: Timing and retry settings.
        environ: Where ``${VAR}`` in webhook URLs is looked up (default: ``os.environ``).
    """

    def __init__(
        self,
        http: httpx.AsyncClient | None = None,
        settings: AgentSettings | None = None,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._http = http
        self._owns_http = http is None
        # The event streams hold one connection each for a job's whole life: they get a client of
        # their own, without a pool limit, so that they never make a reply or a prompt wait for a
        # connection (with one shared pool, 100 jobs took its 100 connections).
        self._streams_http: httpx.AsyncClient | None = http
        self._users = 0
        self.settings = settings = settings or AgentSettings()
        self.calls = AgentCalls(self._client)
        self.stream = StreamActivity(self._stream_client, settings.stream, settings.signal_attempts)
        self.notifier = Notifier(
            self._client,
            WebhookSettings(settings.webhook_timeout, settings.webhook_attempts, settings.webhook_backoff),
            environ if environ is not None else os.environ,
        )
        # The activities, by the names their definitions carry (see jobgov.names).
        self.create_session = self.calls.create_session
        self.prompt = self.calls.prompt
        self.reply = self.calls.reply
        self.abort = self.calls.abort
        self.stream_events = self.stream.stream_events
        self.notify = self.notifier.notify
        self.report_to_plan = report_to_plan

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = new_http_client()
        return self._http

    def _stream_client(self) -> httpx.AsyncClient:
        if self._streams_http is None:
            self._streams_http = new_http_client(pool=None)
        return self._streams_http

    @property
    def http(self) -> httpx.AsyncClient:
        """The shared HTTP client (no retries of its own: Temporal owns retries)."""
        return self._client()

    def agent(self, agent_url: str) -> AgentClient:
        """An API client for the agent at ``agent_url``."""
        return self.calls.agent(agent_url)

    def all_activities(self) -> list[Callable[..., Any]]:
        """Every activity, for ``Worker(activities=...)``."""
        return [
            self.stream_events,
            self.create_session,
            self.prompt,
            self.reply,
            self.abort,
            self.notify,
            self.report_to_plan,
        ]

    async def aclose(self) -> None:
        """Close the HTTP clients if this object created them."""
        if not self._owns_http:
            return
        for client in (self._http, self._streams_http):
            if client is not None:
                await client.aclose()
        self._http = self._streams_http = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """While a worker runs: the HTTP client is open, and closed after the last worker stops."""
        self._users += 1
        self._client()
        try:
            yield
        finally:
            self._users -= 1
            if self._users == 0:
                await self.aclose()
