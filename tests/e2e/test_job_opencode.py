"""The whole thing on the real agent: a JobWorkflow governs a real ``opencode serve`` 1.18.33.

A scripted OpenAI-compatible model on 127.0.0.1 makes opencode run three tools:
``ls`` (auto-approved by the policy in the stream activity), ``ls /`` (outside
the worktree: ask-user, approved here through the workflow's ``approve``
update) and a ``write`` inside the worktree (auto-approved). jobgov's token
and cost totals must equal opencode's own session totals.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from jobgov import names
from jobgov.opencode.credentials import AgentCredentials
from jobgov.temporal.payloads import ApproveInput
from jobgov.temporal.plugin import JobGovPlugin
from jobgov.temporal.state import DecisionRecord
from jobgov.testing import OpencodeServer, ScriptedModel, Turn, Usage
from tests.integration.jobs import start_job, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.temporal]

CONFIG = "permissions:\n  shell_command: {outside_worktree: ask-user}\n"


async def _session(base_url: str, session_id: str, steps: int) -> dict[str, Any]:
    """opencode's own session object, once its totals include every step (they land just after idle)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        deadline = time.monotonic() + 15
        while True:
            session: dict[str, Any] = (await http.get(f"/session/{session_id}")).json()
            messages = (await http.get(f"/session/{session_id}/message")).json()
            done = [m for m in messages if m["info"].get("role") == "assistant" and m["info"].get("time", {}).get("completed")]
            if len(done) >= steps or time.monotonic() > deadline:
                return session
            await asyncio.sleep(0.2)


def _list_then_write(project_dir: Path, content: str, ls: Usage | None = None,
                     root: Usage | None = None) -> ScriptedModel:
    """``ls`` (auto-approved), ``ls /`` (outside the worktree: a person decides), then a ``write``."""
    return ScriptedModel([
        Turn.call("bash", {"command": "ls", "description": "list"}, usage=ls),
        Turn.call("bash", {"command": "ls /", "description": "list root"}, usage=root),
        Turn.call("write", {"filePath": str(project_dir / "notes.txt"), "content": content}),
        Turn.say("Done."),
    ])


async def test_job_governs_real_opencode(
    opencode_binary: Path, project_dir: Path, tmp_path: Path, dev_env: WorkflowEnvironment, worker: Worker
) -> None:
    model = _list_then_write(project_dir, "governed\n", Usage(cached_tokens=200), Usage(reasoning_tokens=10))
    async with (
        model,
        OpencodeServer(opencode_binary, project_dir, model.openai_base_url, log_path=tmp_path / "oc.log") as server,
    ):
        handle = await start_job(dev_env.client, worker.task_queue, server.base_url, config=CONFIG,
                                 worktree=str(project_dir), prompt="List files, then write notes.txt.")
        pending = await wait_for(handle, lambda s: bool(s.pending), timeout=90)
        ask = pending.pending[0]
        assert (ask.permission, ask.patterns, ask.category) == ("bash", ["ls /"], "shell_command")
        record = await handle.execute_update(names.UPDATE_JOB_APPROVE, ApproveInput(request_id=ask.id, by="e2e"),
                                             result_type=DecisionRecord)
        assert record.action == "approve"
        result = (await asyncio.wait_for(handle.result(), timeout=90)).status
        session = await _session(server.base_url, result.session_id or "", steps=4)

    assert result.state == "completed", result.model_dump_json(indent=1)
    decided = {(d.permission, d.patterns[0]): (d.action, d.actor) for d in result.decisions if d.permission == "bash"}
    assert decided == {("bash", "ls"): ("auto-approve", "policy"), ("bash", "ls /"): ("approve", "e2e")}
    # In a git-less project opencode names the file relative to "/"; jobgov resolves it to the worktree.
    edits = [d for d in result.decisions if d.permission == "edit"]
    assert [(d.action, d.category, d.actor) for d in edits] == [("auto-approve", "file_edit", "policy")]
    assert edits[0].patterns[0].endswith("notes.txt")
    assert (project_dir / "notes.txt").read_text() == "governed\n"
    # jobgov's totals equal opencode's own session totals, field by field.
    tokens = session["tokens"]
    assert result.tokens == {
        "input": tokens["input"], "output": tokens["output"], "reasoning": tokens["reasoning"],
        "cache_read": tokens["cache"]["read"], "cache_write": tokens["cache"]["write"],
        "total": tokens["input"] + tokens["output"] + tokens["reasoning"] + tokens["cache"]["read"]
        + tokens["cache"]["write"],
    }
    assert result.steps == 4
    assert result.cost_usd == pytest.approx(session["cost"], abs=1e-12)
    assert result.cost_sources == ["override"]


async def test_an_agent_killed_mid_run_is_noticed_and_its_run_continued(
    opencode_binary: Path, project_dir: Path, tmp_path: Path, dev_env: WorkflowEnvironment, worker: Worker
) -> None:
    """opencode SIGKILLed while its run waits on an ask, then restarted on the same port and home:
    the job says the agent was unreachable, cancels the lost ask (never approved, never run), sees
    that the run ended unfinished, sends the continue prompt, and completes only after the rest of
    the work ran. (Before 0.3 it ended "completed" with the work undone.)"""
    model = _list_then_write(project_dir, "continued\n")  # the agent dies while `ls /` asks
    async with (
        model,
        OpencodeServer(opencode_binary, project_dir, model.openai_base_url, log_path=tmp_path / "oc.log") as server,
    ):
        handle = await start_job(dev_env.client, worker.task_queue, server.base_url, config=CONFIG,
                                 worktree=str(project_dir), prompt="List files, then write notes.txt.")
        lost_ask = (await wait_for(handle, lambda s: bool(s.pending), timeout=90)).pending[0]
        assert lost_ask.patterns == ["ls /"]
        await server.crash()
        down = await wait_for(handle, lambda s: s.agent is not None and not s.agent.reachable, timeout=30)
        assert down.state == "agent-unreachable"
        await server.start()
        result = (await asyncio.wait_for(handle.result(), timeout=120)).status

    assert result.state == "completed", result.model_dump_json(indent=1)
    assert any("ended unfinished" in w for w in result.warnings), result.warnings
    actions = {d.patterns[0]: d.action for d in result.decisions if d.permission == "bash"}
    assert actions == {"ls": "auto-approve", "ls /": "cancelled"}
    assert (project_dir / "notes.txt").read_text() == "continued\n"  # the work after the crash ran
    assert result.agent is not None and result.agent.reachable
    assert model.remaining == 0


async def test_a_password_protected_agent(opencode_binary: Path, project_dir: Path, tmp_path: Path,
                                          dev_env: WorkflowEnvironment, task_queue: str) -> None:
    """opencode with OPENCODE_SERVER_PASSWORD: a worker without the password fails the job at once,
    naming the agent and where the password goes; a worker with it (from a credentials file keyed by
    the agent's URL) governs the job; the password is nowhere in either job's history."""
    password = f"pw-{uuid.uuid4().hex}"
    model = ScriptedModel([Turn.call("bash", {"command": "ls", "description": "list"}), Turn.say("Done.")])
    async with (
        model,
        OpencodeServer(opencode_binary, project_dir, model.openai_base_url, log_path=tmp_path / "oc.log",
                       password=password) as server,
    ):
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"{server.base_url}/global/health")).status_code == 401  # it is protected

        no_password = _client_with(dev_env, AgentCredentials())
        async with Worker(no_password, task_queue=task_queue):
            refused = await start_job(no_password, task_queue, server.base_url, worktree=str(project_dir),
                                      plan="pw", job="without")
            with pytest.raises(WorkflowFailureError) as failure:
                await asyncio.wait_for(refused.result(), timeout=60)
            message = str(failure.value.cause)
            assert f"create a session on {server.base_url}: the agent answered HTTP 401" in message
            assert "OPENCODE_SERVER_PASSWORD" in message
            # An existing session, so the stream is the first to meet the password: the job fails too.
            async with httpx.AsyncClient(auth=httpx.BasicAuth("opencode", password)) as http:
                session = (await http.post(f"{server.base_url}/session", json={})).json()["id"]
            attached = await start_job(no_password, task_queue, server.base_url, worktree=str(project_dir),
                                       plan="pw", job="attached", session_id=session, prompt=None)
            ended = (await asyncio.wait_for(attached.result(), timeout=60)).status
        assert ended.state == "failed" and ended.error is not None
        assert ended.error.startswith(f"the event stream stopped: stream the events of {server.base_url}: "
                                      "the agent answered HTTP 401")

        credentials = tmp_path / "agents.toml"
        credentials.write_text(f'["{server.base_url}"]\npassword = "{password}"\n')
        with_password = _client_with(dev_env, AgentCredentials.from_environ({"JOBGOV_AGENT_CREDENTIALS": str(credentials)}))
        async with Worker(with_password, task_queue=task_queue):
            handle = await start_job(with_password, task_queue, server.base_url, worktree=str(project_dir),
                                     plan="pw", job="with")
            result = (await asyncio.wait_for(handle.result(), timeout=90)).status
        assert result.state == "completed", result.model_dump_json(indent=1)
        assert [(d.patterns, d.action) for d in result.decisions] == [(["ls"], "auto-approve")]
        for job in (refused, attached, handle):
            history = (await job.fetch_history()).to_json()
            assert password not in history


def _client_with(dev_env: WorkflowEnvironment, credentials: AgentCredentials) -> Client:
    config = dev_env.client.config()
    config["plugins"] = [JobGovPlugin(agent_credentials=credentials)]
    return Client(**config)
