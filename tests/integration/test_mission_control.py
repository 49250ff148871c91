"""``jobgov mc watch``: Mission Control's serve-mode jobs, governed from its own state files.

A state directory of the test's own, in Mission Control's shapes; a fake agent whose session is
already at work (Mission Control writes a job only after its prompt runs); the dev server and a
worker. The watcher is driven pass by pass (``sync``), as its loop would."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionDescription, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from jobgov import names
from jobgov.client import JobGovClient
from jobgov.missioncontrol import MEMO_KEY, Watcher
from jobgov.temporal.payloads import JobResult
from jobgov.testing import FakeAgent, Scenario, default_worktree
from tests.integration.jobs import status, wait_for
from tests.integration.mission_control import McState, launch, sync_until

pytestmark = pytest.mark.temporal


@pytest.fixture
def mc(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> McState:
    """A Mission Control state directory of the test's own (under ``tmp_path``); the watcher's log kept."""
    caplog.set_level(logging.INFO, logger="jobgov.mc")
    return McState(tmp_path, f"plan-{uuid.uuid4().hex[:8]}")


async def test_a_mission_control_job_is_governed_once_and_ends_with_it(
    dev_env: WorkflowEnvironment, worker: Worker, tmp_path: Path, mc: McState, caplog: pytest.LogCaptureFixture,
) -> None:
    jg = JobGovClient(dev_env.client)
    scenario = Scenario().bash("pip install requests").bash("ls").text("Done.")
    async with FakeAgent(scenario) as agent:
        session_id = await launch(agent.base_url)
        await agent.wait_for_ask(session_id)  # its first ask waits before anything governs it
        job = mc.add("fix-auth", agent.base_url, session_id)
        watcher = Watcher(jg, tmp_path, task_queue=worker.task_queue, interval=0.1)
        await sync_until(watcher, lambda: job["id"] in watcher.governed)
        handle = dev_env.client.get_workflow_handle(names.job_workflow_id(mc.plan_id, "fix-auth"),
                                                    result_type=JobResult)
        # The pending ask was read first and judged by Mission Control's policy (installPackages: deny).
        judged = await wait_for(handle, lambda s: len(s.decisions) >= 2)
        assert [(d.action, d.actor) for d in judged.decisions] == [("deny", "policy"), ("auto-approve", "policy")]
        assert (judged.session_id, judged.owner, judged.plan, judged.worktree) == (
            session_id, "mission-control", mc.plan_id, default_worktree())
        await agent.wait_idle(session_id)
        # The session is idle, its job is not over until Mission Control says so.
        assert (await status(handle)).state == "running"
        described = await handle.describe()
        assert (await described.memo_value(MEMO_KEY))["job_id"] == job["id"]

        # A restarted watcher (or a second one) finds the job by its memo: never started twice.
        again = Watcher(jg, tmp_path, task_queue=worker.task_queue)
        await again.sync()
        assert again.governed[job["id"]].plan == mc.plan_id and not again.governed[job["id"]].ended
        runs = [e async for e in dev_env.client.list_workflows(f"WorkflowId = '{handle.id}'")]
        assert len(runs) == 1

        job["status"] = "completed"
        mc.save()
        await sync_until(again, lambda: again.governed[job["id"]].ended)
        result: JobResult = await handle.result()
    assert result.status.state == "completed" and result.status.error is None
    assert [r.reply for r in agent.replies] == ["reject", "once"] and not agent.aborts
    assert any("governing Mission Control job fix-auth" in r.getMessage() for r in caplog.records)
    # The first watcher, still running, does not start it again either (it ended, Mission Control says completed).
    await watcher.sync()
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED


async def test_bad_state_files_never_end_a_job_and_a_removed_one_ends_killed(
    dev_env: WorkflowEnvironment, worker: Worker, tmp_path: Path, mc: McState, caplog: pytest.LogCaptureFixture,
) -> None:
    jg = JobGovClient(dev_env.client)
    async with FakeAgent(Scenario().bash("npm install left-pad").text("Done.")) as agent:
        session_id = await launch(agent.base_url)
        job = mc.add("deps", agent.base_url, session_id)
        watcher = Watcher(jg, tmp_path, task_queue=worker.task_queue)
        await sync_until(watcher, lambda: job["id"] in watcher.governed)
        handle = dev_env.client.get_workflow_handle(names.job_workflow_id(mc.plan_id, "deps"),
                                                    result_type=JobResult)
        await wait_for(handle, lambda s: bool(s.decisions))

        jobs_file = mc.dir / "jobs.json"
        for broken in ('{"version": 3, "jobs": [{"id": "', "", '{"version": 3, "jobs": "none"}',
                       json.dumps({"version": 3, "jobs": [{"id": job["id"], "name": "deps", "status": "??"}]})):
            jobs_file.write_text(broken, encoding="utf-8")
            await watcher.sync()
            await watcher.sync()  # said once while it lasts
        jobs_file.unlink()
        await watcher.sync()
        assert (await status(handle)).state == "running"  # nothing read is nothing removed
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert sum("not JSON" in w for w in warnings) == 2 and sum("missing" in w for w in warnings) == 1
        assert any("jobs[0].status: '??' is not one of" in w for w in warnings)
        assert all(str(jobs_file) in w for w in warnings)

        # A new watcher finds the job by listing (visibility lags a moment), and ends it when it is removed.
        mc.jobs = []
        mc.save()
        fresh = Watcher(jg, tmp_path, task_queue=worker.task_queue)
        deadline = time.monotonic() + 30
        while (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
            assert time.monotonic() < deadline, fresh.said()
            fresh = fresh if fresh.governed else Watcher(jg, tmp_path, task_queue=worker.task_queue)
            await fresh.sync()
            await asyncio.sleep(0.1)
        result: JobResult = await handle.result()
    assert result.status.state == "killed"
    assert result.status.ended == "mission-control: removed from Mission Control's jobs.json"
    assert agent.aborts  # a job that went away while running: its run is stopped


async def test_the_watch_command_governs_and_stops_cleanly(
    dev_env: WorkflowEnvironment, worker: Worker, tmp_path: Path, mc: McState,
) -> None:
    """``jobgov mc watch`` as a process: it governs the job, and SIGTERM stops it with exit 0."""
    exe = str(Path(sys.executable).with_name("jobgov"))
    address = dev_env.client.service_client.config.target_host
    bad = await asyncio.create_subprocess_exec(exe, "mc", "watch", "--config", str(tmp_path / "nope.yaml"),
                                               stderr=asyncio.subprocess.PIPE)
    assert (await bad.wait(), b"nope.yaml" in (await bad.communicate())[1]) == (2, True)

    async with FakeAgent(Scenario().bash("ls").text("Done.")) as agent:
        job = mc.add("cli", agent.base_url, await launch(agent.base_url))
        proc = await asyncio.create_subprocess_exec(
            exe, "mc", "watch", "--state-dir", str(tmp_path), "--address", address, "--task-queue",
            worker.task_queue, "--interval", "0.2", stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        try:
            handle = dev_env.client.get_workflow_handle(names.job_workflow_id(mc.plan_id, "cli"), result_type=JobResult)
            governed = await wait_until_exists(handle)
            assert (await governed.memo_value(MEMO_KEY))["job_id"] == job["id"]
            await wait_for(handle, lambda s: bool(s.decisions))
            job["status"] = "stopped"
            mc.save()
            result = await asyncio.wait_for(handle.result(), 60)
        finally:
            if proc.returncode is None:
                proc.terminate()
            err = (await asyncio.wait_for(proc.communicate(), 30))[1].decode(errors="replace")
    assert proc.returncode == 0, err
    assert result.status.state == "killed" and result.status.ended == "mission-control: Mission Control marked it stopped"
    assert "governing Mission Control job cli" in err and "Traceback" not in err


async def wait_until_exists(handle: WorkflowHandle[Any, Any]) -> WorkflowExecutionDescription:
    deadline = time.monotonic() + 60
    while True:
        try:
            return await handle.describe()
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND or time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.1)


async def test_two_jobs_one_name_are_governed_one_after_the_other(
    dev_env: WorkflowEnvironment, worker: Worker, tmp_path: Path, mc: McState, caplog: pytest.LogCaptureFixture,
) -> None:
    """``fix auth`` and ``fix-auth`` are both job ``fix-auth`` to jobgov: the second waits, saying why."""
    jg = JobGovClient(dev_env.client)
    async with FakeAgent(Scenario().bash("ls").text("Done.")) as a, FakeAgent(Scenario().bash("ls").text("Done.")) as b:
        first = mc.add("fix auth", a.base_url, await launch(a.base_url))
        second = mc.add("fix-auth", b.base_url, await launch(b.base_url))
        watcher = Watcher(jg, tmp_path, task_queue=worker.task_queue)
        await sync_until(watcher, lambda: first["id"] in watcher.governed and any(
            "already running for another job" in r.getMessage() for r in caplog.records))
        assert second["id"] not in watcher.governed
        handle = dev_env.client.get_workflow_handle(names.job_workflow_id(mc.plan_id, "fix-auth"), result_type=JobResult)
        await wait_for(handle, lambda s: bool(s.decisions))
        first["status"] = "completed"
        mc.save()
        await sync_until(watcher, lambda: second["id"] in watcher.governed)
        assert (await (await handle.describe()).memo_value(MEMO_KEY))["job_id"] == second["id"]  # its new run
        second["status"] = "completed"
        mc.save()
        await sync_until(watcher, lambda: watcher.governed[second["id"]].ended)
        assert (await handle.result()).status.state == "completed"
