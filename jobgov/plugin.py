"""JobGovPlugin: adds jobgov to a team's existing Temporal client and worker.

The plugin only composes (STYLE point 1): it appends jobgov's workflows and
activities to whatever the worker already has, installs the pydantic data
converter on the client side (a worker-only plugin would not change the
converter), and lets jobgov's pure data modules pass through the workflow
sandbox.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import httpx
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.plugin import SimplePlugin
from temporalio.worker import WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from jobgov.activities.agent import AgentActivities
from jobgov.workflows import JobWorkflow, PlanWorkflow

#: Modules the workflow sandbox imports once instead of per run. None of them keeps
#: state that workflow code reads; re-importing them per run would only cost time,
#: and some (C extensions, httpx) fail the sandbox's import validation.
PASSTHROUGH_MODULES = (
    "pydantic",  # data models of every input; the pydantic converter needs the real classes
    "pydantic_core",
    "annotated_types",
    "ruamel",  # the config loader, imported with jobgov.config
    "tree_sitter",  # shell parser (C extension), imported with jobgov.policy
    "tree_sitter_bash",
    "genai_prices",  # price tables, imported with jobgov.usage.pricing
    "httpx",  # imported by activity modules that share packages with workflows
    "httpx_sse",
    "jobgov.models",  # jobgov's pure data and functions
    "jobgov.config",
    "jobgov.budget",
    "jobgov.messages",
    "jobgov.names",
    "jobgov.policy",
    "jobgov.usage",
)


def _converter(existing: DataConverter | None) -> DataConverter:
    if existing is not None and existing is not DataConverter.default and existing is not pydantic_data_converter:
        raise ValueError(
            "JobGovPlugin needs the pydantic data converter (temporalio.contrib.pydantic), but the client "
            "already has a custom one; give jobgov its own client, or build your converter on "
            "pydantic_data_converter's payload converter"
        )
    return pydantic_data_converter


def _runner(existing: WorkflowRunner | None) -> WorkflowRunner:
    if existing is None:
        existing = SandboxedWorkflowRunner()
    if isinstance(existing, SandboxedWorkflowRunner):
        # Keep the user's restrictions and runner class; add ours.
        return dataclasses.replace(
            existing, restrictions=existing.restrictions.with_passthrough_modules(*PASSTHROUGH_MODULES)
        )
    return existing  # an unsandboxed runner needs no pass-through


class JobGovPlugin(SimplePlugin):
    """Register jobgov on a Temporal client and worker.

    Example::

        client = await Client.connect("localhost:7233", plugins=[JobGovPlugin()])
        worker = Worker(client, task_queue="jobgov")  # workflows and activities come from the plugin

    Args:
        http: The HTTP client the activities use to reach agents (default: one of their own,
            with explicit timeouts and no retries: Temporal owns retries).
    """

    def __init__(self, *, http: httpx.AsyncClient | None = None) -> None:
        self.agent_activities = AgentActivities(http=http)
        activities: Sequence[Callable[..., Any]] = self.agent_activities.all_activities()
        super().__init__(
            "jobgov.JobGovPlugin",
            data_converter=_converter,
            activities=activities,
            workflows=[JobWorkflow, PlanWorkflow],
            workflow_runner=_runner,
        )
