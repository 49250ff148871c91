"""Decide a normalised permission ask: a pure function, shared by every caller.

Precedence is **strictest wins** (deny > ask-user > auto-approve) across all
operations of the ask (every shell segment, every category, every path) and
all matching rules. Rules only ever make a decision stricter. An operation the
policy cannot judge (unparsable command, no path) is at least ask-user.

The stream activity calls :func:`decide` to act at once on auto-approve and
deny; the job book calls it again on the recorded :class:`NormalizedAsk` to
re-check, and to decide what the stream left to it. Both use the reply it
gives, so what the agent is told never depends on who decided.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Literal

from jobgov.domain.asks import (
    LOCATED_CATEGORIES,
    STRICTNESS,
    Action,
    Category,
    Decision,
    NormalizedAsk,
    Operation,
    strictest,
)
from jobgov.domain.config import EffectivePolicy, Rule


def _where(operation: Operation) -> str:
    if operation.category not in LOCATED_CATEGORIES:
        return ""
    if operation.inside is None:
        return " (location unknown)"
    return " inside the worktree" if operation.inside else " outside the worktree"


def _matches(rule: Rule, operation: Operation) -> bool:
    if rule.category is not None and rule.category is not operation.category:
        return False
    return any(fnmatchcase(text, rule.match) for text in (operation.subject, *operation.alternates))


def decide_operation(policy: EffectivePolicy, operation: Operation) -> Decision:
    """The decision for one operation: its category's action, then any stricter rule."""
    if operation.unmodelled is not None and not policy.trusts(operation.unmodelled):
        # Closed world: a command jobgov does not model is never auto-approved.
        why = f"unknown command {operation.unmodelled!r} (jobgov does not model it; a plan can trust it)"
        operation = operation.model_copy(update={
            "uncertain": True, "detail": "; ".join(filter(None, [why, operation.detail])),
        })
    if operation.uncertain:
        # Never approve what cannot be judged; a configured deny still stands.
        base = policy.action_for(operation.category, True if operation.inside is None else operation.inside)
        action = strictest(Action.ASK_USER, base)
        reason = f"{operation.category.value}: {operation.detail or 'cannot be judged'}"
    else:
        action = policy.action_for(operation.category, operation.inside)
        reason = f"{operation.category.value}{_where(operation)}"
        if operation.detail:
            reason += f" ({operation.detail})"
    if operation.project_code or (operation.unmodelled is not None and not operation.uncertain):
        # The project's own code (and a trusted command) runs unread: project_code decides it.
        project = policy.project_code_action()
        if STRICTNESS[project] > STRICTNESS[action]:
            action, reason = project, f"{reason} (runs the project's own code)"
    reason += f": {operation.subject}" if operation.subject else ""
    decision = Decision(action=action, category=operation.category, reason=reason, subject=operation.subject)
    for rule in policy.rules:
        if STRICTNESS[rule.action] > STRICTNESS[decision.action] and _matches(rule, operation):
            decision = Decision(
                action=rule.action,
                category=operation.category,
                reason=f"rule matched {operation.subject!r}",
                rule=rule.describe(),
                subject=operation.subject,
            )
    return decision


def evaluate(policy: EffectivePolicy, ask: NormalizedAsk) -> Decision:
    """The decision for a whole ask: the strictest decision of its operations.

    Among equally strict operations the first one decides (and is the one
    reported), so the reason names the segment or path that mattered.
    """
    decisions = [decide_operation(policy, op) for op in ask.operations]
    if not decisions:
        return Decision(
            action=Action.ASK_USER,
            category=Category.OTHER,
            reason="nothing to judge",
        )
    return max(decisions, key=lambda d: STRICTNESS[d.action])


#: The agent's answer to an ask that is decided (opencode's ``once`` and ``reject``).
Reply = Literal["once", "reject"]
#: What happens to an ask: the policy approves or denies it, an earlier human
#: "always" grants it, or it waits for a person (ask-user, or held while the job holds).
Outcome = Literal["approve", "deny", "grant", "wait"]


def deny_message(decision: Decision) -> str:
    """The message a policy denial sends with its ``reject``.

    A deny is a ``reject`` *with* a message: opencode then tells the model why
    and its loop goes on (finding 1), instead of stopping the whole run.
    """
    return f"Denied by jobgov policy: {decision.reason}"


@dataclass(frozen=True)
class Verdict:
    """What to do with one ask now, and why."""

    decision: Decision
    """The policy's decision, with the reason a person can audit."""
    outcome: Outcome

    @property
    def by_policy(self) -> bool:
        """The policy alone decides it (approve or deny): no person, no grant."""
        return self.outcome in ("approve", "deny")

    @property
    def reply(self) -> Reply | None:
        """What the agent is answered (``None``: nothing yet, a person decides)."""
        if self.outcome == "wait":
            return None
        return "reject" if self.outcome == "deny" else "once"

    @property
    def message(self) -> str | None:
        """The message sent with the reply (only a denial has one)."""
        return deny_message(self.decision) if self.outcome == "deny" else None


def decide(policy: EffectivePolicy, ask: NormalizedAsk, *, holding: bool, granted: bool = False) -> Verdict:
    """Decide an ask: the policy's verdict, the holding rule, and the job's grants.

    Args:
        policy: The job's effective policy.
        ask: The normalised ask.
        holding: The job holds asks (paused, held by its plan, budget spent): nothing is
            auto-approved, every approvable ask waits for a person.
        granted: A person already approved this exact request "always" for the job.

    Returns:
        A deny stands whatever else holds; an auto-approve applies unless the job holds;
        an ask-user is granted by an earlier "always"; everything else waits.
    """
    decision = evaluate(policy, ask)
    if decision.action is Action.DENY:
        return Verdict(decision, "deny")
    if decision.action is Action.AUTO_APPROVE and not holding:
        return Verdict(decision, "approve")
    if decision.action is Action.ASK_USER and granted:
        return Verdict(decision, "grant")
    return Verdict(decision, "wait")
