"""jobgov's activities: every call to the agent, notifications, and plan reports.

:class:`AgentActivities` holds the worker's dependencies (one shared HTTP
client, settings) and exposes each activity as a bound method; register
:meth:`AgentActivities.all_activities` on the worker. The event-stream
consumer behind ``stream_events`` is :class:`EventStreamConsumer`.
"""

from __future__ import annotations

from jobgov.activities.agent import AgentActivities, AgentSettings
from jobgov.activities.errors import (
    ERROR_AGENT_HTTP,
    ERROR_AGENT_REJECTED,
    ERROR_AGENT_UNREACHABLE,
    agent_errors,
    to_application_error,
)
from jobgov.activities.stream import EventStreamConsumer, StreamProgress, StreamSettings, WorkflowGone

__all__ = [
    "ERROR_AGENT_HTTP",
    "ERROR_AGENT_REJECTED",
    "ERROR_AGENT_UNREACHABLE",
    "AgentActivities",
    "AgentSettings",
    "EventStreamConsumer",
    "StreamProgress",
    "StreamSettings",
    "WorkflowGone",
    "agent_errors",
    "to_application_error",
]
