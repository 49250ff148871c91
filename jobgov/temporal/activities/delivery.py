"""When the stream delivers what it holds to the workflow: pure rules over its outbox.

A delivery is an ``EventBatch`` signal: a history event and a workflow task. The stream sends
one at once only for what the workflow acts on (a change of status, an ask it decides, a budget
threshold); the rest (usage, replies, automatic decisions recorded in heartbeats) waits up to
``deliver_every`` and rides along, so a job costs well under one history event per step. When
one worker process runs many streams, that wait is stretched (:func:`spacing`), so that their
deliveries together stay within what the worker can run as workflow tasks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from jobgov.domain.items import AskItem, EventItem, SessionItem, StepItem
from jobgov.temporal.activities.stream_settings import StreamSettings

__all__ = ["MAX_BATCH", "due_now", "may_wait", "spacing"]

#: Items one batch holds at most before it is sent (a step is about half a kilobyte).
MAX_BATCH: Final = 256


def due_now(outbox: Sequence[EventItem], *, delivered_status: str | None, by_heartbeat: bool,
            budget_news: bool) -> bool:
    """The workflow must hear of something in the outbox now: a change of status, an ask it
    decides, an ask that is recorded by its delivery. Usage, replies, automatic decisions
    recorded in heartbeats (``by_heartbeat``) and, then, a status the session already had
    (opencode repeats ``busy`` at every step) wait for the next delivery, unless the job's budget
    crossed one of its thresholds (``budget_news``: the workflow warns, notifies or pauses on it).

    ``delivered_status``: the status of the last session item delivered.
    """
    if len(outbox) >= MAX_BATCH:
        return True  # a signal stays far below Temporal's payload limit, whatever the agent's pace
    if budget_news and outbox:
        return True
    last = delivered_status
    for item in outbox:
        if isinstance(item, SessionItem):
            repeated = (by_heartbeat and item.status in ("busy", "retry") and item.status == last
                        and item.unfinished is None and item.message is None)
            last = item.status
            if not repeated:
                return True
        elif isinstance(item, AskItem) and (item.auto is None or not by_heartbeat):
            return True
    return False


def spacing(settings: StreamSettings, streams: int) -> float:
    """Seconds between one stream's deliveries of what may wait, when its worker process runs
    ``streams`` streams: ``deliver_every``, or longer when the streams together would deliver more
    than ``deliveries_per_second`` (``None``: never longer)."""
    rate = settings.deliveries_per_second
    if rate is None:
        return settings.deliver_every
    return max(settings.deliver_every, streams / rate)


def may_wait(outbox: Sequence[EventItem], settings: StreamSettings, *, by_heartbeat: bool,
             plan_budget: bool | None, streams: int = 1) -> float:
    """Seconds the outbox may wait for its delivery, when the worker runs ``streams`` streams (see
    :func:`spacing`). A plan with a budget sums its jobs' usage, so steps wait no more than
    ``usage_every``, however many streams run; ``plan_budget`` ``None``: a workflow before 0.7,
    which does not say."""
    if not by_heartbeat:
        return settings.coalesce
    wait = spacing(settings, streams)
    if plan_budget is not False and any(isinstance(item, StepItem) for item in outbox):
        return min(settings.usage_every, wait)
    return wait
