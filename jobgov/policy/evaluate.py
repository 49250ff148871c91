"""Decide a normalised permission ask: a pure function, shared by every caller.

Precedence is **strictest wins** (deny > ask-user > auto-approve) across all
operations of the ask (every shell segment, every category, every path) and
all matching rules. Rules only ever make a decision stricter. An operation the
policy cannot judge (unparsable command, no path) is at least ask-user.

The stream activity calls this to act at once on auto-approve/deny; the
workflow calls it again on the recorded :class:`NormalizedAsk` to re-check.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from jobgov.config import EffectivePolicy, Rule
from jobgov.models import (
    LOCATED_CATEGORIES,
    STRICTNESS,
    Action,
    Category,
    Decision,
    NormalizedAsk,
    Operation,
    strictest,
)


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
