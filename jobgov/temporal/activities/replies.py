"""An automatic decision's reply to the agent, once its record is durable: sent, or why not.

A reply is retried on what retrying can fix (the connection, a 5xx, a 429), never sent once the
run that raised the ask has ended (a late reply can restart an aborted tool: PROTOCOL finding 3),
and an ask the agent had already been answered is not an error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Container

from jobgov.domain.decide import Verdict
from jobgov.opencode.client import AgentClient, AgentError, AgentHTTPError
from jobgov.temporal.activities.errors import is_retryable_status
from jobgov.temporal.activities.stream_settings import StreamSettings

__all__ = ["ReplyFailed", "send_reply"]


class ReplyFailed(Exception):
    """Every attempt failed on what retrying could fix: the stream resynchronises, and the ask is
    handled again from what the agent then lists."""


async def send_reply(agent: AgentClient, request_id: str, verdict: Verdict, *, settings: StreamSettings,
                     cancelled: Container[str], log: logging.Logger | logging.LoggerAdapter[logging.Logger],
                     session_id: str) -> str | None:
    """Reply to the agent: ``None`` when the agent took it, else why no reply went out.

    ``cancelled``: asks whose run has ended, read before each attempt (it grows as the stream reads).
    Raises :class:`ReplyFailed` after ``settings.reply_attempts`` retryable failures.
    """
    reply, message = verdict.reply or "reject", verdict.message
    failure: AgentError | None = None
    for attempt in range(settings.reply_attempts):
        if request_id in cancelled:
            # The run ended while the ask was being recorded: a late reply can restart
            # the aborted tool (PROTOCOL finding 3), so none is sent.
            log.warning("stream %s: %s cancelled by the end of the run; not replying", session_id, request_id)
            return "the run ended before the reply went out (a late reply can restart an aborted tool)"
        try:
            if not await agent.reply(request_id, reply, message):
                log.info("stream %s: %s was already answered", session_id, request_id)
                return "the agent had already been answered"
            return None
        except AgentHTTPError as exc:
            if not is_retryable_status(exc.status):
                log.error("stream %s: reply to %s refused: %s", session_id, request_id, exc)
                return f"the agent refused the reply: {exc}"
            failure = exc
        except AgentError as exc:
            failure = exc
        await asyncio.sleep(settings.backoff_min * 2**attempt)
    raise ReplyFailed(f"could not reply {reply!r} to {request_id}: {failure}")
