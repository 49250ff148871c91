"""jobgov's activities, split by what they do.

- :mod:`.agent_calls`: one request to the agent (create session, prompt, reply, abort).
- :mod:`.stream` and :mod:`.consumer`: the long-running event-stream activity and the
  Temporal-independent consumer behind it.
- :mod:`.notify`: notifications (log, webhook).
- :mod:`.plan_report`: a job's usage delivered to its plan.
- :mod:`.errors`: agent errors as Temporal errors.
- :mod:`.bundle`: :class:`AgentActivities`, all of them over one shared HTTP client.
"""

from __future__ import annotations

from jobgov.temporal.activities.bundle import AgentActivities, AgentSettings
from jobgov.temporal.activities.consumer import (
    EventStreamConsumer,
    StreamProgress,
    StreamSettings,
    WorkflowGone,
)
from jobgov.temporal.activities.errors import (
    ERROR_AGENT_HTTP,
    ERROR_AGENT_REJECTED,
    ERROR_AGENT_UNREACHABLE,
    agent_errors,
    to_application_error,
)

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
