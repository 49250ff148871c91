"""Helpers for the workflow tests: start a job against a fake agent, wait for its status."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from jobgov import names
from jobgov.configfile import parse_plan_config
from jobgov.temporal.activities.bundle import AgentSettings
from jobgov.temporal.activities.stream_settings import StreamSettings
from jobgov.temporal.payloads import JobInput, JobResult, JobStatus, PlanStatus
from jobgov.temporal.plugin import JobGovPlugin
from jobgov.testing import FakeAgent, default_worktree

PRICING = 'pricing:\n  "fake/fake-model": {input: 3, output: 15, cache_read: 0.3, cache_write: 3.75}\n'


async def start_job(
    client: Client, task_queue: str, agent_url: str, *, config: str = "", prompt: str | None = "Do the task.",
    session_id: str | None = None, plan: str | None = None, job: str = "job", worktree: str | None = None,
    **extra: Any,
) -> WorkflowHandle[Any, JobResult]:
    """Start a job; its worktree is the fake agents' default one unless given (it exists: jobgov
    auto-approves nothing for a worktree that does not)."""
    plan = plan or f"plan-{uuid.uuid4().hex[:8]}"
    worktree = worktree or default_worktree()
    job_input = JobInput(plan=plan, job=job, agent_url=agent_url, worktree=worktree, prompt=prompt,
                         session_id=session_id, config=parse_plan_config(PRICING + config), **extra)
    return await client.start_workflow(
        names.JOB_WORKFLOW, job_input, id=names.job_workflow_id(plan, job), task_queue=task_queue,
        result_type=JobResult,
    )


async def status(handle: WorkflowHandle[Any, Any]) -> JobStatus:
    return await handle.query(names.QUERY_JOB_STATUS, result_type=JobStatus)


async def plan_status(handle: WorkflowHandle[Any, Any]) -> PlanStatus:
    return await handle.query(names.QUERY_PLAN_STATUS, result_type=PlanStatus)


async def plan_jobs(handle: WorkflowHandle[Any, Any]) -> dict[str, str]:
    """The plan's report of each job's state; empty until the plan exists (it starts with a job's
    first report, an activity after the job starts)."""
    try:
        report = await plan_status(handle)
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        return {}
    return {j.job: j.state.value for j in report.jobs}


async def wait_for(
    handle: WorkflowHandle[Any, Any], predicate: Callable[[JobStatus], bool], timeout: float = 30.0
) -> JobStatus:
    """Poll the status query until ``predicate`` holds (bounded)."""
    deadline = time.monotonic() + timeout
    last: JobStatus | None = None
    while time.monotonic() < deadline:
        last = await status(handle)
        if predicate(last):
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"condition not met within {timeout}s; last status: {last and last.model_dump_json(indent=1)}")


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for a local condition (e.g. the fake agent saw an abort), bounded."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.05)


@asynccontextmanager
async def jobgov_worker(address: str, *args: str, executable: str | None = None) -> AsyncIterator[int]:
    """A ``jobgov worker`` process (``executable``: another install's), once it polls; yields its pid
    (the prefix of its Temporal identity). Terminated on exit; its exit status must be 0."""
    exe = executable or str(Path(sys.executable).with_name("jobgov"))
    proc = await asyncio.create_subprocess_exec(
        exe, "worker", "--address", address, *args,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    assert proc.stderr is not None
    drain: asyncio.Task[bytes] | None = None
    try:
        async with asyncio.timeout(60):
            while b"polling task queue" not in (line := await proc.stderr.readline()):
                assert line, f"jobgov worker {args} exited with {await proc.wait()} before polling"
        drain = asyncio.create_task(proc.stderr.read())  # keep the pipe from filling
        yield proc.pid
    finally:
        if proc.returncode is None:
            proc.terminate()
        status = await asyncio.wait_for(proc.wait(), 30)
        if drain is not None:
            await drain
    assert status == 0, f"jobgov worker {args} exited with {status}"


#: Decisions wait an hour to be delivered: only a status change or the run's end delivers them.
HELD = AgentSettings(stream=StreamSettings(deliver_every=3600.0, heartbeat_every=0.5))


@asynccontextmanager
async def held_worker(env: WorkflowEnvironment, task_queue: str) -> AsyncIterator[Worker]:
    """A worker whose streams deliver automatic decisions only with a status change or at the end."""
    client = await Client.connect(env.client.service_client.config.target_host,
                                  plugins=[JobGovPlugin(settings=HELD)])
    async with Worker(client, task_queue=task_queue) as worker:
        yield worker


class SilentAbort(FakeAgent):
    """An agent whose abort says nothing on its stream (as when the stream is cut at that moment):
    nothing after the kill delivers what the stream holds."""

    async def _send_abort(self, sess: Any) -> None:
        return None
