"""``jobgov policy check|show`` and ``jobgov replay``: the permission policy offline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from jobgov.cli._common import fail, load_config_or_exit, print_json, read_text_arg
from jobgov.domain.asks import NormalizedAsk, PermissionAsk
from jobgov.domain.config import EffectivePolicy
from jobgov.domain.decide import decide_operation, evaluate
from jobgov.opencode import jsonsafe
from jobgov.policy.normalize import normalize

app = typer.Typer(help="Check and show the permission policy of a plan.", no_args_is_help=True)

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="The plan config (YAML). Safe defaults apply without it."),
]
JobOpt = Annotated[str | None, typer.Option("--job", "-j", help="Apply this job's overrides.")]


class RequestError(ValueError):
    """A permission request that cannot be read; the message names the source and field."""


def parse_request(source: str, text: str) -> PermissionAsk:
    """Parse a ``permission.asked`` event (or its ``properties``) from JSON text."""
    text = text.strip().removeprefix("data:").strip()
    try:
        data, problem = jsonsafe.loads(text)
    except json.JSONDecodeError as exc:
        raise RequestError(f"{source}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    if problem is not None:
        raise RequestError(f"{source}: the request {problem}")
    return ask_from_event(source, data)


def ask_from_event(source: str, data: Any) -> PermissionAsk:
    """Extract and validate the ask from an event, a ``/global/event`` frame or bare properties."""
    if isinstance(data, dict) and isinstance(data.get("payload"), dict):
        data = data["payload"]
    if isinstance(data, dict) and "type" in data:
        if data["type"] != "permission.asked":
            raise RequestError(f"{source}: type: expected 'permission.asked', got {data['type']!r}")
        data = data.get("properties")
    if not isinstance(data, dict):
        raise RequestError(f"{source}: expected a JSON object holding a permission.asked event")
    try:
        return PermissionAsk.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
        raise RequestError(f"{source}: {problems}") from None


@app.command()
def check(
    request: Annotated[
        str, typer.Argument(help="A JSON file holding a permission.asked event or its properties; - for stdin.")
    ],
    worktree: Annotated[Path, typer.Option("--worktree", "-w", help="The job's worktree.")],
    config: ConfigOpt = None,
    job: JobOpt = None,
) -> None:
    """Decide one permission request and print the decision as JSON."""
    plan = load_config_or_exit(config)
    source, text = read_text_arg(request)
    try:
        ask = parse_request(source, text)
    except RequestError as exc:
        fail(str(exc))
    policy = plan.policy_for(job)
    normalized = normalize(ask, str(worktree))
    decision = evaluate(policy, normalized)
    print_json({
        **decision.model_dump(mode="json", include={"action", "category", "reason", "rule", "subject"}),
        "segments": explain(policy, normalized),
    })


def explain(policy: EffectivePolicy, normalized: NormalizedAsk) -> list[dict[str, Any]]:
    """Every operation of an ask with its own verdict, so a person sees exactly which part decided."""
    rows = []
    for operation in normalized.operations:
        verdict = decide_operation(policy, operation)
        location = ("unknown" if operation.inside is None and operation.uncertain else
                    "n/a" if operation.inside is None else "inside" if operation.inside else "outside")
        rows.append({"text": operation.subject, "category": operation.category.value, "location": location,
                     "action": verdict.action.value, "reason": verdict.reason})
    return rows


@app.command()
def show(config: ConfigOpt = None, job: JobOpt = None) -> None:
    """Print the effective policy (defaults, plan, then the job's overrides) as JSON."""
    plan = load_config_or_exit(config)
    print_json({"plan": plan.plan, "job": job, **plan.policy_for(job).model_dump(mode="json", exclude_none=True)})


def register_replay(root: typer.Typer) -> None:
    """Add ``jobgov replay`` to the root command."""

    @root.command()
    def replay(
        events: Annotated[Path, typer.Argument(help="A recorded event stream (JSON lines).")],
        worktree: Annotated[Path, typer.Option("--worktree", "-w", help="The job's worktree.")],
        config: ConfigOpt = None,
        job: JobOpt = None,
        as_json: Annotated[bool, typer.Option("--json", metavar="", help="Print JSON lines.")] = False,
    ) -> None:
        """Print what the policy would have decided for each permission.asked in a recorded stream."""
        from jobgov.opencode.events import ToolNames, read_events

        plan = load_config_or_exit(config)
        policy = plan.policy_for(job)
        source, text = read_text_arg(str(events))
        stream, _skipped, warnings = read_events(text.splitlines())
        for warning in warnings:
            typer.echo(f"jobgov: {source}: {warning}", err=True)
        tools = ToolNames()
        for event in stream:
            tools.learn(event)
            if event.get("type") != "permission.asked":
                continue
            try:
                ask = ask_from_event(source, event)
            except RequestError as exc:
                typer.echo(f"jobgov: {exc}", err=True)
                continue
            tool = tools.of(ask)
            decision = evaluate(policy, normalize(ask, str(worktree), tool_name=tool))
            row = {"request_id": ask.id, "permission": ask.permission, "patterns": ask.patterns,
                   **decision.model_dump(mode="json", include={"action", "category", "reason", "rule"})}
            if as_json:
                typer.echo(json.dumps(row))
            else:
                typer.echo(f"{ask.id}  {ask.permission:<18} {decision.action.value:<12} {decision.reason}")
