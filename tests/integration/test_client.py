"""JobGovClient and the job CLI end to end: a real dev server (DevServer), a worker, a FakeAgent.

The module shares one :class:`~jobgov.devserver.DevServer` (free ports, a temporary
SQLite file) and one worker on its own task queue; every test uses its own
plan name. The last test runs ``jobgov dev`` itself twice over one database.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest
import pytest_asyncio
from temporalio.client import WorkflowFailureError
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.worker import WorkerConfig
from typer.testing import CliRunner

from jobgov.cli import app
from jobgov.client import (
    AlreadyRunningError,
    JobGovClient,
    NotFoundError,
    RejectedError,
    UnreachableError,
)
from jobgov.devserver import DevServer, free_port, port_in_use
from jobgov.run import CACHE_SPARE, CALL_SLOTS, DEFAULT_MAX_JOBS, run_worker
from jobgov.temporal.payloads import JobStatus
from jobgov.temporal.state import JobState
from jobgov.testing import FakeAgent, Scenario
from tests.integration.jobs import wait_until

pytestmark = pytest.mark.temporal

_T = TypeVar("_T")


@pytest_asyncio.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DevServer]:
    async with DevServer(port=0, ui_port=None, db=tmp_path_factory.mktemp("dev") / "temporal.db") as dev:
        yield dev


@pytest_asyncio.fixture(scope="module")
async def task_queue(server: DevServer) -> AsyncIterator[str]:
    """A worker (with JobGovPlugin, through run_worker) on this module's own task queue."""
    queue = f"jobgov-test-{uuid.uuid4()}"
    stop = asyncio.Event()
    ready: list[WorkerConfig] = []
    worker = asyncio.create_task(run_worker(server.address, task_queue=queue, stop=stop, handle_signals=False,
                                            on_ready=lambda w: ready.append(w.config())))
    try:
        await wait_until(lambda: bool(ready) or worker.done(), timeout=30)
        assert ready, worker.exception() if worker.done() else None
        # Sized for its jobs: a stream slot and a cache entry each, beyond the calls and the plans.
        assert ready[0]["max_concurrent_activities"] == DEFAULT_MAX_JOBS + CALL_SLOTS
        assert ready[0]["max_cached_workflows"] == DEFAULT_MAX_JOBS + CACHE_SPARE
        yield queue
    finally:
        stop.set()
        await asyncio.wait_for(worker, 30)


@pytest_asyncio.fixture(scope="module")
async def jg(server: DevServer) -> JobGovClient:
    return await JobGovClient.connect(server.address, query_timeout=10, update_timeout=30)


@pytest.fixture
def plan() -> str:
    return f"p{uuid.uuid4().hex[:8]}"


@pytest.fixture
def worktree(tmp_path: Path) -> Path:
    path = tmp_path / "wt"
    path.mkdir()
    return path


async def eventually(read: Callable[[], Awaitable[_T]], ok: Callable[[_T], bool], timeout: float = 30) -> _T:
    """Poll ``read`` until ``ok`` holds; fail with the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = await read()
        if ok(value):
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s; last value: {value!r}")
        await asyncio.sleep(0.2)


def has_pending(status: JobStatus) -> bool:
    return bool(status.pending)


async def test_a_job_end_to_end_approve_deny_complete(
    jg: JobGovClient, task_queue: str, plan: str, worktree: Path,
) -> None:
    script = Scenario().bash("npm install left-pad").bash("pip install requests").text("done")
    async with FakeAgent(script, directory=str(worktree)) as agent:
        workflow_id = await jg.start_job(plan, "build", agent.base_url, str(worktree), prompt="go",
                                         task_queue=task_queue)
        assert workflow_id == f"jobgov/{plan}/build"
        with pytest.raises(AlreadyRunningError, match=f"job build of plan {plan} is already running"):
            await jg.start_job(plan, "build", agent.base_url, str(worktree), prompt="go", task_queue=task_queue)

        # Found by name alone (visibility), then by plan (workflow id).
        status = await eventually(lambda: jg.job_status("build"), has_pending)
        assert status.state is JobState.AWAITING_APPROVAL
        ask = status.pending[0]
        assert (ask.permission, ask.patterns, ask.category.value) == ("bash", ["npm install left-pad"],
                                                                      "install_packages")

        with pytest.raises(RejectedError, match="no pending ask per_unknown in job build"):
            await jg.approve("build", "per_unknown", plan=plan)

        record = await jg.approve("build", ask.id, by="ana", reason="needed", plan=plan)
        assert (record.request_id, record.action, record.actor) == (ask.id, "approve", "ana")
        with pytest.raises(RejectedError, match=f"ask {ask.id} was already decided"):
            await jg.approve("build", ask.id, plan=plan)

        status = await eventually(lambda: jg.job_status("build", plan), has_pending)
        second = status.pending[0]
        assert second.patterns == ["pip install requests"]
        record = await jg.deny("build", second.id, by="ana", reason="use the lock file", plan=plan)
        assert record.action == "deny" and record.message == "use the lock file"

        done = await eventually(lambda: jg.job_status("build", plan), lambda s: s.state.finished)
        assert done.state is JobState.COMPLETED
        assert [(d.request_id, d.action) for d in done.decisions] == [(ask.id, "approve"), (second.id, "deny")]
        assert [(r.request_id, r.reply, r.message) for r in agent.replies] == [
            (ask.id, "once", None), (second.id, "reject", "use the lock file")]

    rows = await eventually(lambda: jg.list_jobs(plan), lambda rows: bool(rows) and rows[0].closed_at is not None)
    assert [(r.job, r.state, r.pending) for r in rows] == [("build", "completed", 0)]
    assert rows[0].status is not None and rows[0].status.state is JobState.COMPLETED  # from the result
    overview = await jg.overview(plan)
    assert [(p.plan, p.jobs, p.paused) for p in overview.plans] == [(plan, 1, False)]
    plan_status = await jg.plan_status(plan)
    assert [r.job for r in plan_status.jobs] == ["build"]

    with pytest.raises(RejectedError, match="job build has ended"):
        await jg.approve("build", second.id, plan=plan)


async def test_a_worker_running_two_workflow_tasks_at_a_time_governs_a_job(
    jg: JobGovClient, server: DevServer, plan: str, worktree: Path,
) -> None:
    """``run_worker(workflow_tasks=2)`` (``jobgov worker --workflow-tasks 2``, the fewest allowed):
    the job's and its plan's workflows, their queries and updates share two workflow task slots
    (one held by the poll of the worker's sticky queue), and the job still runs to its end."""
    queue, stop = f"jobgov-test-{uuid.uuid4()}", asyncio.Event()
    ready: list[WorkerConfig] = []
    worker = asyncio.create_task(run_worker(server.address, task_queue=queue, stop=stop, handle_signals=False,
                                            on_ready=lambda w: ready.append(w.config()), workflow_tasks=2))
    try:
        await wait_until(lambda: bool(ready) or worker.done(), timeout=30)
        assert ready, worker.exception() if worker.done() else None
        assert ready[0]["max_concurrent_workflow_tasks"] == 2
        async with FakeAgent(Scenario().bash("ls").bash("npm install left-pad").text("done"),
                             directory=str(worktree)) as agent:
            await jg.start_job(plan, "two", agent.base_url, str(worktree), prompt="go", task_queue=queue)
            status = await eventually(lambda: jg.job_status("two", plan=plan), has_pending)
            await jg.approve("two", status.pending[0].id, by="ana", plan=plan)
            result = await jg.temporal.get_workflow_handle(f"jobgov/{plan}/two").result()
        assert result["status"]["state"] == "completed"
        assert [d["action"] for d in result["status"]["decisions"]] == ["auto-approve", "approve"]
    finally:
        stop.set()
        await asyncio.wait_for(worker, 30)


async def test_kill_aborts_the_agent_and_ends_the_job(
    jg: JobGovClient, task_queue: str, plan: str, worktree: Path,
) -> None:
    async with FakeAgent(Scenario().bash("npm install left-pad").text("never"), directory=str(worktree)) as agent:
        await jg.start_job(plan, "doomed", agent.base_url, str(worktree), prompt="go", task_queue=task_queue)
        await eventually(lambda: jg.job_status("doomed", plan), has_pending)
        status = await jg.kill("doomed", by="ana", reason="wrong branch", plan=plan)
        assert status.state is JobState.KILLED
        assert [d.action for d in status.decisions] == ["killed"]
        assert agent.aborts == [status.session_id]
        with pytest.raises(RejectedError, match="job doomed"):
            await jg.kill("doomed", plan=plan)
        rows = await eventually(lambda: jg.list_jobs(plan), lambda rows: bool(rows) and rows[0].state == "killed")
        assert rows[0].job == "doomed"


async def test_unknown_names_are_reported(jg: JobGovClient, task_queue: str, plan: str) -> None:
    with pytest.raises(NotFoundError, match=r"no job named ghost$"):
        await jg.job_status("ghost")
    with pytest.raises(NotFoundError, match=f"no job named ghost in plan {plan}"):
        await jg.approve("ghost", "per_1", plan=plan)
    with pytest.raises(NotFoundError, match=f"no plan named {plan}"):
        await jg.plan_status(plan)
    assert await jg.list_jobs(plan) == []


async def test_the_cli_against_a_server(jg: JobGovClient, server: DevServer, task_queue: str, plan: str,
                                        worktree: Path) -> None:
    runner = CliRunner()

    def cli(*args: str) -> Awaitable[object]:
        # The CLI runs its own event loop: give it a thread.
        return asyncio.to_thread(runner.invoke, app, [*args, "--address", server.address])

    async with FakeAgent(Scenario().bash("npm install left-pad").text("done"), directory=str(worktree)) as agent:
        result = await cli("job", "start", "--agent", agent.base_url, "--worktree", str(worktree), "--plan", plan,
                           "--job", "cli", "--prompt", "go", "--task-queue", task_queue)
        assert result.exit_code == 0, result.stderr  # type: ignore[attr-defined]
        status = await eventually(lambda: jg.job_status("cli", plan), has_pending)

        result = await cli("job", "status", "cli", "--plan", plan, "--json")
        data = json.loads(result.stdout)  # type: ignore[attr-defined]
        assert data["state"] == "awaiting-approval" and data["pending"][0]["id"] == status.pending[0].id

        result = await cli("approve", "cli", "per_bogus", "--plan", plan)
        assert result.exit_code == 1  # type: ignore[attr-defined]
        assert "no pending ask per_bogus in job cli" in result.stderr  # type: ignore[attr-defined]

        result = await cli("approve", "cli", status.pending[0].id, "--by", "ana", "--json")
        assert result.exit_code == 0, result.stderr  # type: ignore[attr-defined]
        assert json.loads(result.stdout)["actor"] == "ana"  # type: ignore[attr-defined]
        await eventually(lambda: jg.job_status("cli", plan), lambda s: s.state.finished)

    result = await cli("jobs", "--plan", plan, "--json")
    data = json.loads(result.stdout)  # type: ignore[attr-defined]
    assert [(j["job"], j["state"]) for j in data["jobs"]] == [("cli", "completed")]
    result = await cli("job", "status", "nobody", "--plan", plan)
    assert result.exit_code == 1 and f"no job named nobody in plan {plan}" in result.stderr  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------- jobgov dev


def _start_dev(db: Path, port: int, ui_port: int, task_queue: str) -> tuple[subprocess.Popen[str], str]:
    """Run ``jobgov dev`` until it prints how to reach it; returns the process and what it printed."""
    process = subprocess.Popen(
        [sys.executable, "-c", "from jobgov.cli import main; main()", "dev", "--port", str(port), "--ui-port", str(ui_port), "--db", str(db),
         "--task-queue", task_queue],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    seen = []
    deadline = time.monotonic() + 60
    for line in process.stdout:
        seen.append(line)
        if "Ctrl-C stops" in line:
            return process, "".join(seen)
        if time.monotonic() > deadline:
            break
    process.kill()
    pytest.fail("jobgov dev did not start:\n" + "".join(seen))


def _stop_dev(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGINT)
    try:
        output, _ = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        pytest.fail("jobgov dev did not stop on SIGINT:\n" + output)
    assert process.returncode == 0, output
    return output


async def test_jobgov_dev_restart_keeps_a_waiting_job(tmp_path: Path, worktree: Path, plan: str) -> None:
    db, port, ui_port, queue = tmp_path / "state" / "temporal.db", free_port(), free_port(), "dev-test"
    address = f"127.0.0.1:{port}"
    async with FakeAgent(Scenario().bash("npm install left-pad").text("done"), directory=str(worktree)) as agent:
        first, banner = await asyncio.to_thread(_start_dev, db, port, ui_port, queue)
        assert f"http://127.0.0.1:{ui_port}" in banner and f"TEMPORAL_ADDRESS={address}" in banner
        try:
            jg = await JobGovClient.connect(address)
            await jg.start_job(plan, "survivor", agent.base_url, str(worktree), prompt="go", task_queue=queue)
            before = await eventually(lambda: jg.job_status("survivor", plan), has_pending)
        finally:
            await asyncio.to_thread(_stop_dev, first)
        assert (db.parent / "temporal.log").exists()

        second, _ = await asyncio.to_thread(_start_dev, db, port, ui_port, queue)
        try:
            jg = await JobGovClient.connect(address)
            after = await jg.job_status("survivor", plan)
            assert after.workflow_id == before.workflow_id
            assert [p.id for p in after.pending] == [p.id for p in before.pending]
            await jg.approve("survivor", after.pending[0].id, plan=plan)
            done = await eventually(lambda: jg.job_status("survivor", plan), lambda s: s.state.finished)
            assert done.state is JobState.COMPLETED
        finally:
            await asyncio.to_thread(_stop_dev, second)


async def test_status_of_a_closed_job_is_how_it_closed(jg: JobGovClient, server: DevServer, task_queue: str,
                                                       plan: str, worktree: Path) -> None:
    """A query on a closed workflow replays it to its last task ("awaiting-approval", no error):
    the status says how Temporal closed it, with the reason, and lists no ask to decide."""
    from temporalio.client import Client

    from jobgov import names

    temporal = await Client.connect(server.address)
    async with FakeAgent(Scenario().bash("npm install left-pad").text("done"), directory=str(worktree)) as agent:
        agent_url = agent.base_url
        await jg.start_job(plan, "ops", agent_url, str(worktree), prompt="go", task_queue=task_queue)
        await eventually(lambda: jg.job_status("ops", plan), has_pending)
        await temporal.get_workflow_handle(names.job_workflow_id(plan, "ops")).terminate(reason="ops cleanup")
        status = await jg.job_status("ops", plan)
    assert (status.state, status.error, status.pending) == (JobState.TERMINATED, "terminated: ops cleanup", [])
    assert status.state.finished and status.agent_url == agent_url
    [row] = (await jg.overview(plan)).jobs
    assert (row.job, row.state) == ("ops", "terminated")

    # An input no worker can read fails the workflow: the status says failed and why.
    attributes = TypedSearchAttributes([SearchAttributePair(names.SA_PLAN, plan),
                                        SearchAttributePair(names.SA_JOB, "broken")])
    handle = await temporal.start_workflow(names.JOB_WORKFLOW, {"plan": plan}, id=names.job_workflow_id(plan, "broken"),
                                           task_queue=task_queue, search_attributes=attributes)
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    status = await jg.job_status("broken", plan)
    assert status.state is JobState.FAILED and status.job == "broken"
    assert status.error is not None and "job" in status.error and "Field required" in status.error


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it exited while we looked
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


async def test_one_database_is_never_served_twice(tmp_path: Path) -> None:
    from jobgov.devserver import DatabaseInUse

    db = tmp_path / "temporal.db"
    async with DevServer(port=0, ui_port=None, db=db) as first:
        with pytest.raises(DatabaseInUse, match=rf"{db} is already served by jobgov dev \(pid {os.getpid()}, "
                                               rf"Temporal on {first.address}\)"):
            await DevServer(port=0, ui_port=None, db=db).start()
        assert first.running  # the refused second start left the first alone
    async with DevServer(port=0, ui_port=None, db=db) as second:  # free again once the first stopped
        assert second.running


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the death signal is Linux's PR_SET_PDEATHSIG")
async def test_sigkill_of_jobgov_dev_takes_its_server_down(tmp_path: Path) -> None:
    db, port = tmp_path / "temporal.db", free_port()
    process, _ = _start_dev(db, port, free_port(), "dev-kill")
    [server] = [pid for pid in _children(process.pid) if "temporal" in Path(f"/proc/{pid}/cmdline").read_text()]
    process.kill()
    process.communicate()
    await wait_until(lambda: not Path(f"/proc/{server}").exists()
                     or "Z" in Path(f"/proc/{server}/stat").read_text().rsplit(")", 1)[1].split()[0], timeout=30)
    await wait_until(lambda: not port_in_use("127.0.0.1", port), timeout=30)
    async with DevServer(port=0, ui_port=None, db=db) as again:  # the database is free too
        assert again.running


async def test_a_start_checks_the_agent_and_its_session(jg: JobGovClient, task_queue: str, plan: str,
                                                        worktree: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(UnreachableError, match=rf"the agent at {dead} is not reachable \(ConnectError"):
        await jg.start_job(plan, "nowhere", dead, str(worktree), prompt="go", task_queue=task_queue)
    async with FakeAgent(directory=str(worktree)) as agent:
        with pytest.raises(NotFoundError, match=rf"the agent at {agent.base_url} has no session ses_ghost$"):
            await jg.start_job(plan, "ghost", agent.base_url, str(worktree), session_id="ses_ghost",
                               task_queue=task_queue)
    # Nothing was started for either.
    assert await jg.list_jobs(plan) == []


async def test_the_ui_says_what_a_job_is_and_how_to_decide(jg: JobGovClient, server: DevServer, task_queue: str,
                                                           plan: str, worktree: Path) -> None:
    """The list shows a summary (plan/job and the prompt's first line); the updates carry a
    description with an example input; internal signals say they are internal."""
    from temporalio.api.sdk.v1 import WorkflowMetadata

    from jobgov import names

    async with FakeAgent(Scenario().bash("npm install left-pad").text("done"), directory=str(worktree)) as agent:
        await jg.start_job(plan, "ui", agent.base_url, str(worktree), prompt="Fix the typo\nin README.md",
                           task_queue=task_queue)
        await eventually(lambda: jg.job_status("ui", plan), has_pending)
        handle = jg.temporal.get_workflow_handle(names.job_workflow_id(plan, "ui"))
        described = await handle.describe()
        assert await described.static_summary() == f"{plan}/ui: Fix the typo"
        assert agent.base_url in (await described.static_details() or "")
        meta = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
        updates = {u.name: u.description for u in meta.definition.update_definitions}
        signals = {s.name: s.description for s in meta.definition.signal_definitions}
        await jg.kill("ui", plan=plan)
    assert set(updates) >= {"approve", "deny", "resume", "kill"}
    assert '{"request_id": "per_123"' in updates["approve"] and "Example" in updates["resume"]
    assert all(signals[name].startswith("Internal:") for name in (names.SIGNAL_JOB_EVENTS, names.SIGNAL_JOB_PLAN_HOLD))
    assert server.list_url("paused") is None  # this module's server has no UI
    with_ui = DevServer(port=7233, ui_port=8233, db=None)  # not started: the link is only built
    assert with_ui.list_url("awaiting-approval") == ("http://127.0.0.1:8233/namespaces/default/workflows"
                                                     "?query=JobGovState%3D%22awaiting-approval%22")
