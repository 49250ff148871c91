"""Steps read from opencode's events: each model call counted once, by part id.

opencode reports each model call (a *step*) as a ``message.part.updated``
event whose part has ``type == "step-finish"``, with that call's tokens and
cost. :class:`UsageLedger` counts those parts, keyed strictly by part id, so
replayed, duplicated or reordered events never change its totals.

``message.updated`` events never add tokens: an assistant message's
``info.tokens`` holds only its *last* step while ``info.cost`` accumulates,
so summing them double-counts. The ledger reads them only to learn each
message's provider and model, which the step-finish part lacks.

Pricing happens elsewhere (:mod:`jobgov.opencode.pricing`); the ledger lists
the steps that still need a price (:meth:`UsageLedger.pending_pricing`) and
keeps the resulting :class:`~jobgov.domain.usage.CostRecord` objects
(:meth:`UsageLedger.record_cost`), counting each through the one step rule
:func:`jobgov.domain.usage.step_delta`.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from jobgov.domain.usage import (
    CostRecord,
    CostSource,
    StepDelta,
    StepUsage,
    TokenCounts,
    UsageTotals,
    decimal_usd,
    step_delta,
)
from jobgov.opencode.events import Event

_ZERO = Decimal(0)


class InvalidStepError(ValueError):
    """A step-finish part whose ids or usage cannot be read."""


class _MessageModel(BaseModel):
    """What the ledger keeps of an assistant message."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    session_id: str
    provider_id: str | None = None
    model_id: str | None = None
    created: int | None = None


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


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

    steps: dict[str, StepUsage] = {}
    """Counted steps by part id, in first-seen order."""
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
        if step is None or step.part_id in self.steps:
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
            provider_id=_str_or_none(info.get("providerID")),
            model_id=_str_or_none(info.get("modelID")),
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
            KeyError: The record is for a step the ledger never counted.
        """
        step = self.steps[record.part_id]
        previous = self.costs.get(record.part_id)
        self.costs[record.part_id] = record
        if (record.provider_id, record.model_id) == (step.provider_id, step.model_id):
            # Priced as the model the step now has; a stale record stays pending.
            self.pending.pop(record.part_id, None)
        delta = step_delta(previous.usd if previous is not None else None, step, record.usd)
        usd, tokens = self.running.get(step.session_id, (_ZERO, 0))
        self.running[step.session_id] = (usd + delta.usd, tokens)
        return delta

    def spend(self, session_id: str) -> tuple[Decimal, int]:
        """USD and tokens of one session so far: what :meth:`totals` adds up, without the walk."""
        return self.running.get(session_id, (_ZERO, 0))

    def session_ids(self) -> list[str]:
        """Sessions with an assistant message or a step, in first-seen order."""
        seen = dict.fromkeys(m.session_id for m in self.messages.values())
        seen.update(dict.fromkeys(s.session_id for s in self.steps.values()))
        return list(seen)

    def totals(self, session_id: str | None = None) -> UsageTotals:
        """Totals of one session, or of the whole ledger when ``session_id`` is ``None``."""
        tokens = TokenCounts()
        steps = 0
        cost = agent = _ZERO
        sources: set[CostSource] = set()
        pending = set(self.pending)
        pending_count = 0
        for step in self.steps.values():
            if session_id is not None and step.session_id != session_id:
                continue
            tokens += step.tokens
            steps += 1
            agent += step.agent_cost_usd
            record = self.costs.get(step.part_id)
            if record is not None:
                cost += record.usd
                sources.add(record.source)
            if step.part_id in pending:
                pending_count += 1
        return UsageTotals(
            tokens=tokens,
            steps=steps,
            cost_usd=cost,
            agent_cost_usd=agent,
            cost_sources=sorted(sources),
            pending_steps=pending_count,
        )

    def sessions(self) -> dict[str, UsageTotals]:
        """Totals of every session, in first-seen order."""
        return {session_id: self.totals(session_id) for session_id in self.session_ids()}
