"""Every durable name jobgov puts into Temporal: compatibility data.

Workflow types, workflow ids, activity types, signals, updates, queries and
search attributes are recorded in histories and typed into UIs and scripts.
Changing one breaks running workflows and users' tooling, so they live here,
spelled out, and ``tests/unit/test_names.py`` pins the complete set.
"""

from __future__ import annotations

from typing import Any, Final

from temporalio.common import SearchAttributeKey

#: The task queue ``jobgov worker`` polls unless told otherwise.
DEFAULT_TASK_QUEUE: Final = "jobgov"


def stream_task_queue(task_queue: str) -> str:
    """The task queue of the event streams of jobs whose workflows run on ``task_queue``.

    A stream holds its activity slot for the job's whole life, so streams get a queue (and slots)
    of their own: however many jobs wait for one, replies, prompts and aborts on ``task_queue``
    never do. Every worker with JobGovPlugin polls both (see ``JobGovPlugin(max_jobs=...)``).
    """
    return f"{task_queue}{STREAM_TASK_QUEUE_SUFFIX}"


STREAM_TASK_QUEUE_SUFFIX: Final = "-streams"

# Workflow types.
JOB_WORKFLOW: Final = "jobgov.JobWorkflow"
PLAN_WORKFLOW: Final = "jobgov.PlanWorkflow"

# Activity types.
ACTIVITY_STREAM_EVENTS: Final = "jobgov.stream_events"
ACTIVITY_CREATE_SESSION: Final = "jobgov.create_session"
ACTIVITY_PROMPT: Final = "jobgov.prompt"
ACTIVITY_REPLY: Final = "jobgov.reply"
ACTIVITY_ABORT: Final = "jobgov.abort"
ACTIVITY_NOTIFY: Final = "jobgov.notify"
ACTIVITY_REPORT_TO_PLAN: Final = "jobgov.report_to_plan"
ACTIVITY_COLLECT_STREAM: Final = "jobgov.collect_stream"
"""From 0.6: reads the automatic decisions a job's stream has recorded but not yet delivered."""

HEARTBEAT_RECORDS: Final = "auto"
"""From 0.6: the key, in the stream activity's heartbeat details, of the automatic decisions it
recorded and has not yet delivered (read by a retried attempt and by ``collect_stream``)."""

# JobWorkflow messages.
SIGNAL_JOB_EVENTS: Final = "jobgov.job.events"
SIGNAL_JOB_PLAN_HOLD: Final = "jobgov.job.plan_hold"
UPDATE_JOB_APPROVE: Final = "approve"
UPDATE_JOB_DENY: Final = "deny"
UPDATE_JOB_RESUME: Final = "resume"
UPDATE_JOB_KILL: Final = "kill"
UPDATE_JOB_END: Final = "end"
"""The job's owner (``JobInput.owner``, e.g. ``jobgov mc watch``) ends it; from 0.5."""
QUERY_JOB_STATUS: Final = "status"
# The same human decisions as signals (same names and inputs), for workflows and approval systems:
# a workflow cannot send an update, and a signal is checked when applied (see JobWorkflow).
SIGNAL_JOB_APPROVE: Final = "approve"
SIGNAL_JOB_DENY: Final = "deny"
SIGNAL_JOB_RESUME: Final = "resume"
SIGNAL_JOB_KILL: Final = "kill"

# PlanWorkflow messages.
SIGNAL_PLAN_JOB_REPORT: Final = "jobgov.plan.job_report"
UPDATE_PLAN_RESUME: Final = "resume"
SIGNAL_PLAN_RESUME: Final = "resume"
QUERY_PLAN_STATUS: Final = "status"


def job_workflow_id(plan: str, job: str) -> str:
    """The workflow id of job ``job`` of plan ``plan``: stable, so the CLI finds it by name."""
    # "/" cannot occur in plan or job names, so ids of different (plan, job) pairs never collide.
    return f"jobgov/{plan}/{job}"


def plan_workflow_id(plan: str) -> str:
    """The workflow id of plan ``plan``: jobs find their plan by it (signal-with-start)."""
    return f"jobgov/{plan}"


# workflow.patched ids: each gates a change of workflow behaviour, so that histories recorded before
# it replay without it. Never reused, never removed while such histories may still run.
PATCH_0_2 = "jobgov-0.2-drain-checks-continue-as-new"
"""0.2: the main loop's drain stops when continue-as-new is due; search attributes and plan
reports refresh on a state change or at most every few seconds."""
PATCH_0_3 = "jobgov-0.3-true-states"
"""0.3, the release of true states: a cancel request governs like a kill (abort, reject pending
asks, final state and search attributes); a job whose workflow fails publishes ``failed`` first;
one budget warning per dimension names every threshold one step crossed at once; the plan hears
of every change of a job's state; a run that ended unfinished continues or fails the job; the
agent's reachability is kept and notified."""
PATCH_0_3_START = "jobgov-0.3-bounded-start"
"""0.3: creating the session is retried by the workflow, with a warning while the agent does not
answer, and fails the job after ``agent.start_timeout``."""
PATCH_0_4 = "jobgov-0.4-admission"
"""0.4: a job's stream runs on its own task queue (:func:`stream_task_queue`); a job whose stream no
worker has taken yet shows ``queued`` with the reason, and is prompted only once its stream is
connected (runs before 0.4 prompted after 30 s anyway); asks pending when a job is killed are
recorded ``killed`` (before: ``cancelled``); a job whose agent is unreachable shows state
``agent-unreachable``."""
PATCH_0_6 = "jobgov-0.6-decisions-in-heartbeats"
"""0.6: the stream records an automatic decision in its activity's heartbeat (a write to the
server, no history event, no workflow task) before it replies, and delivers it with the next batch,
every ``StreamSettings.deliver_every`` seconds; before its run closes (continue-as-new, the job's
end) the workflow collects what the stream recorded and has not delivered (``collect_stream``)."""
PATCH_0_6_COMPLETED = "jobgov-0.6-completed-needs-no-collect"
"""0.6: a job that completed does not collect its stream's records (the idle that completed it came
with them); runs recorded before it collected at every end."""
PATCH_0_7 = "jobgov-0.7-usage-waits-without-a-plan-budget"
"""0.7: the stream is told whether the job's plan has a budget (``StreamInput.plan_budget``); when
it has none, a step's usage waits for the next delivery with the decisions instead of going within
``StreamSettings.usage_every``: fewer signals and workflow tasks for the same steps."""
PATCH_0_8 = "jobgov-0.8-refreshes-ride-on-deliveries"
"""0.8: a job whose plan has no budget reports its spending to the plan at most every
``PLAN_REFRESH_EVERY`` (30 s; a change of state still at once); a refresh held back is done by the
next workflow task after it is due, and its timer, later by one refresh interval, only fires for a
job that went quiet (each firing was a workflow task, and each report an activity and two)."""
PATCH_0_9 = "jobgov-0.9-stream-cancelled-before-collect"
"""0.9: before its run closes, the workflow requests the stream's cancel first and collects its
records after: a record the stream makes once the cancel is requested is answered "cancelled" and
its decision is not applied, so every decision applied is in the collect. Such a record can be in
the collect too (the server keeps the details it was sent), so collected records are marked
(``DecisionRecord.collected``), and an ask the stream then delivers unapplied is decided anew.
Collected first (0.6 to 0.8), a decision the stream recorded and replied after the collect reached
no history when the job's newer run had already ended (CI: 29 of 30 decisions in
``test_continue_as_new_carries_state``)."""

# Search attributes (registered by `jobgov dev`; see the README for other servers).
SA_STATE = SearchAttributeKey.for_keyword("JobGovState")
SA_PLAN = SearchAttributeKey.for_keyword("JobGovPlan")
SA_JOB = SearchAttributeKey.for_keyword("JobGovJob")
SA_COST_USD = SearchAttributeKey.for_float("JobGovCostUSD")
SA_TOKENS = SearchAttributeKey.for_int("JobGovTokens")
SA_PENDING_ASKS = SearchAttributeKey.for_int("JobGovPendingAsks")

SEARCH_ATTRIBUTES: Final = (SA_STATE, SA_PLAN, SA_JOB, SA_COST_USD, SA_TOKENS, SA_PENDING_ASKS)


def search_attribute_type(key: SearchAttributeKey[Any]) -> str:
    """The type name the ``temporal`` CLI uses for ``key`` (``Keyword``, ``Int``, ``Double``, ...)."""
    return "".join(part.title() for part in key.indexed_value_type.name.split("_"))
