"""Durable names are compatibility data: this test pins the complete set.

Changing any of these breaks running workflows, recorded histories and users'
scripts. If a change is intended, it needs a migration note in the README.
"""

from __future__ import annotations

from temporalio import workflow

from jobgov import names
from jobgov.temporal.workflows import JobWorkflow, PlanWorkflow


def test_constants() -> None:
    assert {k: v for k, v in vars(names).items() if k.isupper() and isinstance(v, str)} == {
        "DEFAULT_TASK_QUEUE": "jobgov",
        "STREAM_TASK_QUEUE_SUFFIX": "-streams",
        "JOB_WORKFLOW": "jobgov.JobWorkflow",
        "PLAN_WORKFLOW": "jobgov.PlanWorkflow",
        "ACTIVITY_STREAM_EVENTS": "jobgov.stream_events",
        "ACTIVITY_CREATE_SESSION": "jobgov.create_session",
        "ACTIVITY_PROMPT": "jobgov.prompt",
        "ACTIVITY_REPLY": "jobgov.reply",
        "ACTIVITY_ABORT": "jobgov.abort",
        "ACTIVITY_NOTIFY": "jobgov.notify",
        "ACTIVITY_REPORT_TO_PLAN": "jobgov.report_to_plan",
        "ACTIVITY_COLLECT_STREAM": "jobgov.collect_stream",
        "HEARTBEAT_RECORDS": "auto",
        "SIGNAL_JOB_EVENTS": "jobgov.job.events",
        "SIGNAL_JOB_PLAN_HOLD": "jobgov.job.plan_hold",
        "UPDATE_JOB_APPROVE": "approve",
        "UPDATE_JOB_DENY": "deny",
        "UPDATE_JOB_RESUME": "resume",
        "UPDATE_JOB_KILL": "kill",
        "UPDATE_JOB_END": "end",
        "QUERY_JOB_STATUS": "status",
        "SIGNAL_JOB_APPROVE": "approve",
        "SIGNAL_JOB_DENY": "deny",
        "SIGNAL_JOB_RESUME": "resume",
        "SIGNAL_JOB_KILL": "kill",
        "SIGNAL_PLAN_JOB_REPORT": "jobgov.plan.job_report",
        "UPDATE_PLAN_RESUME": "resume",
        "SIGNAL_PLAN_RESUME": "resume",
        "QUERY_PLAN_STATUS": "status",
        "PATCH_0_2": "jobgov-0.2-drain-checks-continue-as-new",
        "PATCH_0_3": "jobgov-0.3-true-states",
        "PATCH_0_3_START": "jobgov-0.3-bounded-start",
        "PATCH_0_4": "jobgov-0.4-admission",
        "PATCH_0_6": "jobgov-0.6-decisions-in-heartbeats",
        "PATCH_0_6_COMPLETED": "jobgov-0.6-completed-needs-no-collect",
        "PATCH_0_7": "jobgov-0.7-usage-waits-without-a-plan-budget",
        "PATCH_0_8": "jobgov-0.8-refreshes-ride-on-deliveries",
        "PATCH_0_9": "jobgov-0.9-stream-cancelled-before-collect",
    }


def test_stream_task_queue() -> None:
    assert names.stream_task_queue("jobgov") == "jobgov-streams"
    assert names.stream_task_queue("team-a") == "team-a-streams"


def test_workflow_ids() -> None:
    assert names.job_workflow_id("refactor-auth", "fix-typo") == "jobgov/refactor-auth/fix-typo"
    assert names.plan_workflow_id("refactor-auth") == "jobgov/refactor-auth"
    assert names.job_workflow_id("a-b", "c") != names.job_workflow_id("a", "b-c")


def test_search_attributes() -> None:
    assert [(k.name, k.indexed_value_type.name) for k in names.SEARCH_ATTRIBUTES] == [
        ("JobGovState", "KEYWORD"),
        ("JobGovPlan", "KEYWORD"),
        ("JobGovJob", "KEYWORD"),
        ("JobGovCostUSD", "DOUBLE"),
        ("JobGovTokens", "INT"),
        ("JobGovPendingAsks", "INT"),
    ]


def _handlers(cls: type) -> dict[str, set[str]]:
    defn = workflow._Definition.must_from_class(cls)
    return {
        "workflow": {defn.name or ""},
        "signals": set(defn.signals),
        "updates": set(defn.updates),
        "queries": set(defn.queries),
    }


def test_workflow_handlers_are_registered_under_their_names() -> None:
    assert _handlers(JobWorkflow) == {
        "workflow": {"jobgov.JobWorkflow"},
        "signals": {"jobgov.job.events", "jobgov.job.plan_hold", "approve", "deny", "resume", "kill"},
        "updates": {"approve", "deny", "resume", "kill", "end"},
        "queries": {"status"},
    }
    assert _handlers(PlanWorkflow) == {
        "workflow": {"jobgov.PlanWorkflow"},
        "signals": {"jobgov.plan.job_report", "resume"},
        "updates": {"resume"},
        "queries": {"status"},
    }


def test_activities_are_registered_under_their_names() -> None:
    from temporalio import activity

    from jobgov.temporal.activities.bundle import AgentActivities

    registered = {
        activity._Definition.must_from_callable(fn).name
        for fn in AgentActivities().all_activities()
    }
    assert registered == {
        "jobgov.stream_events",
        "jobgov.create_session",
        "jobgov.prompt",
        "jobgov.reply",
        "jobgov.abort",
        "jobgov.notify",
        "jobgov.report_to_plan",
        "jobgov.collect_stream",
    }


def test_metric_names() -> None:
    from jobgov.temporal import metrics

    assert {k: v for k, v in vars(metrics).items() if k.isupper() and isinstance(v, str)} == {
        "ASKS": "jobgov_asks",
        "AUTO_DECISION_LATENCY": "jobgov_auto_decision_latency",
        "TOKENS": "jobgov_tokens",
        "COST_USD": "jobgov_cost_usd",
        "NOTIFICATIONS": "jobgov_notifications",
        "JOB_STATES": "jobgov_job_states",
        "AGENT_RECONNECTS": "jobgov_agent_reconnects",
        "AGENT_UNREACHABLE": "jobgov_agent_unreachable",
    }
