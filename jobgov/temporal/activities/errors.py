"""Agent errors as Temporal errors: the one place retryability is decided.

Activities call the agent through :class:`~jobgov.opencode.client.AgentClient`, whose
HTTP client never retries; Temporal does, following these rules:

* 408, 409, 429 and 5xx, and no answer at all (connection refused or reset,
  timeout): retryable, honouring ``Retry-After`` as ``next_retry_delay``;
* any other 4xx: the request itself is wrong (unknown session, bad payload),
  so retrying cannot help: non-retryable, with a message that says what to fix.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Final

from temporalio.exceptions import ApplicationError

from jobgov.opencode.client import AgentError, AgentHTTPError, AgentUnreachable

__all__ = [
    "ERROR_AGENT_HTTP",
    "ERROR_AGENT_REJECTED",
    "ERROR_AGENT_UNAUTHORIZED",
    "ERROR_AGENT_UNREACHABLE",
    "agent_errors",
    "is_retryable_status",
    "to_application_error",
    "unauthorized",
]

# ApplicationError types: durable (workflows and retry policies may name them).
ERROR_AGENT_UNREACHABLE: Final = "AgentUnreachable"
"""No answer from the agent (retryable)."""
ERROR_AGENT_UNAUTHORIZED: Final = "AgentUnauthorized"
"""The agent answered 401/403: the worker has no password for it, or the wrong one (not retried)."""
ERROR_AGENT_HTTP: Final = "AgentHTTPError"
"""A transient error status: 408, 409, 429 or 5xx (retryable)."""
ERROR_AGENT_REJECTED: Final = "AgentRequestRejected"
"""Any other 4xx: the request is wrong (non-retryable)."""

_RETRYABLE_4XX = frozenset({408, 409, 429})


def is_retryable_status(status: int) -> bool:
    """Whether an HTTP status is worth retrying: 408, 409, 429 and every 5xx."""
    return status in _RETRYABLE_4XX or status >= 500


def unauthorized(what: str, status: int) -> str:
    """What to do when the agent answers 401/403: the password lives in the worker's environment."""
    return (f"{what}: the agent answered HTTP {status}: it wants a password the worker did not send, or sent "
            "wrong; give the worker OPENCODE_SERVER_PASSWORD (and OPENCODE_SERVER_USERNAME), or a "
            "JOBGOV_AGENT_CREDENTIALS file with an entry for this agent's URL")


def to_application_error(exc: AgentError, what: str) -> ApplicationError:
    """The Temporal error for an agent error.

    Args:
        exc: The agent error.
        what: What the activity was doing, for the message (e.g. ``"prompt session ses_…"``).
    """
    if isinstance(exc, AgentHTTPError):
        delay = timedelta(seconds=exc.retry_after) if exc.retry_after is not None else None
        details = {"status": exc.status, "body": exc.body, "method": exc.method, "path": exc.path}
        if is_retryable_status(exc.status):
            return ApplicationError(
                f"{what}: the agent answered HTTP {exc.status} (will retry): {exc}",
                details,
                type=ERROR_AGENT_HTTP,
                next_retry_delay=delay,
            )
        if exc.status in (401, 403):
            return ApplicationError(unauthorized(what, exc.status), details, type=ERROR_AGENT_UNAUTHORIZED,
                                    non_retryable=True)
        return ApplicationError(
            f"{what}: the agent rejected the request with HTTP {exc.status}, so retrying cannot help; "
            f"check the agent URL, the session id and the agent's version (opencode 1.18 expected): {exc}",
            details,
            type=ERROR_AGENT_REJECTED,
            non_retryable=True,
        )
    if isinstance(exc, AgentUnreachable):
        return ApplicationError(f"{what}: the agent is unreachable (will retry): {exc}", type=ERROR_AGENT_UNREACHABLE)
    return ApplicationError(f"{what}: {exc}", type=ERROR_AGENT_UNREACHABLE)


@contextmanager
def agent_errors(what: str) -> Iterator[None]:
    """Translate agent errors raised in the block into ``ApplicationError`` (see module doc).

    Example::

        with agent_errors(f"abort session {input.session_id}"):
            await agent.abort(input.session_id)
    """
    try:
        yield
    except AgentError as exc:
        raise to_application_error(exc, what) from exc
