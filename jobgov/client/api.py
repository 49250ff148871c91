"""JobGovClient: the typed async API for starting, inspecting and deciding jobgov jobs.

This is the client side of jobgov (STYLE point 13): the ``jobgov`` CLI is a
thin layer over it, and users can call it from Python. It only talks to
Temporal through :class:`temporalio.client.Client`, with the pydantic data
converter, and never imports worker-side modules (activities, workflows, the
plugin), so it works on a machine that only has the client installed.

Errors are split the way the CLI reports them: :class:`InputError` (and
:class:`~jobgov.domain.config.ConfigError`) for bad input, :class:`JobGovError` and
its subclasses for runtime failures (Temporal unreachable, unknown job, a
decision the workflow rejected, no worker answering).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.contrib.pydantic import (
    PydanticPayloadConverter,
    pydantic_data_converter,
)
from temporalio.exceptions import (
    ApplicationError,
    WorkflowAlreadyStartedError,
)
from temporalio.service import RPCError, RPCStatusCode

from jobgov import names

# Re-exported: the overview models are part of the client API (``from jobgov.client import JobOverview``).
from jobgov.client.connection import DEFAULT_ADDRESS as DEFAULT_ADDRESS
from jobgov.client.connection import connect_options
from jobgov.client.errors import (
    AlreadyRunningError,
    InputError,
    JobGovError,
    NoAnswerError,
    NotFoundError,
    RejectedError,
    UnreachableError,
    connect_error_reason,
)
from jobgov.client.executions import CLOSED_STATES, close_reason, closed_as, latest_runs, sa
from jobgov.client.inputs import (
    build_job_input,
    check_agent_answers,
    check_name,
    default_actor,
    job_summary,
    model,
)
from jobgov.client.overview import JobOverview as JobOverview
from jobgov.client.overview import JobsOverview as JobsOverview
from jobgov.client.overview import PlanTotals as PlanTotals
from jobgov.configfile import load_plan_config
from jobgov.domain.config import PlanConfig
from jobgov.temporal.payloads import (
    ApproveInput,
    DenyInput,
    EndInput,
    JobInput,
    JobResult,
    JobStatus,
    KillInput,
    PlanResumeInput,
    PlanStatus,
    ResumeInput,
)
from jobgov.temporal.state import DecisionRecord, JobState

#: How many jobs :meth:`JobGovClient.list_jobs` queries at once.
LIST_CONCURRENCY = 16
#: Pauses between visibility listings that find no job yet (visibility is eventually consistent).
VISIBILITY_RETRIES = (0.3, 0.7, 0.0)

_T = TypeVar("_T")


class JobGovClient:
    """Start, inspect and decide jobgov jobs and plans.

    Example::

        jg = await JobGovClient.connect("localhost:7233")
        await jg.start_job("release", "docs", "http://127.0.0.1:4096", "/src/app", prompt="Fix the docs")
        status = await jg.job_status("docs")
        await jg.approve("docs", status.pending[0].id)

    Args:
        client: A connected Temporal client using the pydantic data converter (connect it with
            ``data_converter=pydantic_data_converter``, or with ``plugins=[JobGovPlugin()]``).
        query_timeout: How long to wait for a workflow to answer a query (a worker answers it).
        update_timeout: How long to wait for an update (a decision) to complete.
        list_limit: The most workflows a visibility listing reads.
    """

    def __init__(self, client: Client, *, query_timeout: float = 10.0, update_timeout: float = 30.0,
                 list_limit: int = 1000) -> None:
        if not issubclass(client.data_converter.payload_converter_class, PydanticPayloadConverter):
            raise ValueError("JobGovClient needs a client with the pydantic data converter: connect with "
                             "data_converter=temporalio.contrib.pydantic.pydantic_data_converter")
        self._client = client
        self._query_timeout = query_timeout
        self._update_timeout = update_timeout
        self._list_limit = list_limit

    @classmethod
    async def connect(cls, address: str | None = None, namespace: str | None = None, *,
                      connect_timeout: float = 5.0, query_timeout: float = 10.0,
                      update_timeout: float = 30.0) -> JobGovClient:
        """Connect to Temporal as Temporal's client config says (:mod:`jobgov.client.connection`:
        the profile file, ``TEMPORAL_*`` variables, API key and TLS), ``address`` and ``namespace``
        over it (default ``localhost:7233``, ``default``).

        Raises:
            InputError: The client config file cannot be read.
            UnreachableError: Nothing answers there within ``connect_timeout`` seconds.
        """
        options = connect_options(address, namespace)
        target = options["target_host"]
        try:
            async with asyncio.timeout(connect_timeout + 1):
                client = await Client.connect(
                    **options, data_converter=pydantic_data_converter,
                    connect_timeout=timedelta(seconds=connect_timeout),
                )
        except (RuntimeError, RPCError, TimeoutError, ValueError) as exc:
            raise UnreachableError(
                f"Temporal is not reachable at {target} ({connect_error_reason(exc)}); start one with `jobgov dev`, "
                "or point --address / TEMPORAL_ADDRESS at your server"
            ) from None
        return cls(client, query_timeout=query_timeout, update_timeout=update_timeout)

    @property
    def temporal(self) -> Client:
        """The underlying Temporal client."""
        return self._client

    # ------------------------------------------------------------------ jobs

    async def start_job(
        self, plan: str, job: str, agent_url: str, worktree: str, session_id: str | None = None,
        prompt: str | None = None, config_path: str | Path | None = None,
        task_queue: str = names.DEFAULT_TASK_QUEUE, *, config: PlanConfig | None = None,
        check_agent: bool = True, agent_queue: str | None = None, owner: str | None = None,
        memo: Mapping[str, Any] | None = None,
    ) -> str:
        """Start governing a job; returns its workflow id.

        Args:
            plan: The plan the job belongs to (its budget and workflow id).
            job: The job's name, unique among the plan's running jobs.
            agent_url: The ``opencode serve`` base URL.
            worktree: The job's worktree as the agent sees it (absolute).
            session_id: Govern this existing session ...
            prompt: ... or create a session and send it this prompt.
            config_path: The plan config file, loaded here (the workflow gets the parsed config).
            task_queue: The task queue the jobgov worker polls.
            config: An already loaded config (instead of ``config_path``).
            check_agent: Check first that the agent answers (and has ``session_id``). Turn it off
                when this process cannot reach the agent but the workers can.
            agent_queue: The task queue of the workers on the agent's host (``jobgov worker
                --agent-queue``), where its stream, replies, prompts and aborts run (over the
                config's ``agent.queue``; ``None``: the workflow's own task queue).
            owner: Another system that runs the session and ends the job with :meth:`end_job`
                (its idle does not end it), e.g. ``mission-control``.
            memo: The workflow's memo (what the owner needs to find the job again).

        Raises:
            ConfigError: The config file cannot be used.
            InputError: Bad names, URL, worktree, or neither session nor prompt.
            AlreadyRunningError: A job of that name is running in the plan.
        """
        if config is None:
            config = load_plan_config(Path(config_path) if config_path is not None else None)
        job_input = build_job_input(plan, job, agent_url, worktree, session_id, prompt, config, agent_queue, owner)
        if check_agent:
            await check_agent_answers(agent_url, session_id)
        workflow_id = names.job_workflow_id(plan, job)
        attributes = TypedSearchAttributes([
            SearchAttributePair(names.SA_PLAN, plan),
            SearchAttributePair(names.SA_JOB, job),
            SearchAttributePair(names.SA_STATE, JobState.STARTING.value),
        ])
        try:
            await self._client.start_workflow(
                names.JOB_WORKFLOW, job_input, id=workflow_id, task_queue=task_queue,
                search_attributes=attributes, static_summary=job_summary(job_input),
                static_details=f"Agent {agent_url}, worktree `{worktree}`. Decide its asks with the "
                               "`approve` and `deny` updates; the current details list them.",
                # A running job of that name is an error; a finished one may be started again.
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE, memo=dict(memo) if memo else None,
            )
        except WorkflowAlreadyStartedError:
            raise AlreadyRunningError(f"job {job} of plan {plan} is already running (workflow {workflow_id}); "
                                      "kill it first or choose another job name") from None
        except RPCError as exc:
            raise self._rpc_error(exc, f"job {job}") from None
        return workflow_id

    async def job_status(self, job: str, plan: str | None = None) -> JobStatus:
        """The job's full status (running: by query; completed: from its result)."""
        execution = await self._find_job(job, plan)
        status = await self._status_of(execution, job)
        if status is None:
            raise JobGovError(f"job {job} was {closed_as(execution.status)} in Temporal and has no status "
                              f"(workflow {execution.id})")
        return status

    async def list_jobs(self, plan: str | None = None) -> list[JobOverview]:
        """Every job (of ``plan``), newest run of each, sorted by plan and job.

        Running jobs are queried for their status; completed ones give their result; if
        neither can be read, the row comes from the search attributes the job last published.
        """
        query = f"WorkflowType = '{names.JOB_WORKFLOW}'"
        if plan is not None:
            query += f" AND {names.SA_PLAN.name} = '{check_name('plan', plan)}'"
        latest = latest_runs(await self._list(query))
        limit = asyncio.Semaphore(LIST_CONCURRENCY)

        async def row(execution: WorkflowExecution) -> JobOverview:
            async with limit:
                return await self._overview(execution)

        rows = await asyncio.gather(*(row(e) for e in latest))
        return sorted(rows, key=lambda r: (r.plan, r.job))

    async def overview(self, plan: str | None = None) -> JobsOverview:
        """:meth:`list_jobs` plus a totals line per plan (with the plan's budget when it has one)."""
        rows = await self.list_jobs(plan)
        plans = sorted({r.plan for r in rows} | ({plan} if plan is not None else set()))
        statuses = await asyncio.gather(*(self._plan_status_or_none(p) for p in plans))
        totals = []
        for name, status in zip(plans, statuses, strict=True):
            mine = [r for r in rows if r.plan == name]
            totals.append(PlanTotals(
                plan=name, jobs=len(mine), cost_usd=sum(r.cost_usd for r in mine),
                tokens=sum(r.tokens for r in mine), pending=sum(r.pending for r in mine),
                paused=status.paused if status else None, budget=status.budget if status else None,
            ))
        return JobsOverview(jobs=rows, plans=totals)

    async def approve(self, job: str, request_id: str, always: bool = False, by: str | None = None,
                      reason: str | None = None, plan: str | None = None) -> DecisionRecord:
        """Approve a pending ask once (or ``always``: a job-scoped grant of that exact request)."""
        req = model(ApproveInput, request_id=request_id, always=always, by=by or default_actor(), reason=reason)
        return await self._job_update(job, plan, names.UPDATE_JOB_APPROVE, req, DecisionRecord)

    async def deny(self, job: str, request_id: str, by: str | None = None, reason: str | None = None,
                   plan: str | None = None) -> DecisionRecord:
        """Deny a pending ask; ``reason`` is sent to the agent."""
        req = model(DenyInput, request_id=request_id, by=by or default_actor(), reason=reason)
        return await self._job_update(job, plan, names.UPDATE_JOB_DENY, req, DecisionRecord)

    async def resume(self, job: str, add_usd: float | None = None, add_tokens: int | None = None,
                     by: str | None = None, plan: str | None = None) -> JobStatus:
        """Resume a paused job, optionally raising its budget first."""
        req = model(ResumeInput, add_usd=add_usd, add_tokens=add_tokens, by=by or default_actor())
        return await self._job_update(job, plan, names.UPDATE_JOB_RESUME, req, JobStatus)

    async def kill(self, job: str, by: str | None = None, reason: str | None = None,
                   plan: str | None = None) -> JobStatus:
        """Abort the agent and end the job as killed."""
        req = model(KillInput, by=by or default_actor(), reason=reason)
        return await self._job_update(job, plan, names.UPDATE_JOB_KILL, req, JobStatus)

    async def end_job(self, job: str, outcome: Literal["completed", "failed", "stopped"], by: str | None = None,
                      reason: str | None = None, plan: str | None = None) -> JobStatus:
        """End a job that has an owner (``start_job(owner=...)``) as its owner saw it end:
        ``completed``, ``failed``, or ``stopped`` (killed: the agent's run aborted)."""
        req = model(EndInput, outcome=outcome, by=by or default_actor(), reason=reason)
        return await self._job_update(job, plan, names.UPDATE_JOB_END, req, JobStatus)

    # ------------------------------------------------------------------ plans

    async def plan_status(self, plan: str) -> PlanStatus:
        """The plan's jobs, totals and budget."""
        handle = self._client.get_workflow_handle(names.plan_workflow_id(check_name("plan", plan)))
        try:
            return await self._query(handle, names.QUERY_PLAN_STATUS, PlanStatus, f"plan {plan}")
        except NotFoundError:
            raise NotFoundError(f"no plan named {plan} (a plan starts with its first job)") from None

    async def plan_resume(self, plan: str, add_usd: float | None = None, add_tokens: int | None = None,
                          by: str | None = None) -> PlanStatus:
        """Resume every job of a paused plan, optionally raising the plan budget first."""
        req = model(PlanResumeInput, add_usd=add_usd, add_tokens=add_tokens, by=by or default_actor())
        handle = self._client.get_workflow_handle(names.plan_workflow_id(check_name("plan", plan)))
        return await self._update(handle, names.UPDATE_PLAN_RESUME, req, PlanStatus, f"plan {plan}")

    # ------------------------------------------------------------------ internals

    async def _list(self, query: str) -> list[WorkflowExecution]:
        try:
            return [e async for e in self._client.list_workflows(query, limit=self._list_limit)]
        except RPCError as exc:
            raise self._rpc_error(exc, "the job list") from None

    async def _find_job(self, job: str, plan: str | None) -> WorkflowExecution:
        """The job's newest run: by workflow id when the plan is known, else by search attribute."""
        check_name("job", job)
        if plan is not None:
            handle = self._client.get_workflow_handle(names.job_workflow_id(check_name("plan", plan), job))
            try:
                return await handle.describe()
            except RPCError as exc:
                if exc.status == RPCStatusCode.NOT_FOUND and "namespace" not in exc.message.lower():
                    raise NotFoundError(f"no job named {job} in plan {plan}") from None
                raise self._rpc_error(exc, f"job {job}") from None
        runs: list[WorkflowExecution] = []
        for delay in VISIBILITY_RETRIES:
            runs = latest_runs(await self._list(f"{names.SA_JOB.name} = '{job}'"))
            if runs:
                break
            await asyncio.sleep(delay)  # a job started a moment ago may not be listed yet
        if not runs:
            raise NotFoundError(f"no job named {job}")
        running = [e for e in runs if e.status == WorkflowExecutionStatus.RUNNING]
        if len(running) > 1:
            plans = ", ".join(sorted(sa(e, names.SA_PLAN) or "?" for e in running))
            raise InputError(f"job {job} is running in several plans ({plans}): pass --plan")
        return running[0] if running else max(runs, key=lambda e: e.start_time)

    async def _status_of(self, execution: WorkflowExecution, job: str) -> JobStatus | None:
        """Running: query; completed: the result; closed otherwise: the state and error Temporal
        closed it with, over what a query (a worker replays it) or else its input still tells."""
        handle = self._client.get_workflow_handle(execution.id, run_id=execution.run_id, result_type=JobResult)
        if execution.status == WorkflowExecutionStatus.COMPLETED:
            try:
                result: JobResult = await handle.result(follow_runs=False)
                return result.status
            except Exception:  # noqa: BLE001 - an unreadable result falls back to a query
                pass
        status: JobStatus | None
        try:
            status = await self._query(handle, names.QUERY_JOB_STATUS, JobStatus, f"job {job}")
        except JobGovError:
            if execution.status == WorkflowExecutionStatus.RUNNING:
                raise
            status = None
        closed = CLOSED_STATES.get(execution.status) if execution.status is not None else None
        if closed is None:
            return status
        # A query on a closed workflow replays its history up to its last workflow task: it
        # says "starting" or "running" with no error. The close itself is the truth.
        if status is None:
            status = await self._status_from_input(handle, execution)
        error = await close_reason(handle)
        if status.state.finished and status.state is not JobState.COMPLETED:
            closed = status.state  # the job ended itself (killed, failed) before Temporal closed it
            error = status.error or error
        return status.model_copy(update={"state": closed, "error": error, "pending": []})

    async def _status_from_input(self, handle: WorkflowHandle[Any, JobResult],
                                 execution: WorkflowExecution) -> JobStatus:
        """What a closed job's first event and last search attributes tell, when no worker can say more."""
        job_input: JobInput | None = None
        try:
            async for event in handle.fetch_history_events():
                payloads = event.workflow_execution_started_event_attributes.input.payloads
                [decoded] = await self._client.data_converter.decode(payloads, [JobInput])
                job_input = decoded if isinstance(decoded, JobInput) else None
                break
        except Exception:  # noqa: BLE001 - an input no reader understands: the attributes remain
            job_input = None
        tokens = sa(execution, names.SA_TOKENS) or 0
        return JobStatus(
            plan=job_input.plan if job_input else sa(execution, names.SA_PLAN) or "?",
            job=job_input.job if job_input else sa(execution, names.SA_JOB) or execution.id,
            workflow_id=execution.id, state=JobState.STARTING,
            session_id=job_input.session_id if job_input else None,
            agent_url=job_input.agent_url if job_input else "", worktree=job_input.worktree if job_input else "",
            tokens={"total": tokens} if tokens else {}, cost_usd=sa(execution, names.SA_COST_USD) or 0.0,
            agent_cost_usd=0.0, steps=0, cost_sources=[], budget=None, pending=[], decisions=[], warnings=[],
        )

    async def _overview(self, execution: WorkflowExecution) -> JobOverview:
        job = sa(execution, names.SA_JOB) or execution.id
        try:
            status = await self._status_of(execution, job)
        except JobGovError:
            status = None
        closed = execution.status not in (WorkflowExecutionStatus.RUNNING, WorkflowExecutionStatus.COMPLETED)
        row = JobOverview(
            plan=sa(execution, names.SA_PLAN) or "?", job=job, workflow_id=execution.id,
            state=closed_as(execution.status) if closed else (sa(execution, names.SA_STATE) or "unknown"),
            cost_usd=sa(execution, names.SA_COST_USD) or 0.0, tokens=sa(execution, names.SA_TOKENS) or 0,
            pending=sa(execution, names.SA_PENDING_ASKS) or 0, started_at=execution.start_time,
            closed_at=execution.close_time,
        )
        if status is None:
            return row  # what the job last published to visibility
        return row.model_copy(update={
            "plan": status.plan, "job": status.job, "state": row.state if closed else status.state.value,
            "cost_usd": status.cost_usd, "tokens": status.tokens.get("total", 0), "pending": len(status.pending),
            "steps": status.steps, "paused_reason": status.paused_reason, "status": status,
        })

    async def _plan_status_or_none(self, plan: str) -> PlanStatus | None:
        try:
            return await self.plan_status(plan)
        except JobGovError:
            return None

    async def _job_update(self, job: str, plan: str | None, name: str, req: BaseModel, result: type[_T]) -> _T:
        execution = await self._find_job(job, plan)
        if execution.status != WorkflowExecutionStatus.RUNNING:
            raise RejectedError(f"job {job} has ended ({closed_as(execution.status)}); it takes no more decisions")
        return await self._update(self._client.get_workflow_handle(execution.id), name, req, result, f"job {job}")

    async def _update(self, handle: WorkflowHandle[Any, Any], name: str, req: BaseModel, result: type[_T],
                      what: str) -> _T:
        try:
            async with asyncio.timeout(self._update_timeout):
                answer: _T = await handle.execute_update(name, req, result_type=result)
                return answer
        except WorkflowUpdateFailedError as exc:
            # The validator's ApplicationError: nothing reached history; its message says why.
            cause = exc.cause
            raise RejectedError(cause.message if isinstance(cause, ApplicationError) else str(cause or exc)) from None
        except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
            raise self._no_answer(what, self._update_timeout) from None
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND and "namespace" not in exc.message.lower():
                raise RejectedError(f"{what} has ended or does not exist; it takes no more decisions") from None
            raise self._rpc_error(exc, what) from None

    async def _query(self, handle: WorkflowHandle[Any, Any], name: str, result: type[_T], what: str) -> _T:
        try:
            async with asyncio.timeout(self._query_timeout):
                answer: _T = await handle.query(name, result_type=result,
                                                rpc_timeout=timedelta(seconds=self._query_timeout))
                return answer
        except TimeoutError:
            raise self._no_answer(what, self._query_timeout) from None
        except (WorkflowQueryFailedError, WorkflowQueryRejectedError) as exc:
            raise JobGovError(f"{what}: the status query failed: {exc}") from None
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND and "namespace" not in exc.message.lower():
                raise NotFoundError(f"{what} does not exist") from None
            raise self._rpc_error(exc, what) from None

    def _no_answer(self, what: str, seconds: float) -> NoAnswerError:
        return NoAnswerError(f"{what} did not answer within {seconds:g}s: is a jobgov worker "
                             "(`jobgov worker` or `jobgov dev`) running on its task queue?")

    def _rpc_error(self, exc: RPCError, what: str) -> JobGovError:
        message = exc.message
        if exc.status == RPCStatusCode.DEADLINE_EXCEEDED:
            return self._no_answer(what, self._query_timeout)
        if exc.status == RPCStatusCode.NOT_FOUND and "namespace" in message.lower():
            return JobGovError(f"namespace {self._client.namespace} does not exist on this Temporal server")
        if exc.status == RPCStatusCode.UNAVAILABLE:
            return UnreachableError(f"Temporal became unreachable: {message}")
        if exc.status == RPCStatusCode.INVALID_ARGUMENT and "search attribute" in message.lower():
            wanted = ", ".join(f"{k.name}={names.search_attribute_type(k)}" for k in names.SEARCH_ATTRIBUTES)
            return JobGovError(f"{message}: jobgov's search attributes are not registered on this server "
                               f"(`jobgov dev` registers them; elsewhere run `temporal operator search-attribute "
                               f"create --name NAME --type TYPE` for each of {wanted})")
        return JobGovError(f"{what}: Temporal error {exc.status.name if exc.status else '?'}: {message}")
