"""``jobgov usage``: tokens, cost and budget outcomes of a recorded event stream.

The command replays the stream through the same ledger, pricing and budget
functions a job's workflow uses, in the same order: count each new step,
price every step that needs a (re)price, then apply the change to the
session's budget (the job limit) and to the total (the plan limit).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from jobgov.cli._common import load_config_or_exit, print_json, read_text_arg
from jobgov.domain.budget import BudgetLimit, BudgetOutcome, BudgetState, apply
from jobgov.domain.config import PlanConfig
from jobgov.domain.usage import StepDelta, UsageTotals
from jobgov.opencode.events import Event, read_events
from jobgov.opencode.pricing import price_step
from jobgov.opencode.usage import UsageLedger


@dataclass
class _BudgetTrack:
    """One budget followed through the replay, with what happened at which step."""

    state: BudgetState
    steps: int = 0
    happenings: list[dict[str, Any]] = field(default_factory=list)

    def spend(self, part_id: str, delta: StepDelta) -> None:
        if delta.new:
            self.steps += 1
        self.state, outcome = apply(self.state, delta.usd, delta.tokens)
        if outcome.action != "continue":
            self.happenings.append(_happening(self.steps, part_id, outcome))

    def report(self) -> dict[str, Any]:
        exceeded = next((h for h in self.happenings if h["exceeded"]), None)
        limit = self.state.limit
        return {
            "limit": limit.model_dump(mode="json") if limit is not None else None,
            "spent_usd": float(self.state.spent_usd),
            "spent_tokens": self.state.spent_tokens,
            "events": self.happenings,
            "action": exceeded["action"] if exceeded else None,
            "exceeded_at_step": exceeded["step"] if exceeded else None,
        }


def _happening(step: int, part_id: str, outcome: BudgetOutcome) -> dict[str, Any]:
    return {
        "step": step,
        "part_id": part_id,
        "warnings": [{"dimension": w.dimension, "threshold": w.threshold} for w in outcome.warnings],
        "exceeded": outcome.exceeded,
        "action": outcome.action,
    }


@dataclass
class Replay:
    """The result of replaying a stream: the ledger and the budgets followed."""

    ledger: UsageLedger
    job_limit: BudgetLimit | None
    sessions: dict[str, _BudgetTrack]
    plan: _BudgetTrack


def replay_usage(events: list[Event], config: PlanConfig, job: str | None = None) -> Replay:
    """Replay events through the ledger, pricing and budgets, as a job's workflow does.

    Args:
        events: Inner opencode events, in stream order.
        config: The plan config (its ``pricing`` and ``budget`` sections).
        job: The job whose budget overrides apply to every session.

    Returns:
        The filled ledger, each session's budget track and the plan's.
    """
    ledger = UsageLedger()
    job_limit: BudgetLimit | None = config.budget.for_job(job)
    sessions: dict[str, _BudgetTrack] = {}
    plan = _BudgetTrack(BudgetState(limit=config.budget.plan))
    for event in events:
        ledger.add_event(event)
        for step in ledger.pending_pricing():
            delta = ledger.count_cost(price_step(step, config.pricing))
            track = sessions.setdefault(step.session_id, _BudgetTrack(BudgetState(limit=job_limit)))
            track.spend(step.part_id, delta)
            plan.spend(step.part_id, delta)
    return Replay(ledger=ledger, job_limit=job_limit, sessions=sessions, plan=plan)


def _cost_source(totals: UsageTotals) -> str | None:
    return "+".join(totals.cost_sources) or None


def _totals_json(totals: UsageTotals) -> dict[str, Any]:
    return {
        "tokens": totals.tokens.as_dict(),
        "cost_usd": float(totals.cost_usd),
        "agent_cost_usd": float(totals.agent_cost_usd),
        "steps": totals.steps,
    }


def usage_report(result: Replay, skipped: int, with_budget: bool) -> dict[str, Any]:
    """The ``--json`` document of a replay."""
    sessions: dict[str, Any] = {}
    for session_id, totals in result.ledger.sessions().items():
        entry = {**_totals_json(totals), "cost_source": _cost_source(totals)}
        if with_budget:
            track = result.sessions.get(session_id) or _BudgetTrack(BudgetState(limit=result.job_limit))
            entry["budget"] = track.report()
        sessions[session_id] = entry
    total = _totals_json(result.ledger.totals())
    if with_budget:
        total["budget"] = result.plan.report()
    return {"sessions": sessions, "total": total, "skipped": skipped}


def _usd(value: float) -> str:
    return f"${value:.6f}"


def _print_table(report: dict[str, Any], console: Console) -> None:
    table = Table(title="Usage")
    for column in ("Session", "Steps", "Input", "Output", "Reasoning", "Cache read", "Cache write", "Total"):
        table.add_column(column, justify="left" if column == "Session" else "right")
    table.add_column("Cost", justify="right")
    table.add_column("Agent cost", justify="right")
    table.add_column("Source")
    rows = [(sid, entry, entry["cost_source"] or "-") for sid, entry in report["sessions"].items()]
    rows.append(("total", report["total"], ""))
    for index, (name, entry, source) in enumerate(rows):
        tokens = entry["tokens"]
        table.add_row(
            name,
            str(entry["steps"]),
            *(f"{tokens[k]:,}" for k in ("input", "output", "reasoning", "cache_read", "cache_write", "total")),
            _usd(entry["cost_usd"]),
            _usd(entry["agent_cost_usd"]),
            source,
            end_section=index == len(rows) - 2,
        )
    console.print(table)
    budgets = [(sid, e["budget"]) for sid, e in report["sessions"].items() if "budget" in e]
    if "budget" in report["total"]:
        budgets.append(("plan (all sessions)", report["total"]["budget"]))
    for name, budget in budgets:
        if budget["limit"] is None:
            console.print(f"{name}: no budget limit")
            continue
        if not budget["events"]:
            console.print(f"{name}: within budget")
        for happening in budget["events"]:
            warned = ", ".join(f"{w['dimension']} {w['threshold']:.0%}" for w in happening["warnings"])
            parts = [f"warning at {warned}"] if warned else []
            if happening["exceeded"]:
                parts.append(f"limit reached -> {happening['action']}")
            console.print(f"{name}: step {happening['step']} ({happening['part_id']}): {'; '.join(parts)}")
    if report["skipped"]:
        console.print(f"skipped {report['skipped']} unreadable line(s) or step(s)")


def register(app: typer.Typer) -> None:
    """Add ``jobgov usage`` to the root command."""

    @app.command("usage")
    def usage(
        events: Annotated[str, typer.Argument(help="A recorded event stream (JSON lines); - for stdin.")],
        config: Annotated[
            Path | None,
            typer.Option("--config", "-c", help="The plan config (YAML): pricing overrides and budget."),
        ] = None,
        job: Annotated[str | None, typer.Option("--job", "-j", help="Apply this job's budget overrides.")] = None,
        as_json: Annotated[bool, typer.Option("--json", metavar="", help="Print JSON instead of a table.")] = False,
    ) -> None:
        """Print per-session and total tokens and cost of a recorded stream, and budget outcomes."""
        plan = load_config_or_exit(config)
        source, text = read_text_arg(events)
        stream, skipped, warnings = read_events(text.splitlines())
        for warning in warnings:
            typer.echo(f"jobgov: {source}: {warning}", err=True)
        result = replay_usage(stream, plan, job)
        if result.ledger.invalid_events:
            typer.echo(f"jobgov: {source}: {result.ledger.invalid_events} unreadable step-finish event(s)", err=True)
        report = usage_report(result, skipped + result.ledger.invalid_events, "budget" in plan.model_fields_set)
        if as_json:
            print_json(report)
        else:
            console = Console()
            if not console.is_terminal:
                console = Console(width=200)  # Pipes and files get whole session ids.
            _print_table(report, console)
