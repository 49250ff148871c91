"""Steps read from opencode's events: each model call counted once, by part id.

opencode reports each model call (a *step*) as a ``message.part.updated``
event whose part has ``type == "step-finish"``, with that call's tokens and
cost. :class:`UsageLedger` counts those parts, keyed strictly by part id, so
replayed, duplicated or reordered events never change its totals.

``message.updated`` events never add tokens: an assistant message's
``info.tokens`` holds only its *last* step while ``info.cost`` accumulates,
so summing them double-counts. The ledger reads them only to learn each
message's provider and model, which the step-finish part lacks.

A ledger made with ``fold=True`` (the stream activity's) keeps a step only until
its cost is final (priced as its model): then it adds the step to its session's
sums and keeps just the part id, so that a long job's ledger holds ids, not steps.

Pricing happens elsewhere (:mod:`jobgov.opencode.pricing`); the ledger lists
the steps that still need a price (:meth:`UsageLedger.pending_pricing`) and
keeps the resulting :class:`~jobgov.domain.usage.CostRecord` objects
(:meth:`UsageLedger.record_cost`), counting each through the one step rule
:func:`jobgov.domain.usage.step_delta`.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, ValidationError

from jobgov.domain.usage import (
    CostRecord,
    StepDelta,
    StepUsage,
    TokenCounts,
    UsageTotals,
    decimal_usd,
    step_delta,
)
from jobgov.opencode.events import Event

_ZERO = Decimal(0)
_NONE = UsageTotals()


class InvalidStepError(ValueError):
    """A step-finish part whose ids or usage cannot be read."""


class _MessageModel(NamedTuple):
    """What the ledger keeps of an assistant message (a tuple: one is kept per model call)."""

    session_id: str
    provider_id: str | None = None
    model_id: str | None = None
    created: int | None = None


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _name_or_none(value: object) -> str | None:
    """A provider or model name, interned: every message of a job names the same few."""
    return sys.intern(value) if isinstance(value, str) and value else None


def _with_step(totals: UsageTotals, step: StepUsage, record: CostRecord | None, *, pending: bool) -> UsageTotals:
    """``totals`` with one more step (and its cost record, when it has one)."""
    sources = totals.cost_sources
    if record is not None and record.source not in sources:
        sources = sorted([*sources, record.source])
    return UsageTotals(
        tokens=totals.tokens + step.tokens,
        steps=totals.steps + 1,
        cost_usd=totals.cost_usd + (record.usd if record is not None else _ZERO),
        agent_cost_usd=totals.agent_cost_usd + step.agent_cost_usd,
        cost_sources=sources,
        pending_steps=totals.pending_steps + int(pending),
    )


def _plus(a: UsageTotals, b: UsageTotals) -> UsageTotals:
    return UsageTotals(
        tokens=a.tokens + b.tokens,
        steps=a.steps + b.steps,
        cost_usd=a.cost_usd + b.cost_usd,
        agent_cost_usd=a.agent_cost_usd + b.agent_cost_usd,
        cost_sources=sorted({*a.cost_sources, *b.cost_sources}),
        pending_steps=a.pending_steps + b.pending_steps,
    )


def extract_step(event: Event) -> StepUsage | None:
    """The step an event reports, if it is a step-finish part update.

    The result has no provider or model (the part does not name them); the
    ledger fills them in from the assistant message.

    Args:
        event: An inner opencode event.

    Returns:
        The step, or ``None`` for any other event.

    Raises:
        InvalidStepError: A step-finish part without ids or with unreadable usage.
    """
    if event.get("type") != "message.part.updated":
        return None
    properties = event.get("properties") or {}
    part = properties.get("part")
    if not isinstance(part, dict) or part.get("type") != "step-finish":
        return None
    tokens = part.get("tokens")
    if not isinstance(tokens, dict):
        raise InvalidStepError(f"step-finish {part.get('id')!r}: no tokens object")
    cost = part.get("cost") or 0
    event_time = properties.get("time")
    try:
        return StepUsage(
            part_id=part.get("id") or "",
            message_id=part.get("messageID") or "",
            session_id=part.get("sessionID") or properties.get("sessionID") or "",
            tokens=TokenCounts.from_opencode(tokens),
            agent_cost_usd=decimal_usd(cost) if isinstance(cost, int | float) else cost,
            time=event_time if isinstance(event_time, int) else None,
        )
    except (ValidationError, ValueError, ArithmeticError) as exc:
        raise InvalidStepError(f"step-finish {part.get('id')!r}: {exc}") from None


class UsageLedger(BaseModel):
    """Every counted step of a job, deduplicated by part id, with its cost records."""

    model_config = ConfigDict(extra="forbid")

    fold: bool = False
    """Fold each step into its session's sums once its cost is final, keeping only its part id
    (the stream activity's ledger); ``False`` keeps every step and cost record (``jobgov usage``)."""
    steps: dict[str, StepUsage] = {}
    """Counted steps by part id, in first-seen order (with ``fold``: those not folded yet)."""
    folded: dict[str, UsageTotals] = {}
    """With ``fold``: per session, the sums of its folded steps."""
    folded_ids: set[str] = set()
    """With ``fold``: the part ids of the folded steps, so that a replayed one never counts again."""
    messages: dict[str, _MessageModel] = {}
    """Assistant messages seen, by message id."""
    costs: dict[str, CostRecord] = {}
    """The current cost record of each priced step, by part id."""
    pending: dict[str, None] = {}
    """Part ids with no cost record, or one made before their model was known (ordered, as a set)."""
    running: dict[str, tuple[Decimal, int]] = {}
    """Per session: USD of its cost records and tokens of its steps, kept as they change, so that
    the stream learns a session's spending in constant time per step (see :meth:`spend`)."""
    by_message: dict[str, list[str]] = {}
    """Part ids of each message's steps: the steps a late ``message.updated`` gives its model to."""
    invalid_events: int = 0
    """Step-finish events that could not be read (counted, not applied)."""

    def add_event(self, event: Event) -> list[StepUsage]:
        """Apply one event.

        Args:
            event: An inner opencode event; every type is accepted, only
                step-finish parts and assistant ``message.updated`` matter.

        Returns:
            The steps this event newly counted (empty for duplicates and for
            every other event).
        """
        event_type = event.get("type")
        if event_type == "message.updated":
            self._learn_message(event.get("properties") or {})
            return []
        try:
            step = extract_step(event)
        except InvalidStepError:
            self.invalid_events += 1
            return []
        if step is None or step.part_id in self.steps or step.part_id in self.folded_ids:
            return []
        message = self.messages.get(step.message_id)
        if message is not None:
            step = step.model_copy(
                update={
                    "provider_id": message.provider_id,
                    "model_id": message.model_id,
                    "time": step.time if step.time is not None else message.created,
                }
            )
        self.steps[step.part_id] = step
        usd, tokens = self.running.get(step.session_id, (_ZERO, 0))
        self.running[step.session_id] = (usd, tokens + step.tokens.total)
        self.pending[step.part_id] = None
        self.by_message.setdefault(step.message_id, []).append(step.part_id)
        return [step]

    def _learn_message(self, properties: Mapping[str, Any]) -> None:
        info = properties.get("info")
        if not isinstance(info, dict) or info.get("role") != "assistant":
            return
        message_id = _str_or_none(info.get("id"))
        session_id = _str_or_none(info.get("sessionID")) or _str_or_none(properties.get("sessionID"))
        if message_id is None or session_id is None:
            return
        known = self.messages.get(message_id)
        if known is not None and known.model_id is not None:
            return  # A message's model never changes; later updates add nothing here.
        times = info.get("time")
        created = times.get("created") if isinstance(times, dict) else None
        message = _MessageModel(
            session_id=session_id,
            provider_id=_name_or_none(info.get("providerID")),
            model_id=_name_or_none(info.get("modelID")),
            created=created if isinstance(created, int) else None,
        )
        self.messages[message_id] = message
        if message.model_id is None:
            return
        # Steps that arrived before their message: give them the model now.
        for part_id in self.by_message.get(message_id, ()):
            step = self.steps[part_id]
            if step.model_id is not None:
                continue
            self.steps[part_id] = step.model_copy(
                update={
                    "provider_id": message.provider_id,
                    "model_id": message.model_id,
                    "time": step.time if step.time is not None else message.created,
                }
            )
            self.pending[part_id] = None

    def pending_pricing(self) -> list[StepUsage]:
        """Steps to price: never priced, or priced before their model was known."""
        return [self.steps[part_id] for part_id in self.pending]

    def record_cost(self, record: CostRecord) -> Decimal:
        """Keep the cost of one step, replacing any earlier record for it.

        Args:
            record: The step's cost, as returned by ``price_step``.

        Returns:
            How much the job's recorded cost changed (negative when a re-priced
            step turned out cheaper), for the budget.

        Raises:
            KeyError: The record is for a step the ledger never counted.
        """
        return self.count_cost(record).usd

    def count_cost(self, record: CostRecord) -> StepDelta:
        """Keep the cost of one step (as :meth:`record_cost`) and say what it changed.

        Raises:
            KeyError: The record is for a step the ledger never counted, or one already folded.
        """
        step = self.steps[record.part_id]
        previous = self.costs.get(record.part_id)
        self.costs[record.part_id] = record
        final = (record.provider_id, record.model_id) == (step.provider_id, step.model_id)
        if final:
            # Priced as the model the step now has; a stale record stays pending.
            self.pending.pop(record.part_id, None)
        delta = step_delta(previous.usd if previous is not None else None, step, record.usd)
        usd, tokens = self.running.get(step.session_id, (_ZERO, 0))
        self.running[step.session_id] = (usd + delta.usd, tokens)
        if final and self.fold and step.model_id is not None:
            self._fold(step, record)
        return delta

    def _fold(self, step: StepUsage, record: CostRecord) -> None:
        """Add a step whose cost is final to its session's sums, and keep only its part id.

        Only a step whose model is known is folded: a message's model never changes once
        known (see :meth:`_learn_message`), so nothing can price it again.
        """
        self.folded[step.session_id] = _with_step(self.folded.get(step.session_id, _NONE), step, record, pending=False)
        self.folded_ids.add(step.part_id)
        del self.steps[step.part_id], self.costs[step.part_id]
        siblings = self.by_message.get(step.message_id)
        if siblings is not None:
            siblings.remove(step.part_id)
            if not siblings:
                del self.by_message[step.message_id]

    def spend(self, session_id: str) -> tuple[Decimal, int]:
        """USD and tokens of one session so far: what :meth:`totals` adds up, without the walk."""
        return self.running.get(session_id, (_ZERO, 0))

    def session_ids(self) -> list[str]:
        """Sessions with an assistant message or a step, in first-seen order (sessions whose
        steps were all folded, and that sent no message, come before those with steps left)."""
        seen = dict.fromkeys(m.session_id for m in self.messages.values())
        seen.update(dict.fromkeys(self.folded))
        seen.update(dict.fromkeys(s.session_id for s in self.steps.values()))
        return list(seen)

    def totals(self, session_id: str | None = None) -> UsageTotals:
        """Totals of one session, or of the whole ledger when ``session_id`` is ``None``."""
        totals = _NONE
        for folded_session, folded in self.folded.items():
            if session_id is None or folded_session == session_id:
                totals = _plus(totals, folded)
        for step in self.steps.values():
            if session_id is None or step.session_id == session_id:
                totals = _with_step(totals, step, self.costs.get(step.part_id), pending=step.part_id in self.pending)
        return totals

    def sessions(self) -> dict[str, UsageTotals]:
        """Totals of every session, in first-seen order."""
        return {session_id: self.totals(session_id) for session_id in self.session_ids()}
