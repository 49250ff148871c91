"""``jobgov mc watch`` on the real agent: a Mission Control serve-mode job on ``opencode serve`` 1.18.33.

The test does what Mission Control does (a session on the agent, its prompt running, then the job
written to ``jobs.json`` by atomic rename), and what Mission Control would do at the end (mark it
completed). Between the two, jobgov governs the session by Mission Control's own permission policy:
the ask that was already waiting is read first and waits for a person; the rest follows the policy.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from jobgov import names
from jobgov.client import JobGovClient
from jobgov.missioncontrol import Watcher
from jobgov.temporal.payloads import JobResult
from jobgov.testing import OpencodeServer, ScriptedModel, Turn
from tests.integration.jobs import status, wait_for
from tests.integration.mission_control import MC_DEFAULT_POLICY, McState, launch, sync_until

pytestmark = [pytest.mark.e2e, pytest.mark.temporal]


async def _pending_on_agent(base_url: str) -> list[dict[str, object]]:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        for _ in range(300):
            asks: list[dict[str, object]] = (await http.get("/permission")).json()
            if asks:
                return asks
            await asyncio.sleep(0.1)
    raise AssertionError("opencode never asked")


async def test_mission_control_job_on_real_opencode(
    opencode_binary: Path, project_dir: Path, tmp_path: Path, dev_env: WorkflowEnvironment, worker: Worker,
) -> None:
    model = ScriptedModel([
        Turn.call("bash", {"command": "ls /", "description": "list root"}),  # outside the worktree: ask-user
        Turn.call("write", {"filePath": str(project_dir / "notes.txt"), "content": "mc\n"}),  # inside: auto-approve
        Turn.say("Done."),
    ])
    mc = McState(tmp_path / "mc", f"plan-{uuid.uuid4().hex[:8]}", MC_DEFAULT_POLICY)
    jg = JobGovClient(dev_env.client)
    async with (
        model,
        OpencodeServer(opencode_binary, project_dir, model.openai_base_url, log_path=tmp_path / "oc.log") as server,
    ):
        session_id = await launch(server.base_url, "List the root, then write notes.txt.")
        [waiting] = await _pending_on_agent(server.base_url)  # asked before anything governs the session
        job = mc.add("notes", server.base_url, session_id, worktree=str(project_dir))
        watcher = Watcher(jg, tmp_path / "mc", task_queue=worker.task_queue)
        await sync_until(watcher, lambda: job["id"] in watcher.governed)
        handle = dev_env.client.get_workflow_handle(names.job_workflow_id(mc.plan_id, "notes"), result_type=JobResult)
        pending = await wait_for(handle, lambda s: bool(s.pending), timeout=60)
        assert [(p.id, p.patterns, p.category) for p in pending.pending] == [(waiting["id"], ["ls /"], "shell_command")]
        await jg.approve("notes", waiting["id"], by="e2e", plan=mc.plan_id)
        await wait_for(handle, lambda s: (project_dir / "notes.txt").exists() and len(s.decisions) == 2, timeout=90)
        assert (await status(handle)).state == "running"  # idle or not, Mission Control ends it

        job["status"] = "completed"
        mc.save()
        await sync_until(watcher, lambda: watcher.governed[job["id"]].ended)
        result = (await asyncio.wait_for(handle.result(), timeout=60)).status

    assert result.state == "completed" and result.owner == "mission-control"
    assert result.ended == "mission-control: Mission Control marked it completed"
    decided = [(d.permission, d.action, d.actor) for d in result.decisions]
    assert decided == [("bash", "approve", "e2e"), ("edit", "auto-approve", "policy")]
    assert (project_dir / "notes.txt").read_text() == "mc\n"
    assert result.steps >= 3 and result.tokens["total"] > 0
