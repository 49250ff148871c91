"""What the event-stream consumer is tuned with and what it reports: its settings, its progress
(the activity's heartbeat details), and the end it signals when its workflow is gone."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["StreamInterrupted", "StreamProgress", "StreamSettings", "WorkflowGone"]


@dataclass(frozen=True)
class StreamSettings:
    """Timing of the consumer; the defaults suit a real ``opencode serve``."""

    heartbeat_every: float = 10.0
    """Seconds between heartbeats, idle or not (keep under half the heartbeat timeout). The SDK
    sends at most one every 0.8 x the timeout (24 s) anyway, but encodes each call's details: at
    1,000 jobs, every 2 s cost 4 % of the worker's CPU."""
    backoff_min: float = 0.2
    """First reconnect delay; doubled after each failed connection."""
    backoff_max: float = 5.0
    """Largest reconnect delay; a connection that lived this long resets the delay."""
    idle_timeout: float | None = 35.0
    """Reconnect when no frame arrived for this long (opencode sends a heartbeat every 10 s)."""
    reply_attempts: int = 3
    """Tries to deliver an automatic reply before resynchronising through a reconnect."""
    silent_after: float = 15.0
    """Report the agent unreachable when no frame came for this long (opencode sends a heartbeat
    every 10 s), or at once when a connection attempt fails; reachable again on the next connect."""
    coalesce: float = 0.5
    """Seconds usage updates may wait to travel with the next ask's record (one signal, not two
    a step); a status change or an ask for a person goes at once."""
    usage_every: float = 2.0
    """Seconds a step's usage may wait to be delivered when the job's plan has a budget (its
    workflow sums every job's usage and enforces it on each step). A job's own budget needs no
    delivery to hold its next ask (the stream holds it), and reaches the workflow at once when a
    step crosses one of its thresholds."""
    deliver_every: float = 2.0
    """Seconds automatic decisions recorded in heartbeats (and usage) may wait to be delivered
    together (from 0.6: one signal and one workflow task for every decision of that time). A change
    of status, an ask for a person and a budget threshold crossed go at once. At 10 s, 100 jobs
    asking once a second took p50 71 to 120 ms and 8.7 to 10 ms of worker CPU an ask (2 s: 99 to
    186 ms, 9.4 to 11.3 ms), but of 1,000 jobs started one after another, 117 and 234 failed at
    their start in two runs of 0.7 (2 s: none), with twice the workflow tasks over 5 s. In 0.8 all
    1,000 completed at 10 s too, with no gain: their first asks came later (p50 92 s after the
    start; 66 to 80 s at 2 s) and the worker's CPU per ask was the same (``python -m bench.load``).
    Stretched when the worker runs many streams (``deliveries_per_second``)."""
    deliveries_per_second: float | None = 25.0
    """Deliveries of what may wait that all the streams of one worker process make together, at
    most, each second: a stream waits ``max(deliver_every, streams / deliveries_per_second)``
    between them, where ``streams`` is how many the process runs now (50 streams: 2 s; 100: 4 s;
    1,000: 40 s). Each delivery is a signal and a workflow task, about 6 ms of the worker's CPU on
    this 2-core machine: at 300 jobs asking every 5 s, deliveries every 2 s took 18 ms of worker
    CPU an ask, every 6 s (50 a second) 12.2 ms; at 100 jobs asking every second, 7.8 to 8.0 ms at 2 s
    and 6.0 ms at 4 s (``python -m bench.load``). What goes at once still goes at once, and a
    step's usage for a plan with a budget still goes within ``usage_every``. ``None``: never
    stretched."""

    def __post_init__(self) -> None:
        if self.deliveries_per_second is not None and not self.deliveries_per_second > 0:
            raise ValueError(f"StreamSettings.deliveries_per_second: {self.deliveries_per_second!r}; expected a "
                             "number above 0, or None (never stretch the wait between deliveries)")


@dataclass
class StreamProgress:
    """What the consumer has done so far: its heartbeat details."""

    generation: int
    events: int = 0
    reconnects: int = 0
    reconciles: int = 0
    batches: int = 0
    last_event_id: str | None = None
    connected: bool = False
    status: str | None = None
    """The session's last known status (``busy``, ``retry``, ``idle``); ``None``: not known yet."""


class WorkflowGone(Exception):
    """``send`` found the workflow closed or missing: nobody is listening, stop consuming."""


class StreamInterrupted(Exception):
    """``record`` learned that this attempt must end with an error (the activity was paused or
    reset from Temporal): the decision it was recording is not applied, and the attempt fails;
    Temporal retries it (once unpaused), and the next attempt decides the ask again."""
