"""Every client command exits 0, 1 or 2 as documented, every time (issue 10 §2).

Each command runs 25 times as a real ``jobgov`` subprocess, against a live dev server with a
job waiting for a person and against an address where nothing listens. Before the fix, 10-40 %
of runs printed the right answer and then aborted in interpreter finalization
(``Fatal Python error: PyGILState_Release``, exit 134 or 139).
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from jobgov.client import JobGovClient
from jobgov.devserver import DevServer, free_port
from jobgov.run import run_worker
from jobgov.testing import FakeAgent, Scenario

pytestmark = pytest.mark.temporal

RUNS = 25
JOBGOV = [sys.executable, "-c", "from jobgov.cli import main; main()"]


@pytest_asyncio.fixture(scope="module")
async def live(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[str, str, str]]:
    """A dev server, a worker and one job waiting for a person: (address, plan, job)."""
    root = tmp_path_factory.mktemp("exit")
    plan, job = f"p{uuid.uuid4().hex[:8]}", "waiting"
    queue = f"jobgov-test-{uuid.uuid4()}"
    async with DevServer(port=0, ui_port=None, db=root / "temporal.db") as server:
        stop = asyncio.Event()
        worker = asyncio.create_task(run_worker(server.address, task_queue=queue, stop=stop, handle_signals=False))
        try:
            async with FakeAgent(Scenario().bash("npm install left-pad").text("done"), directory=str(root)) as agent:
                client = await JobGovClient.connect(server.address)
                await client.start_job(plan=plan, job=job, agent_url=agent.base_url, worktree=str(root),
                                       prompt="go", task_queue=queue)
                deadline = time.monotonic() + 60
                while not (await client.job_status(job, plan)).pending:
                    assert time.monotonic() < deadline, "the job never asked"
                    await asyncio.sleep(0.1)
                yield server.address, plan, job
        finally:
            stop.set()
            await asyncio.wait_for(worker, 30)


def _commands(plan: str, job: str, agent: str) -> dict[str, tuple[list[str], int]]:
    """Each client command, with the exit status it must give against the live server."""
    return {
        "jobs": (["jobs", "--plan", plan], 0),
        "job status": (["job", "status", job, "--plan", plan, "--json"], 0),
        "job start (agent unreachable)": (["job", "start", "--agent", agent, "--worktree", "/tmp", "--plan", plan,
                                         "--job", job, "--prompt", "go"], 1),
        "approve (no such ask)": (["approve", job, "per_bogus", "--plan", plan], 1),
        "deny (no such ask)": (["deny", job, "per_bogus", "--plan", plan], 1),
        "resume (not paused)": (["resume", job, "--plan", plan], 1),
        "kill (no such job)": (["kill", "ghost", "--plan", plan], 1),
        "plan status": (["plan", "status", plan], 0),
        "job status (bad name)": (["job", "status", "bad name!"], 2),
    }


async def _run(args: list[str], address: str, gate: asyncio.Semaphore) -> tuple[int, str]:
    async with gate:
        proc = await asyncio.create_subprocess_exec(
            *JOBGOV, *args, "--address", address, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        assert proc.returncode is not None
        return proc.returncode, (out + err).decode(errors="replace")


@pytest.mark.timeout(600)
async def test_every_client_command_exits_as_documented_every_time(live: tuple[str, str, str]) -> None:
    address, plan, job = live
    unreachable = f"127.0.0.1:{free_port()}"
    gate = asyncio.Semaphore(4)
    runs = []
    for name, (args, live_code) in _commands(plan, job, "http://127.0.0.1:1").items():
        # Bad input is refused before connecting: 2 whether or not Temporal is there.
        down_code = live_code if live_code == 2 else 1
        for _ in range(RUNS):
            runs.append((name, "live", live_code, _run(args, address, gate)))
            runs.append((name, "unreachable", down_code, _run(args, unreachable, gate)))
    results = await asyncio.gather(*(coro for *_, coro in runs))
    wrong = [f"{name} against the {where} server: exit {code} (expected {expected})\n{output[-600:]}"
             for (name, where, expected, _), (code, output) in zip(runs, results, strict=True) if code != expected]
    assert not wrong, f"{len(wrong)} of {len(runs)} runs exited wrongly:\n" + "\n".join(wrong[:5])
    assert not any("Fatal Python error" in output for _, output in results)
    # The answers themselves: the job is listed and waiting; the unreachable address is named.
    by_key = {(name, where): output for (name, where, *_), (_, output) in zip(runs, results, strict=True)}
    assert "awaiting-approval" in by_key[("job status", "live")]
    assert f"Temporal is not reachable at {unreachable}" in by_key[("jobs", "unreachable")]
    assert len(runs) == 2 * RUNS * len(_commands(plan, job, ""))

