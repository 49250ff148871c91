"""jobgov's activities: calls to the agent, the event stream, notifications and plan reports.

:class:`AgentActivities` receives the worker's dependencies (one shared
``httpx.AsyncClient``, settings, the environment for webhook secrets) and
exposes every activity as a bound method taking one pydantic input. Agent
errors are translated into Temporal errors here (see
:mod:`jobgov.activities.errors`); everything else about the stream lives in
:mod:`jobgov.activities.stream`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

import httpx
from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from jobgov import names
from jobgov.activities.errors import agent_errors, is_retryable_status
from jobgov.activities.stream import EventStreamConsumer, StreamSettings, WorkflowGone
from jobgov.agent import AgentClient, new_http_client
from jobgov.messages import (
    AbortInput,
    CreateSessionInput,
    EventBatch,
    NotifyInput,
    PlanInput,
    PromptInput,
    ReplyInput,
    ReportToPlanInput,
    StreamInput,
)

__all__ = ["AgentActivities", "AgentSettings", "expand_env"]

#: Signal failures worth retrying in place (the server is busy or briefly away).
_TRANSIENT_RPC: Final = frozenset(
    {RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.RESOURCE_EXHAUSTED,
     RPCStatusCode.ABORTED, RPCStatusCode.INTERNAL, RPCStatusCode.UNKNOWN}
)  # fmt: skip
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


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


class _Redact(logging.Filter):
    """Hides expanded webhook secrets from log records (httpx logs every URL at INFO)."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        hidden = message
        for secret in self.secrets:
            hidden = hidden.replace(secret, "***")
        if hidden != message:
            record.msg, record.args = hidden, ()
        return True


_REDACT = _Redact()
logging.getLogger("httpx").addFilter(_REDACT)


def expand_env(template: str, environ: Mapping[str, str]) -> tuple[str, list[str]]:
    """Expand ``${VAR}`` references from ``environ``.

    Returns:
        The expanded text and the names of the variables that are not set.
    """
    missing: list[str] = []

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in environ:
            missing.append(name)
            return ""
        return environ[name]

    return _ENV_REF.sub(value, template), missing


class AgentActivities:
    """The activities of jobgov workers.

    Args:
        http: The HTTP client for the agent and webhooks; created on first use
            (and closed by :meth:`aclose`) when not given.
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
        self.settings = settings or AgentSettings()
        self._environ = environ if environ is not None else os.environ

    @property
    def http(self) -> httpx.AsyncClient:
        """The shared HTTP client (no retries of its own: Temporal owns retries)."""
        if self._http is None:
            self._http = new_http_client()
        return self._http

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    def agent(self, agent_url: str) -> AgentClient:
        """An API client for the agent at ``agent_url``."""
        return AgentClient(self.http, agent_url)

    def all_activities(self) -> list[Callable[..., Any]]:
        """Every activity, bound to this instance, for ``Worker(activities=...)``."""
        return [
            self.stream_events,
            self.create_session,
            self.prompt,
            self.reply,
            self.abort,
            self.notify,
            self.report_to_plan,
        ]

    # -- agent calls ------------------------------------------------------------------------

    @activity.defn(name=names.ACTIVITY_CREATE_SESSION)
    async def create_session(self, input: CreateSessionInput) -> str:
        """Create an agent session; returns its id."""
        with agent_errors(f"create a session on {input.agent_url}"):
            return await self.agent(input.agent_url).create_session(input.title)

    @activity.defn(name=names.ACTIVITY_PROMPT)
    async def prompt(self, input: PromptInput) -> None:
        """Send a prompt; the run continues in the background (watched by ``stream_events``)."""
        with agent_errors(f"prompt session {input.session_id}"):
            await self.agent(input.agent_url).prompt_async(input.session_id, input.text)

    @activity.defn(name=names.ACTIVITY_REPLY)
    async def reply(self, input: ReplyInput) -> bool:
        """Answer a permission ask; ``False`` when the agent no longer knows it (answered or gone)."""
        with agent_errors(f"reply {input.reply!r} to {input.request_id}"):
            return await self.agent(input.agent_url).reply(input.request_id, input.reply, input.message)

    @activity.defn(name=names.ACTIVITY_ABORT)
    async def abort(self, input: AbortInput) -> None:
        """Abort the session's run (idempotent: opencode accepts it for an idle session)."""
        with agent_errors(f"abort session {input.session_id}"):
            await self.agent(input.agent_url).abort(input.session_id)

    # -- the event stream -------------------------------------------------------------------

    @activity.defn(name=names.ACTIVITY_STREAM_EVENTS)
    async def stream_events(self, input: StreamInput) -> None:
        """Consume the session's events for the job until cancelled (see :mod:`jobgov.activities.stream`)."""
        info = activity.info()
        if info.workflow_id is None:
            raise ApplicationError("stream_events must be started by a job workflow", non_retryable=True)
        # The exact run: once it has closed (completed, or continued as new with its own
        # consumer) the signal fails with NOT_FOUND and this consumer stops.
        handle = activity.client().get_workflow_handle(info.workflow_id, run_id=info.workflow_run_id)
        stream = self.settings.stream
        if info.heartbeat_timeout is not None:
            half = info.heartbeat_timeout.total_seconds() / 2
            stream = replace(stream, heartbeat_every=min(stream.heartbeat_every, half))

        async def send(batch: EventBatch) -> None:
            await self._signal(handle, batch)

        # A retried attempt resumes from its predecessor's last known session status, so a
        # run that ended in between is reported (see EventStreamConsumer._reconciled_status).
        previous = info.heartbeat_details[0] if info.heartbeat_details else None
        last_status = previous.get("status") if isinstance(previous, dict) else None
        consumer = EventStreamConsumer(
            self.agent(input.agent_url),
            input,
            send,
            activity.heartbeat,
            settings=stream,
            logger=activity.logger,
            attempt=info.attempt,
            last_status=last_status if isinstance(last_status, str) else None,
        )
        await consumer.run()

    async def _signal(self, handle: WorkflowHandle[Any, Any], batch: EventBatch) -> None:
        delay = 0.2
        for attempt in range(1, self.settings.signal_attempts + 1):
            try:
                await handle.signal(names.SIGNAL_JOB_EVENTS, batch)
                return
            except RPCError as exc:
                if exc.status == RPCStatusCode.NOT_FOUND:
                    raise WorkflowGone(exc.message) from exc
                if exc.status not in _TRANSIENT_RPC or attempt == self.settings.signal_attempts:
                    raise
                activity.logger.warning("signal %s failed (%s); retrying", names.SIGNAL_JOB_EVENTS, exc.message)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    # -- notifications and plan reports -----------------------------------------------------

    @activity.defn(name=names.ACTIVITY_NOTIFY)
    async def notify(self, input: NotifyInput) -> None:
        """Log a notification and POST it to the webhook, if any; never fails on webhook trouble."""
        who = f"{input.plan}/{input.job}" if input.job else input.plan
        activity.logger.info("jobgov %s %s: %s", input.kind, who, input.message)
        if not input.webhook:
            return
        # The URL in history keeps its ${VAR} references; secrets come from the worker's environment.
        url, missing = expand_env(input.webhook, self._environ)
        _REDACT.secrets.update(
            value for name in _ENV_REF.findall(input.webhook) if len(value := self._environ.get(name, "")) >= 4
        )
        if missing:
            activity.logger.warning(
                "notification not sent to %s: %s not set in the worker's environment",
                input.webhook, ", ".join(missing),
            )  # fmt: skip
            return
        if not url.startswith(("http://", "https://")):
            activity.logger.warning("notification not sent: webhook %s is not an http(s) URL", input.webhook)
            return
        payload = {
            "text": f"[jobgov] {input.kind} {who}: {input.message}",
            **input.model_dump(mode="json", exclude={"webhook"}),
        }
        problem = ""
        for attempt in range(self.settings.webhook_attempts):
            if attempt:
                await asyncio.sleep(self.settings.webhook_backoff * 2 ** (attempt - 1))
            try:
                response = await self.http.post(url, json=payload, timeout=self.settings.webhook_timeout)
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}"  # the message may contain the (secret) URL
                continue
            if response.status_code < 300:
                return
            problem = f"HTTP {response.status_code}"
            if not is_retryable_status(response.status_code):
                break
        activity.logger.warning("notification to %s failed (%s); dropped", input.webhook, problem)

    @activity.defn(name=names.ACTIVITY_REPORT_TO_PLAN)
    async def report_to_plan(self, input: ReportToPlanInput) -> None:
        """Signal-with-start the plan's workflow with a job's cumulative usage."""
        await activity.client().start_workflow(
            names.PLAN_WORKFLOW,
            PlanInput(plan=input.plan, budget=input.budget),
            id=names.plan_workflow_id(input.plan),
            task_queue=activity.info().task_queue,
            start_signal=names.SIGNAL_PLAN_JOB_REPORT,
            start_signal_args=[input.report],
        )
