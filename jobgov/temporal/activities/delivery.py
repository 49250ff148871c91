"""When the stream delivers what it holds to the workflow: pure rules over its outbox.

A delivery is an ``EventBatch`` signal: a history event and a workflow task. The stream sends
one at once only for what the workflow acts on (a change of status, an ask it decides, a budget
threshold); the rest (usage, replies, automatic decisions recorded in heartbeats) waits up to
``deliver_every`` and rides along, so a job costs well under one history event per step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from jobgov.domain.items import AskItem, EventItem, SessionItem, StepItem
from jobgov.temporal.activities.stream_settings import StreamSettings

__all__ = ["MAX_BATCH", "due_now", "may_wait"]

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


def may_wait(outbox: Sequence[EventItem], settings: StreamSettings, *, by_heartbeat: bool,
             plan_budget: bool | None) -> float:
    """Seconds the outbox may wait for its delivery. A plan with a budget sums its jobs' usage, so
    steps wait less; ``plan_budget`` ``None``: a workflow before 0.7, which does not say."""
    if not by_heartbeat:
        return settings.coalesce
    if plan_budget is not False and any(isinstance(item, StepItem) for item in outbox):
        return min(settings.usage_every, settings.deliver_every)
    return settings.deliver_every
