"""The usage ledger: every model call of a job, counted exactly once.

opencode reports each model call (a *step*) as a ``message.part.updated``
event whose part has ``type == "step-finish"``, with that call's tokens and
cost. The ledger counts those parts, keyed strictly by part id, so replayed,
duplicated or reordered events never change its totals.

``message.updated`` events never add tokens: an assistant message's
``info.tokens`` holds only its *last* step while ``info.cost`` accumulates,
so summing them double-counts. The ledger reads them only to learn each
message's provider and model, which the step-finish part lacks.

The ledger is plain pydantic data, so a workflow can keep it in its state.
Pricing happens elsewhere (it reads a price table, so it runs in an
activity); the ledger lists the steps that still need a price
(:meth:`UsageLedger.pending_pricing`) and keeps the resulting
:class:`CostRecord` objects (:meth:`UsageLedger.record_cost`).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from jobgov.usage.events import Event

#: Where a step's USD cost came from, best first.
CostSource = Literal["override", "genai-prices", "agent", "unpriced"]

_ZERO = Decimal(0)


class InvalidStepError(ValueError):
    """A step-finish part whose ids or usage cannot be read."""


def decimal_usd(value: float | int | str | Decimal) -> Decimal:
    """Convert a reported USD amount to an exact ``Decimal``.

    Floats go through their shortest ``repr`` (``0.00375`` becomes
    ``Decimal("0.00375")``, not the binary expansion), which is the number
    opencode printed.
    """
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)


class TokenCounts(BaseModel):
    """Token counts of one step or a sum of steps, in opencode's split.

    ``input`` excludes cache reads and writes; ``output`` excludes reasoning.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: int = Field(default=0, ge=0)
    """Prompt tokens that were neither read from nor written to a cache."""
    output: int = Field(default=0, ge=0)
    """Completion tokens, reasoning excluded."""
    reasoning: int = Field(default=0, ge=0)
    """Reasoning tokens (billed at the output rate)."""
    cache_read: int = Field(default=0, ge=0)
    """Prompt tokens read from the provider's cache."""
    cache_write: int = Field(default=0, ge=0)
    """Prompt tokens written to the provider's cache."""

    @property
    def total(self) -> int:
        """All five counts added up."""
        return self.input + self.output + self.reasoning + self.cache_read + self.cache_write

    def __add__(self, other: TokenCounts) -> TokenCounts:
        return TokenCounts(
            input=self.input + other.input,
            output=self.output + other.output,
            reasoning=self.reasoning + other.reasoning,
            cache_read=self.cache_read + other.cache_read,
            cache_write=self.cache_write + other.cache_write,
        )

    def __sub__(self, other: TokenCounts) -> TokenCounts:
        """Field-wise difference; raises ``ValueError`` if any field would go negative."""
        return TokenCounts(
            input=self.input - other.input,
            output=self.output - other.output,
            reasoning=self.reasoning - other.reasoning,
            cache_read=self.cache_read - other.cache_read,
            cache_write=self.cache_write - other.cache_write,
        )

    @classmethod
    def from_opencode(cls, raw: Mapping[str, Any]) -> TokenCounts:
        """Read opencode's ``{"input", "output", "reasoning", "cache": {"read", "write"}}``.

        Missing counts are zero; opencode's own ``total`` is ignored (it is
        absent from session totals and recomputed here).
        """
        cache = raw.get("cache") or {}
        if not isinstance(cache, Mapping):
            raise ValueError("tokens.cache is not an object")
        return cls(
            input=raw.get("input", 0),
            output=raw.get("output", 0),
            reasoning=raw.get("reasoning", 0),
            cache_read=cache.get("read", 0),
            cache_write=cache.get("write", 0),
        )

    def as_dict(self) -> dict[str, int]:
        """The five counts plus ``total``, for reports."""
        return {**self.model_dump(), "total": self.total}


class StepUsage(BaseModel):
    """One model call, as reported by its step-finish part."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    part_id: str = Field(min_length=1)
    """The step-finish part's id: the step's identity."""
    message_id: str = Field(min_length=1)
    """The assistant message the step belongs to."""
    session_id: str = Field(min_length=1)
    provider_id: str | None = None
    """From the assistant message; ``None`` until that message has been seen."""
    model_id: str | None = None
    """From the assistant message; ``None`` until that message has been seen."""
    tokens: TokenCounts = TokenCounts()
    agent_cost_usd: Decimal = Field(default=_ZERO, ge=0, allow_inf_nan=False)
    """The cost opencode computed for this step (its part's ``cost``)."""
    time: int | None = None
    """Epoch milliseconds: the event's ``time``, else the message's creation time."""


class CostRecord(BaseModel):
    """The USD cost jobgov assigns to one step, and where it came from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    part_id: str = Field(min_length=1)
    session_id: str = Field(min_length=1)
    provider_id: str | None = None
    """The model the step was priced as (``None``: unknown when priced)."""
    model_id: str | None = None
    usd: Decimal = Field(ge=0, allow_inf_nan=False)
    """Exact cost in USD (no rounding)."""
    source: CostSource
    library_version: str | None = None
    """The genai-prices version, when ``source`` is ``genai-prices``."""
    agent_cost_usd: Decimal = Field(default=_ZERO, ge=0, allow_inf_nan=False)
    """opencode's own figure for the same step, kept beside ours."""


class UsageTotals(BaseModel):
    """Totals over a set of steps (one session, or the whole ledger)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tokens: TokenCounts = TokenCounts()
    steps: int = 0
    """Counted steps, zero-token (aborted) steps included."""
    cost_usd: Decimal = _ZERO
    """Sum of the recorded :class:`CostRecord` amounts."""
    agent_cost_usd: Decimal = _ZERO
    """Sum of opencode's own per-step costs."""
    cost_sources: list[CostSource] = []
    """The distinct sources of the recorded costs, sorted."""
    pending_steps: int = 0
    """Steps awaiting a price: never priced, or priced before their model was known."""


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
    pending: list[str] = []
    """Part ids with no cost record, or one made before their model was known."""
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
        self.pending.append(step.part_id)
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
        for part_id, step in self.steps.items():
            if step.message_id != message_id or step.model_id is not None:
                continue
            self.steps[part_id] = step.model_copy(
                update={
                    "provider_id": message.provider_id,
                    "model_id": message.model_id,
                    "time": step.time if step.time is not None else message.created,
                }
            )
            if part_id not in self.pending:
                self.pending.append(part_id)

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
        step = self.steps[record.part_id]
        previous = self.costs.get(record.part_id)
        self.costs[record.part_id] = record
        if (record.provider_id, record.model_id) == (step.provider_id, step.model_id):
            # Priced as the model the step now has; a stale record stays pending.
            self.pending = [p for p in self.pending if p != record.part_id]
        return record.usd - (previous.usd if previous is not None else _ZERO)

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
