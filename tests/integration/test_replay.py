"""Determinism: recorded histories replay against today's workflow code.

``tests/histories/`` holds histories recorded from real runs (auto decisions, an
approval, a budget pause and resume, a plan pause, continue-as-new) by each release:
the top-level files by 0.1.0, each later release's in a folder named for it. If a
change to the workflows breaks replay of any of them, it would break running
workflows in production: the change needs a ``workflow.patched`` gate. Recordings
are never re-recorded: ``JOBGOV_RECORD_HISTORIES=1`` adds this version's folder only.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client, WorkflowFailureError, WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from jobgov import __version__, names
from jobgov.temporal.payloads import ApproveInput, EndInput, JobStatus, KillInput, ResumeInput
from jobgov.temporal.plugin import JobGovPlugin
from jobgov.temporal.state import DecisionRecord
from jobgov.testing import FakeAgent, Scenario
from tests.integration.jobs import SilentAbort, held_worker, start_job, wait_for, wait_until

pytestmark = pytest.mark.temporal

HISTORIES = Path(__file__).resolve().parents[1] / "histories"


def _replayer() -> Replayer:
    # The plugin brings the workflows, the converter and the sandbox pass-through, as on a worker.
    return Replayer(workflows=[], plugins=[JobGovPlugin()])


def _recorded() -> list[Path]:
    return sorted(HISTORIES.rglob("*.json"))


@pytest.mark.parametrize("path", _recorded(), ids=lambda p: p.stem)
async def test_recorded_histories_replay(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    await _replayer().replay_workflow(history)


#: Replays the histories named on the command line with the jobgov found first on ``sys.path``,
#: printing ``{"version", "failed": {name: error}}``.
_REPLAY_SCRIPT = """
import asyncio, json, os, sys
from pathlib import Path
import jobgov
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from jobgov.temporal.plugin import JobGovPlugin

async def main():
    failed = {}
    for path in map(Path, sys.argv[1:]):
        history = WorkflowHistory.from_json(path.stem, path.read_text())
        try:
            await Replayer(workflows=[], plugins=[JobGovPlugin()]).replay_workflow(history)
        except Exception as exc:
            failed[path.stem] = f"{type(exc).__name__}: {exc}"[:300]
    print(json.dumps({"version": jobgov.__version__, "file": jobgov.__file__, "failed": failed}), flush=True)

asyncio.run(main())
os._exit(0)
"""


def test_0_9_code_replays_the_histories_0_10_recorded(tmp_path: Path) -> None:
    """Rolling back from 0.10 to 0.9 is safe (README, rolling deploys): 0.10 changed no command,
    so 0.9.0's own workflow code, taken from the repository's git history, replays every history
    0.10.0 recorded."""
    root = HISTORIES.parent.parent
    if not (root / ".git").exists():
        pytest.skip("needs the repository's git history (0.9.0's code)")
    # The newest commit that changed whether jobgov/__init__.py says 0.9.0 is the bump to 0.10.0:
    # its parent is the last commit of 0.9.0.
    bump = subprocess.run(["git", "log", "-1", "--format=%H", "-S", '__version__ = "0.9.0"', "--",
                           "jobgov/__init__.py"], cwd=root, capture_output=True, text=True, check=True).stdout.strip()
    archive = subprocess.run(["git", "archive", "--format=tar", f"{bump}^", "jobgov"], cwd=root,
                             capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(tmp_path, filter="data")
    recorded = sorted(str(p) for p in (HISTORIES / "0.10.0").glob("*.json"))
    assert len(recorded) == 8
    run = subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(tmp_path)!r})\n" + _REPLAY_SCRIPT,
                          *recorded], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert (result["version"], result["file"]) == ("0.9.0", str(tmp_path / "jobgov" / "__init__.py"))
    assert result["failed"] == {}


async def test_fresh_histories_replay(dev_env: WorkflowEnvironment, task_queue: str) -> None:
    """Run a job through its interesting paths, then replay what was recorded."""
    config = "budget:\n  job: {usd: 0.01, warn_at: [0.5], on_exceed: pause}\n"
    scenario = Scenario().bash("ls").bash("pip install x").bash("echo 3").bash("echo 4").text("Done.")
    async with FakeAgent(scenario) as agent, Worker(dev_env.client, task_queue=task_queue):
        handle = await start_job(dev_env.client, task_queue, agent.base_url, config=config)
        ask = (await wait_for(handle, lambda s: bool(s.pending))).pending[0]
        await handle.execute_update(names.UPDATE_JOB_APPROVE, ApproveInput(request_id=ask.id), result_type=DecisionRecord)
        await wait_for(handle, lambda s: s.state == "paused")
        await wait_until(lambda: bool(agent.aborts))
        await handle.execute_update(names.UPDATE_JOB_RESUME, ResumeInput(add_usd=1), result_type=JobStatus)
        final = (await handle.result()).status
        plan = dev_env.client.get_workflow_handle(names.plan_workflow_id(final.plan))
        histories = {"job-approve-pause-resume": await handle.fetch_history(),
                     "plan-reports": await plan.fetch_history()}
        await plan.terminate("test over")
    # 0.3: a cancel request governs like kill (the agent aborted, the pending ask rejected).
    async with FakeAgent(Scenario().bash("pip install x").text("x")) as agent, Worker(
        dev_env.client, task_queue=task_queue
    ):
        handle = await start_job(dev_env.client, task_queue, agent.base_url)
        await wait_for(handle, lambda s: bool(s.pending))
        await handle.cancel()
        await wait_until(lambda: bool(agent.aborts) and bool(agent.replies))
        with contextlib.suppress(WorkflowFailureError):
            await handle.result()
        histories["job-cancelled"] = await handle.fetch_history()
    # 0.4: a worker that holds one job: the second shows queued (and is killed there); an agent
    # lost mid-ask shows agent-unreachable; the asks a kill ends are recorded "killed".
    config = dev_env.client.config()
    config["plugins"] = [JobGovPlugin(max_jobs=1)]
    small = Client(**config)
    async with (FakeAgent(Scenario().bash("pip install x").text("x")) as holding,
                FakeAgent(Scenario().bash("ls").text("x")) as waiting,
                Worker(small, task_queue=task_queue)):
        first = await start_job(small, task_queue, holding.base_url, job="first")
        await wait_for(first, lambda s: bool(s.pending))
        second = await start_job(small, task_queue, waiting.base_url, job="second")
        await wait_for(second, lambda s: s.state == "queued")
        await second.execute_update(names.UPDATE_JOB_KILL, KillInput(by="test"), result_type=JobStatus)
        await second.result()
        await holding.stop()
        await wait_for(first, lambda s: s.state == "agent-unreachable")
        await first.terminate("test over")  # a kill would retry its abort against the gone agent for minutes
        histories["job-queued-killed"] = await second.fetch_history()
    # 0.4: decisions by signal: one refused (an unknown id), one applied.
    async with FakeAgent(Scenario().bash("pip install x").text("x")) as agent, Worker(
        dev_env.client, task_queue=task_queue
    ):
        handle = await start_job(dev_env.client, task_queue, agent.base_url)
        ask = (await wait_for(handle, lambda s: bool(s.pending))).pending[0]
        await handle.signal(names.SIGNAL_JOB_APPROVE, ApproveInput(request_id="per_unknown", by="bot"))
        await wait_for(handle, lambda s: bool(s.refused))
        await handle.signal(names.SIGNAL_JOB_APPROVE, ApproveInput(request_id=ask.id, by="bot"))
        await handle.result()
        histories["job-approved-by-signal"] = await handle.fetch_history()
        histories["job-unreachable-killed"] = await first.fetch_history()
    # 0.5: an owned job (jobgov mc watch): its idle does not end it; its owner's end does.
    async with FakeAgent(Scenario().bash("ls").text("x")) as agent, Worker(dev_env.client, task_queue=task_queue):
        async with httpx.AsyncClient(base_url=agent.base_url) as http:
            session_id = (await http.post("/session", json={})).json()["id"]
            handle = await start_job(dev_env.client, task_queue, agent.base_url, prompt=None, session_id=session_id,
                                     owner="mission-control")
            await wait_for(handle, lambda s: s.state == "running")
            await http.post(f"/session/{session_id}/prompt_async", json={"parts": [{"type": "text", "text": "go"}]})
        await agent.wait_idle(session_id)
        await wait_for(handle, lambda s: s.steps == 2 and not s.pending)
        await handle.execute_update(names.UPDATE_JOB_END, EndInput(outcome="completed", by="mission-control"),
                                    result_type=JobStatus)
        assert (await handle.result()).status.state == "completed"
        histories["job-owned-ended"] = await handle.fetch_history()
    # 0.6: a decision recorded in the stream's heartbeat, not yet delivered, collected at the kill.
    async with SilentAbort(Scenario().bash("ls").text("x"), event_delay=0.5) as agent, held_worker(
        dev_env, task_queue
    ):
        handle = await start_job(dev_env.client, task_queue, agent.base_url)
        await wait_until(lambda: len(agent.replies) == 1, timeout=30)
        await handle.execute_update(names.UPDATE_JOB_KILL, KillInput(by="test"), result_type=JobStatus)
        assert [d.action for d in (await handle.result()).status.decisions] == ["auto-approve"]
        histories["job-killed-decision-collected"] = await handle.fetch_history()
    for name, history in histories.items():
        await _replayer().replay_workflow(history)
        if os.environ.get("JOBGOV_RECORD_HISTORIES"):
            folder = HISTORIES / __version__
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / f"{name}.json"
            if not target.exists():  # a release's recordings are kept as they were recorded
                target.write_text(history.to_json())
