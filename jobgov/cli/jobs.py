"""``jobgov job``, ``jobs``, ``approve``, ``deny``, ``resume``, ``kill`` and ``plan``: jobs on Temporal.

Every command is a thin layer over :class:`~jobgov.client.JobGovClient` (it
never imports worker-side modules). Input is checked before connecting, so
bad input fails fast with exit status 2 even when Temporal is down; runtime
failures (Temporal unreachable, unknown job, a decision the workflow rejects)
exit 1. ``--json`` prints the API's models as JSON.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from jobgov import names
from jobgov.cli._common import fail, load_config_or_exit, print_json
from jobgov.client import (
    InputError,
    JobGovClient,
    JobGovError,
    JobsOverview,
    build_job_input,
    check_name,
    default_actor,
)
from jobgov.configfile import ConfigError
from jobgov.domain.budget import BudgetView
from jobgov.temporal.payloads import JobStatus, PlanStatus
from jobgov.temporal.state import DecisionRecord

#: Exit status for runtime failures (bad input exits 2, see ``_common.EXIT_BAD_INPUT``).
EXIT_RUNTIME = 1

job_app = typer.Typer(help="Start and inspect governed jobs.", no_args_is_help=True)
plan_app = typer.Typer(help="A plan: its jobs, totals and budget.", no_args_is_help=True)

AddressOpt = Annotated[str | None, typer.Option(
    "--address", envvar="TEMPORAL_ADDRESS", show_envvar=True,
    help="Temporal's host:port, over the client config profile (default localhost:7233).")]
NamespaceOpt = Annotated[str | None, typer.Option(
    "--namespace", envvar="TEMPORAL_NAMESPACE",
    help="Temporal namespace, over the client config profile (default: default).")]
PlanOpt = Annotated[str | None, typer.Option("--plan", "-p", help="The job's plan (needed when the job name is "
                                                                   "running in several plans).")]
JsonOpt = Annotated[bool, typer.Option("--json", metavar="", help="Print JSON.")]
ByOpt = Annotated[str | None, typer.Option("--by", help="Who decides (default: $USER).")]
AddUsdOpt = Annotated[float | None, typer.Option("--add-usd", help="Raise the USD limit by this much first.")]
AddTokensOpt = Annotated[int | None, typer.Option("--add-tokens", help="Raise the token limit by this much first.")]

_T = TypeVar("_T")
_out = Console(highlight=False, soft_wrap=True)


def _run(address: str | None, namespace: str | None, call: Callable[[JobGovClient], Awaitable[_T]]) -> _T:
    """Connect, run ``call``, and turn jobgov's errors into messages and exit statuses."""

    async def go() -> _T:
        client = await JobGovClient.connect(address, namespace)
        return await call(client)

    try:
        return asyncio.run(go())
    except (InputError, ConfigError) as exc:
        fail(str(exc))
    except JobGovError as exc:
        fail(str(exc), EXIT_RUNTIME)


def _check(**named: str | None) -> None:
    """Check plan/job names before connecting (exit 2)."""
    for kind, value in named.items():
        if value is not None:
            try:
                check_name(kind, value)
            except InputError as exc:
                fail(str(exc))


def _positive(**values: float | None) -> None:
    for flag, value in values.items():
        if value is not None and value <= 0:
            fail(f"--{flag.replace('_', '-')} must be greater than 0, got {value:g}")


# ---------------------------------------------------------------------------- job start / status


@job_app.command("start")
def start(
    agent: Annotated[str, typer.Option("--agent", help="The agent's base URL (opencode serve).")],
    worktree: Annotated[str, typer.Option("--worktree", help="The job's worktree, as the agent sees it.")],
    plan: Annotated[str, typer.Option("--plan", "-p", help="The plan the job belongs to.")],
    job: Annotated[str, typer.Option("--job", "-j", help="The job's name, unique in the plan.")],
    session: Annotated[str | None, typer.Option("--session", help="Govern this existing session.")] = None,
    prompt: Annotated[str | None, typer.Option("--prompt", help="Create a session and send it this prompt.")] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="The plan config (YAML).")] = None,
    task_queue: Annotated[str, typer.Option("--task-queue", envvar="JOBGOV_TASK_QUEUE",
                                            help="The worker's task queue.")] = names.DEFAULT_TASK_QUEUE,
    agent_queue: Annotated[str | None, typer.Option(
        "--agent-queue", help="The task queue of the workers on the agent's host (jobgov worker --agent-queue): "
                              "the job's stream, replies, prompts and aborts run there.")] = None,
    no_agent_check: Annotated[bool, typer.Option(
        "--no-agent-check", metavar="", help="Start without checking that the agent answers (and has --session): "
                                             "for agents only the workers can reach.")] = False,
    address: AddressOpt = None,
    namespace: NamespaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Start governing a job: a durable workflow that watches the agent's session."""
    plan_config = load_config_or_exit(config)
    worktree = os.path.abspath(worktree)
    try:
        build_job_input(plan, job, agent, worktree, session, prompt, plan_config, agent_queue)
    except InputError as exc:
        fail(str(exc))
    workflow_id = _run(address, namespace, lambda c: c.start_job(
        plan, job, agent, worktree, session_id=session, prompt=prompt, task_queue=task_queue, config=plan_config,
        check_agent=not no_agent_check, agent_queue=agent_queue))
    if as_json:
        print_json({"workflow_id": workflow_id, "plan": plan, "job": job, "task_queue": task_queue})
        return
    typer.echo(f"started job {job} of plan {plan} (workflow {workflow_id}, task queue {task_queue})")
    typer.echo(f"follow it with: jobgov job status {job} --plan {plan}")


@job_app.command("status")
def status(
    job: Annotated[str, typer.Argument(help="The job's name.")],
    plan: PlanOpt = None,
    address: AddressOpt = None,
    namespace: NamespaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a job: state, tokens, cost, budget, pending asks and decisions."""
    _check(job=job, plan=plan)
    result = _run(address, namespace, lambda c: c.job_status(job, plan))
    if as_json:
        print_json(result.model_dump(mode="json"))
    else:
        print_status(result)


def _money(value: float) -> str:
    return f"${value:.4f}"


def _budget_line(view: BudgetView | None) -> str | None:
    if view is None or view.limit is None:
        return None
    parts = []
    if view.limit.usd is not None:
        parts.append(f"{_money(view.spent_usd)} of ${view.limit.usd:g}")
    if view.limit.tokens is not None:
        parts.append(f"{view.spent_tokens:,} of {view.limit.tokens:,} tokens")
    return ", ".join(parts) + f" (on exceed: {view.limit.on_exceed})" + (" — EXCEEDED" if view.exceeded else "")


def print_status(s: JobStatus) -> None:
    """A job's status for people."""
    _out.print(Text.assemble((f"job {s.job}", "bold"), f" · plan {s.plan} · ", (s.state.value, "bold")))
    _out.print(Text(f"workflow {s.workflow_id} · session {s.session_id or '-'} · agent {s.agent_url} · "
                    f"worktree {s.worktree}"))
    t = s.tokens
    counts = ", ".join(f"{label} {t.get(key, 0):,}" for key, label in (
        ("input", "input"), ("output", "output"), ("reasoning", "reasoning"),
        ("cache_read", "cache read"), ("cache_write", "cache write"),
    ))  # fmt: skip
    _out.print(Text(f"cost {_money(s.cost_usd)} (agent says {_money(s.agent_cost_usd)}) · {t.get('total', 0):,} tokens "
                    f"({counts}) · steps {s.steps}"))
    budget = _budget_line(s.budget)
    if budget:
        _out.print(Text(f"budget: {budget}"))
    if s.queued:
        _out.print(Text(f"queued: {s.queued}"))
    if s.paused_reason:
        _out.print(Text(f"paused: {s.paused_reason} (resume with: jobgov resume {s.job} --plan {s.plan})"))
    if s.error:
        _out.print(Text(f"error: {s.error}"))
    if s.ended and s.ended != s.error:
        _out.print(Text(f"ended: {s.ended}"))
    if s.owner and not s.state.finished:
        _out.print(Text(f"owned by {s.owner}: it ends the job (its session going idle does not)"))
    if s.agent is not None and not s.agent.reachable:
        _out.print(Text(f"agent unreachable since {s.agent.since:%Y-%m-%d %H:%M:%S} UTC: {s.agent.error or '?'} "
                        "(still retrying)"))
    for warning in s.warnings[-5:]:
        _out.print(Text(f"warning: {warning}"))
    if s.pending:
        table = Table(title="pending asks", title_justify="left")
        table.add_column("id", no_wrap=True)  # whole, to be copied into `jobgov approve`
        for column in ("permission", "patterns", "category", "reason"):
            table.add_column(column)
        for p in s.pending:
            table.add_row(*(Text(v) for v in (p.id, p.permission, " ".join(p.patterns), p.category.value, p.reason)))
        _out.print(table)
        _out.print(Text(f"decide with: jobgov approve {s.job} ID [--always] | jobgov deny {s.job} ID --reason TEXT"))
    if s.decisions:
        table = Table(title=f"decisions (last {min(len(s.decisions), 10)} of {len(s.decisions)})", title_justify="left")
        for column in ("at", "request", "permission", "action", "actor", "reason"):
            table.add_column(column, no_wrap=column in ("at", "request"))
        for d in s.decisions[-10:]:
            table.add_row(*(Text(v) for v in (d.at.strftime("%H:%M:%S"), d.request_id, d.permission, d.action,
                                               d.actor, d.reason)))
        _out.print(table)


# ---------------------------------------------------------------------------- decisions


def _print_decision(verb: str, job: str, record: DecisionRecord, as_json: bool) -> None:
    if as_json:
        print_json(record.model_dump(mode="json"))
    else:
        typer.echo(f"{verb} ask {record.request_id} of job {job} ({record.permission} "
                   f"{' '.join(record.patterns)}) as {record.action}, by {record.actor}")


def _print_job(verb: str, result: JobStatus, as_json: bool) -> None:
    if as_json:
        print_json(result.model_dump(mode="json"))
    else:
        typer.echo(f"{verb} job {result.job} of plan {result.plan}: now {result.state.value}")


def register(app: typer.Typer) -> None:
    """Add ``job``, ``jobs``, ``approve``, ``deny``, ``resume``, ``kill`` and ``plan`` to the root command."""
    app.add_typer(job_app, name="job")
    app.add_typer(plan_app, name="plan")

    @app.command("jobs")
    def jobs(plan: Annotated[str | None, typer.Option("--plan", "-p", help="Only this plan's jobs.")] = None,
             address: AddressOpt = None, namespace: NamespaceOpt = None, as_json: JsonOpt = False) -> None:
        """List jobs (newest run of each) with their plan's totals."""
        _check(plan=plan)
        result = _run(address, namespace, lambda c: c.overview(plan))
        if as_json:
            print_json(result.model_dump(mode="json"))
        else:
            print_overview(result)

    @app.command("approve")
    def approve(
        job: Annotated[str, typer.Argument(help="The job's name.")],
        request_id: Annotated[str, typer.Argument(help="The pending ask's id (see `jobgov job status`).")],
        always: Annotated[bool, typer.Option("--always", metavar="", help="Also approve this exact request for "
                                                                         "the rest of the job.")] = False,
        by: ByOpt = None,
        reason: Annotated[str | None, typer.Option("--reason", help="Why (kept in the audit trail).")] = None,
        plan: PlanOpt = None, address: AddressOpt = None, namespace: NamespaceOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Approve a pending ask once (or always, for this job)."""
        _check(job=job, plan=plan)
        record = _run(address, namespace, lambda c: c.approve(job, request_id, always=always,
                                                                by=by or default_actor(), reason=reason, plan=plan))
        _print_decision("approved", job, record, as_json)

    @app.command("deny")
    def deny(
        job: Annotated[str, typer.Argument(help="The job's name.")],
        request_id: Annotated[str, typer.Argument(help="The pending ask's id (see `jobgov job status`).")],
        reason: Annotated[str | None, typer.Option("--reason", help="Sent to the agent, which carries on "
                                                                    "without it.")] = None,
        by: ByOpt = None, plan: PlanOpt = None, address: AddressOpt = None, namespace: NamespaceOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Deny a pending ask; the agent is told why and carries on."""
        _check(job=job, plan=plan)
        record = _run(address, namespace, lambda c: c.deny(job, request_id, by=by or default_actor(),
                                                             reason=reason, plan=plan))
        _print_decision("denied", job, record, as_json)

    @app.command("resume")
    def resume(
        job: Annotated[str, typer.Argument(help="The job's name.")],
        add_usd: AddUsdOpt = None, add_tokens: AddTokensOpt = None, by: ByOpt = None, plan: PlanOpt = None,
        address: AddressOpt = None, namespace: NamespaceOpt = None, as_json: JsonOpt = False,
    ) -> None:
        """Resume a paused job, optionally raising its budget first."""
        _check(job=job, plan=plan)
        _positive(add_usd=add_usd, add_tokens=add_tokens)
        result = _run(address, namespace, lambda c: c.resume(job, add_usd=add_usd, add_tokens=add_tokens,
                                                               by=by or default_actor(), plan=plan))
        _print_job("resumed", result, as_json)

    @app.command("kill")
    def kill(
        job: Annotated[str, typer.Argument(help="The job's name.")],
        reason: Annotated[str | None, typer.Option("--reason", help="Why (kept in the audit trail).")] = None,
        by: ByOpt = None, plan: PlanOpt = None, address: AddressOpt = None, namespace: NamespaceOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Abort the agent and end the job as killed."""
        _check(job=job, plan=plan)
        result = _run(address, namespace, lambda c: c.kill(job, by=by or default_actor(), reason=reason, plan=plan))
        _print_job("killed", result, as_json)


def print_overview(result: JobsOverview) -> None:
    """``jobgov jobs`` for people: one row per job, then one per plan."""
    if not result.jobs:
        _out.print("no jobs")
    table = Table()
    for column, justify in (("plan", "left"), ("job", "left"), ("state", "left"), ("cost", "right"),
                            ("tokens", "right"), ("pending", "right"), ("steps", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for r in result.jobs:
        table.add_row(Text(r.plan), Text(r.job), Text(r.state), _money(r.cost_usd), f"{r.tokens:,}",
                      str(r.pending), "-" if r.steps is None else str(r.steps))
    table.add_section()
    for p in result.plans:
        state = "paused" if p.paused else ("-" if p.paused is None else "running")
        table.add_row(Text(p.plan, style="bold"), Text(f"{p.jobs} jobs", style="bold"), Text(state, style="bold"),
                      _money(p.cost_usd), f"{p.tokens:,}", str(p.pending), "")
    if result.jobs:
        _out.print(table)
    for p in result.plans:
        budget = _budget_line(p.budget)
        if budget:
            _out.print(Text(f"plan {p.plan} budget: {budget}"))


# ---------------------------------------------------------------------------- plan


@plan_app.command("status")
def plan_status(
    plan: Annotated[str, typer.Argument(help="The plan's name.")],
    address: AddressOpt = None, namespace: NamespaceOpt = None, as_json: JsonOpt = False,
) -> None:
    """Show a plan: its jobs, totals and budget."""
    _check(plan=plan)
    result = _run(address, namespace, lambda c: c.plan_status(plan))
    if as_json:
        print_json(result.model_dump(mode="json"))
    else:
        print_plan(result)


@plan_app.command("resume")
def plan_resume(
    plan: Annotated[str, typer.Argument(help="The plan's name.")],
    add_usd: AddUsdOpt = None, add_tokens: AddTokensOpt = None, by: ByOpt = None,
    address: AddressOpt = None, namespace: NamespaceOpt = None, as_json: JsonOpt = False,
) -> None:
    """Resume every job of a paused plan, optionally raising the plan budget first."""
    _check(plan=plan)
    _positive(add_usd=add_usd, add_tokens=add_tokens)
    result = _run(address, namespace, lambda c: c.plan_resume(plan, add_usd=add_usd, add_tokens=add_tokens,
                                                                by=by or default_actor()))
    if as_json:
        print_json(result.model_dump(mode="json"))
    else:
        typer.echo(f"resumed plan {plan}")
        print_plan(result)


def print_plan(s: PlanStatus) -> None:
    """A plan's status for people."""
    _out.print(Text.assemble((f"plan {s.plan}", "bold"), " · ", ("paused" if s.paused else "running", "bold"),
                             f" · {_money(s.cost_usd)} · {s.tokens:,} tokens · {len(s.jobs)} jobs"))
    budget = _budget_line(s.budget)
    if budget:
        _out.print(Text(f"budget: {budget}"))
    if s.jobs:
        table = Table()
        for column in ("job", "state", "cost", "tokens"):
            table.add_column(column)
        for r in sorted(s.jobs, key=lambda r: r.job):
            table.add_row(Text(r.job), Text(r.state.value), _money(float(r.cost_usd)), f"{r.tokens:,}")
        _out.print(table)
    if s.paused:
        _out.print(Text(f"resume with: jobgov plan resume {s.plan} [--add-usd X] [--add-tokens N]"))
