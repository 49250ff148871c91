"""The short calls to the agent: create a session, prompt, reply to an ask, abort a run.

Each is one HTTP request through :class:`~jobgov.opencode.client.AgentClient`;
errors are translated into Temporal errors at this boundary
(:mod:`jobgov.temporal.activities.errors`), and Temporal owns the retries.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
from temporalio import activity

from jobgov import names
from jobgov.opencode.client import AgentClient
from jobgov.opencode.credentials import AgentCredentials
from jobgov.temporal.activities.errors import agent_errors
from jobgov.temporal.payloads import (
    AbortInput,
    CreateSessionInput,
    PromptInput,
    ReplyInput,
)

__all__ = ["AgentCalls"]


class AgentCalls:
    """Activities that make one request to the agent.

    Args:
        http: Returns the worker's shared HTTP client (owned by the plugin, never by this class).
        credentials: Agent passwords, from the worker's environment.
    """

    def __init__(self, http: Callable[[], httpx.AsyncClient], credentials: AgentCredentials | None = None) -> None:
        self._http = http
        self._credentials = credentials or AgentCredentials()

    def agent(self, agent_url: str) -> AgentClient:
        """An API client for the agent at ``agent_url`` (with its password, if the worker has one)."""
        return AgentClient(self._http(), agent_url, auth=self._credentials.auth_for(agent_url))

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
