"""Every jobgov activity, composed over HTTP clients whose life the worker owns.

:class:`AgentActivities` builds the activity classes (agent calls, the event
stream, notifications) and hands their bound methods to the worker
(:meth:`AgentActivities.all_activities`). Short calls share one
``httpx.AsyncClient``, which the plugin opens when a worker starts and closes
when the last worker using it stops (:meth:`AgentActivities.running`); each
job's stream activity has a small client of its own for its life.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from jobgov.opencode.client import KEEPALIVE, AgentClient, check_keepalive, new_http_client
from jobgov.opencode.credentials import AgentCredentials
from jobgov.temporal.activities.agent_calls import AgentCalls
from jobgov.temporal.activities.consumer import StreamSettings
from jobgov.temporal.activities.notify import Notifier, WebhookSettings
from jobgov.temporal.activities.plan_report import report_to_plan
from jobgov.temporal.activities.stream import StreamActivity

__all__ = ["AgentActivities", "AgentSettings"]

#: Connections a job's stream client keeps: the stream itself and the replies and reads beside it.
STREAM_POOL = 4


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
    agent_keepalive: float = KEEPALIVE
    """Seconds an idle connection to an agent is kept for the next call (``jobgov worker
    --agent-keepalive``): keep it below the idle timeout of the agent and of any proxy before it
    (see :data:`jobgov.opencode.client.KEEPALIVE`)."""

    def __post_init__(self) -> None:
        check_keepalive(self.agent_keepalive, "AgentSettings.agent_keepalive")  # before any client is made


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
        credentials: AgentCredentials | None = None,
    ) -> None:
        self._http = http
        self._owns_http = http is None
        self._tls: ssl.SSLContext | None = None
        self._users = 0
        self.settings = settings = settings or AgentSettings()
        # Agent passwords from the worker's environment (never from inputs: those are in history).
        self.credentials = credentials or AgentCredentials.from_environ(environ)
        self.calls = AgentCalls(self._client, self.credentials)
        self.stream = StreamActivity(self._stream_client, settings.stream, settings.signal_attempts,
                                     self.credentials)
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
        self.collect_stream = self.stream.collect_stream
        self.notify = self.notifier.notify
        self.report_to_plan = report_to_plan

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = new_http_client(keepalive=self.settings.agent_keepalive)
        return self._http

    @asynccontextmanager
    async def _stream_client(self) -> AsyncIterator[httpx.AsyncClient]:
        """The HTTP client of one job's stream activity, for its stream and the replies it sends.

        An event stream holds its connection for the job's whole life. With one pool for every
        stream, 100 jobs took all of a 100-connection pool and replies waited for it; with no limit,
        each request scanned every job's open stream (httpx's pool bookkeeping). A client per
        stream keeps a handful of connections to its own agent. They share one TLS context, whose
        loading is what an httpx client costs to create. A client given to the plugin is used as is.
        """
        if not self._owns_http:
            yield self._client()
            return
        if self._tls is None:
            self._tls = httpx.create_ssl_context()
        client = new_http_client(pool=STREAM_POOL, verify=self._tls, keepalive=self.settings.agent_keepalive)
        try:
            yield client
        finally:
            await client.aclose()

    @property
    def http(self) -> httpx.AsyncClient:
        """The shared HTTP client (no retries of its own: Temporal owns retries)."""
        return self._client()

    def agent(self, agent_url: str) -> AgentClient:
        """An API client for the agent at ``agent_url``."""
        return self.calls.agent(agent_url)

    def agent_side_activities(self) -> list[Callable[..., Any]]:
        """The activities that talk to the agent or read its worktree: what a worker on the agent's
        host runs (``JobGovPlugin(agent_host=True)``)."""
        return [self.stream_events, self.create_session, self.prompt, self.reply, self.abort]

    def all_activities(self) -> list[Callable[..., Any]]:
        """Every activity, for ``Worker(activities=...)``."""
        return [*self.agent_side_activities(), self.collect_stream, self.notify, self.report_to_plan]

    async def aclose(self) -> None:
        """Close the HTTP clients if this object created them."""
        if not self._owns_http:
            return
        if self._http is not None:
            await self._http.aclose()
        self._http = None

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
