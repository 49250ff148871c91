"""The watcher's own robustness, without Temporal: a stand-in client, state directories of the test's own."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import pytest
from temporalio.service import RPCError, RPCStatusCode

from jobgov.missioncontrol import watch
from jobgov.missioncontrol.state import RepoState, read_repo
from jobgov.missioncontrol.watch import Watcher
from tests.helpers import MC_FIXTURES


class _Handle:
    async def describe(self) -> Any:
        raise RPCError("workflow not found", RPCStatusCode.NOT_FOUND, b"")


class _Temporal:
    def get_workflow_handle(self, workflow_id: str) -> _Handle:
        return _Handle()

    def list_workflows(self, query: str) -> Any:
        raise RuntimeError("the listing broke")  # not an RPCError: still only a warning


class _Client:
    """Answers what the watcher asks of JobGovClient; records the jobs it starts."""

    def __init__(self) -> None:
        self.temporal = _Temporal()
        self.started: list[tuple[str, str]] = []

    async def start_job(self, plan: str, job: str, *args: Any, **kwargs: Any) -> str:
        self.started.append((plan, job))
        return f"jobgov/{plan}/{job}"


async def test_a_bug_in_one_repositorys_pass_does_not_stop_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    for repo in ("broken", "fine"):
        shutil.copytree(MC_FIXTURES / "myrepo", tmp_path / repo)

    def read(state_dir: Path) -> RepoState:
        if state_dir.parent.name == "broken":
            raise ZeroDivisionError("a bug")
        return read_repo(state_dir)

    monkeypatch.setattr(watch, "read_repo", read)
    client = _Client()
    watcher = Watcher(client, tmp_path)  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO, logger="jobgov.mc"):
        await watcher.sync()
        await watcher.sync()
    # The fine repository's serve-mode job is governed; the bug is logged once, with its traceback.
    assert client.started == [("plan-7f3a", "fix-auth")]
    bugs = [r for r in caplog.records if "failed; trying again" in r.getMessage()]
    assert len(bugs) == 1 and bugs[0].exc_info is not None and "broken" in bugs[0].getMessage()
    assert sum("cannot list the running jobs (RuntimeError: the listing broke)" in r.getMessage()
               for r in caplog.records) == 1


async def test_a_job_that_cannot_be_started_is_tried_again_with_backoff(tmp_path: Path) -> None:
    from jobgov.client import UnreachableError

    shutil.copytree(MC_FIXTURES / "myrepo", tmp_path / "myrepo")
    client = _Client()
    calls = 0

    async def refuse(*args: Any, **kwargs: Any) -> str:
        nonlocal calls
        calls += 1
        raise UnreachableError("the agent at http://127.0.0.1:14101 is not reachable")

    client.start_job = refuse  # type: ignore[method-assign]
    watcher = Watcher(client, tmp_path)  # type: ignore[arg-type]
    for _ in range(5):
        await watcher.sync()
    assert calls == 1  # the next try waits RETRY_FIRST seconds, then longer
    assert any("cannot govern Mission Control job fix-auth yet" in said for said in watcher.said().values())
    jobs = json.loads((tmp_path / "myrepo" / "state" / "jobs.json").read_text())
    assert jobs["jobs"][0]["status"] == "running"  # the state files are only read, never written
