"""JobGovPlugin: adds jobgov to a team's existing Temporal client and worker.

The plugin only composes (STYLE point 1): it appends jobgov's workflows and
activities to whatever the worker already has, installs the pydantic data
converter on the client side (a worker-only plugin would not change the
converter), lets the pure modules that workflows import pass through the
workflow sandbox, declares which exceptions fail a workflow, ties the
activities' HTTP client to the worker's life, and runs the jobs' event streams
on a task queue of their own, beside the worker (see :func:`jobgov.names.stream_task_queue`).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

import httpx
import pydantic
import temporalio.worker
from temporalio.api.failure.v1 import Failure
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverter, PayloadConverter
from temporalio.exceptions import ApplicationError
from temporalio.plugin import SimplePlugin
from temporalio.worker import Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from jobgov import names
from jobgov.opencode.credentials import AgentCredentials
from jobgov.temporal.activities.bundle import AgentActivities, AgentSettings
from jobgov.temporal.workflows import JobWorkflow, PlanWorkflow
from jobgov.temporal.workflows.support import INVALID_DECISION

#: Modules the workflow sandbox imports once instead of per workflow run: exactly what
#: jobgov's workflows import besides the standard library and temporalio. All of them are
#: pure (no I/O, no state that workflow code reads), so sharing them is safe, and
#: re-importing them for every run would only cost time.
PASSTHROUGH_MODULES = (
    "pydantic",  # data models of every input; the pydantic converter needs the real classes
    "pydantic_core",
    "annotated_types",
    "jobgov.names",  # durable names
    "jobgov.domain",  # asks, the decide function, budgets, usage, config schema, stream items
    "jobgov.temporal.payloads",  # inputs and outputs of every call
    "jobgov.temporal.state",  # what a job's workflow carries
    "jobgov.temporal.metrics",  # metric names, and instruments over the meter the workflow passes in
    # The workflows package's helpers. Only job.py and plan.py, which define the workflow classes,
    # are imported anew for each run: a run's sandbox costs milliseconds of CPU for every module
    # it re-imports, paid again by every new job, plan and continue-as-new, and keeps the
    # module's bytecode for as long as the run is cached.
    "jobgov.temporal.workflows.governor",  # JobWorkflow's body (job.py only declares it)
    "jobgov.temporal.workflows.book",  # the job's pure rule book
    "jobgov.temporal.workflows.book_base",  # the state it rules, and what people read of it
    "jobgov.temporal.workflows.effects",  # the effects the book hands the workflow
    "jobgov.temporal.workflows.support",  # validator errors and the continue-as-new check
    "jobgov.temporal.workflows.calls",  # typed activity calls (they call temporalio.workflow)
    "jobgov.temporal.workflows.publish",  # what people and the plan see of a job, and when (likewise)
    "jobgov.temporal.workflows.streams",  # a job's stream activity, generation by generation (likewise)
)

#: Jobs whose event streams one worker holds at once, by default (``JobGovPlugin(max_jobs=...)``).
DEFAULT_MAX_JOBS = 1000

#: Exceptions that fail a workflow (or reject an update) instead of failing the workflow
#: task, which Temporal would retry until a fixed worker is deployed.
WORKFLOW_FAILURE_EXCEPTION_TYPES: tuple[type[BaseException], ...] = (
    # An input this worker cannot read (a field it does not know, a wrong type) cannot be
    # fixed by retrying: the job fails, or the update is rejected, naming the field.
    pydantic.ValidationError,
)


class DecisionFailureConverter(DefaultFailureConverter):
    """What people read when jobgov refuses something, as one sentence without the worker's stack
    trace: a rejected decision (an update's validator said no), and an input that does not read
    (a missing or mistyped field, named, with the keys the input did have)."""

    def to_failure(self, exception: BaseException, payload_converter: PayloadConverter, failure: Failure) -> None:
        if isinstance(exception, pydantic.ValidationError):
            exception = ApplicationError(input_problem(exception), type=INVALID_INPUT, non_retryable=True)
        super().to_failure(exception, payload_converter, failure)
        if isinstance(exception, ApplicationError) and exception.type in (INVALID_DECISION, INVALID_INPUT):
            failure.stack_trace = ""


#: The failure type of an input that does not read.
INVALID_INPUT = "InvalidInput"


def input_problem(exc: pydantic.ValidationError) -> str:
    """``ApproveInput: request_id: Field required (the input has requestid)``."""
    parts = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(p) for p in error["loc"]) or exc.title
        message = error["msg"]
        given = error.get("input")
        if error["type"] == "missing" and isinstance(given, dict):
            message += f" (the input has {', '.join(sorted(map(str, given))) or 'no keys'})"
        parts.append(f"{where}: {message}")
    return f"{exc.title}: " + "; ".join(parts)


#: The pydantic data converter with :class:`DecisionFailureConverter`.
DATA_CONVERTER = dataclasses.replace(pydantic_data_converter, failure_converter_class=DecisionFailureConverter)


def _converter(existing: DataConverter | None) -> DataConverter:
    if existing is DATA_CONVERTER:
        return existing
    if existing is not None and existing is not DataConverter.default and existing is not pydantic_data_converter:
        raise ValueError(
            "JobGovPlugin needs the pydantic data converter (temporalio.contrib.pydantic), but the client "
            "already has a custom one; give jobgov its own client, or build your converter on "
            "pydantic_data_converter's payload converter"
        )
    return DATA_CONVERTER


def _runner(existing: WorkflowRunner | None) -> WorkflowRunner:
    if existing is None:
        existing = SandboxedWorkflowRunner()
    if isinstance(existing, SandboxedWorkflowRunner):
        # Keep the user's restrictions and runner class; add ours.
        return dataclasses.replace(
            existing, restrictions=existing.restrictions.with_passthrough_modules(*PASSTHROUGH_MODULES)
        )
    return existing  # an unsandboxed runner needs no pass-through


def _failure_types(existing: Sequence[type[BaseException]] | None) -> Sequence[type[BaseException]]:
    return [*(existing or ()), *(t for t in WORKFLOW_FAILURE_EXCEPTION_TYPES if t not in (existing or ()))]


class JobGovPlugin(SimplePlugin):
    """Register jobgov on a Temporal client and worker.

    Example::

        client = await Client.connect("localhost:7233", plugins=[JobGovPlugin()])
        worker = Worker(client, task_queue="jobgov")  # workflows and activities come from the plugin

    A worker with the plugin also runs, in the same process and with the same client, a worker
    for the jobs' event streams on ``<task_queue>-streams`` (:func:`jobgov.names.stream_task_queue`)
    with ``max_jobs`` activity slots. A stream holds its slot for the job's whole life, so the
    worker governs at most ``max_jobs`` jobs at once; a job beyond that shows ``queued``, is not
    prompted, and starts as soon as a slot frees on any worker. Replies, prompts and aborts run on
    ``task_queue`` with its own slots: no number of jobs makes them wait for a stream.

    Args:
        http: An HTTP client for the activities to reach agents and webhooks, owned by the
            caller. By default the plugin creates its own (explicit timeouts, no retries:
            Temporal owns retries) when a worker starts and closes it when the worker stops.
        settings: Worker-side timing and retry settings of the activities.
        max_jobs: Jobs whose event streams each worker with this plugin holds at once.
        agent_host: A worker on an agent's host (``jobgov worker --agent-queue Q``): it runs only
            the agent-side activities (the stream, session calls, prompts, replies, aborts) of
            jobs started with that queue, no workflows; the control workers run the rest.
        agent_credentials: Passwords of password-protected agents. By default from the worker's
            environment: ``OPENCODE_SERVER_PASSWORD`` (and ``OPENCODE_SERVER_USERNAME``) for
            every agent, and a ``JOBGOV_AGENT_CREDENTIALS`` TOML file by agent URL (see
            :mod:`jobgov.opencode.credentials`). Never part of any workflow input.

    Raises:
        CredentialsError: The ``JOBGOV_AGENT_CREDENTIALS`` file cannot be used (named, with why).
    """

    def __init__(self, *, http: httpx.AsyncClient | None = None, settings: AgentSettings | None = None,
                 max_jobs: int = DEFAULT_MAX_JOBS, agent_credentials: AgentCredentials | None = None,
                 agent_host: bool = False) -> None:
        if max_jobs < 1:
            raise ValueError(f"JobGovPlugin(max_jobs={max_jobs}): a worker must be able to hold at least one job")
        self.max_jobs = max_jobs
        self.agent_activities = AgentActivities(http=http, settings=settings, credentials=agent_credentials)
        self.agent_host = agent_host
        acts = self.agent_activities
        activities: Sequence[Callable[..., Any]] = acts.agent_side_activities() if agent_host else acts.all_activities()
        super().__init__(
            "jobgov.JobGovPlugin",
            data_converter=_converter,
            activities=activities,
            workflows=[] if agent_host else [JobWorkflow, PlanWorkflow],
            workflow_runner=_runner,
            workflow_failure_exception_types=_failure_types,
        )

    async def run_worker(self, worker: Worker, next: Callable[[Worker], Awaitable[None]]) -> None:
        """Run ``worker`` and, beside it, the worker of its jobs' streams; stop both together."""
        async with self.agent_activities.running():
            streams = self.streams_worker(worker)
            running = asyncio.create_task(streams.run(), name=f"jobgov-streams-{worker.task_queue}")
            # A streams worker that fails (it cannot poll) takes the worker down with it: jobs
            # would otherwise wait, queued, for streams this process would never run.
            def stop_worker(done: asyncio.Task[None]) -> None:
                if not done.cancelled() and done.exception() is not None:
                    stopping.add(asyncio.ensure_future(worker.shutdown()))

            stopping: set[asyncio.Future[None]] = set()
            running.add_done_callback(stop_worker)
            try:
                await next(worker)
            finally:
                if not running.done():
                    await streams.shutdown()
                await asyncio.wait({running})
            if not running.cancelled() and (error := running.exception()) is not None:
                raise error

    def streams_worker(self, worker: Worker) -> Worker:
        """The worker of ``worker``'s jobs' event streams: only the stream activity, ``max_jobs``
        slots, the worker's client (its converter), interceptors and shutdown grace."""
        config = worker.config(active_config=True)
        client = config["client"]
        client_config = client.config(active_config=True)  # with the converter the plugins set
        # Without the client's worker plugins: they would add their workflows and activities
        # (and this plugin a streams worker of its own) to a worker that runs only streams.
        client_config["plugins"] = [p for p in client_config["plugins"]
                                    if not isinstance(p, temporalio.worker.Plugin)]
        return Worker(
            Client(**client_config),
            task_queue=names.stream_task_queue(worker.task_queue),
            activities=[self.agent_activities.stream_events],
            interceptors=config.get("interceptors", []),
            max_concurrent_activities=self.max_jobs,
            graceful_shutdown_timeout=config.get("graceful_shutdown_timeout") or timedelta(),
        )
