"""Usage as plain data: token counts, steps, their prices, and the one rule that counts a step.

A *step* is one model call, identified by the id of opencode's step-finish part.
:func:`step_delta` is the only place that decides what a priced step adds to a
job's totals: a new step adds its tokens and its price; the same step priced
again (its model became known) adds only the price difference; a duplicate adds
nothing. The job book, the stream's ledger and ``jobgov usage`` all count
through it, so replayed, duplicated or re-priced events never count twice.

Reading steps out of opencode's events is :mod:`jobgov.opencode.usage`; looking
prices up in genai-prices is :mod:`jobgov.opencode.pricing`. Everything here is
pure and deterministic, so workflows use it directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, RootModel

#: Where a step's USD cost came from, best first.
CostSource = Literal["override", "genai-prices", "agent", "unpriced"]

_ZERO = Decimal(0)


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

    model_config = ConfigDict(extra="ignore", frozen=True)

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

    model_config = ConfigDict(extra="ignore", frozen=True)

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

    model_config = ConfigDict(extra="ignore", frozen=True)

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

    model_config = ConfigDict(extra="ignore", frozen=True)

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


_PER_TOKEN = Decimal(1_000_000)


_Price = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]


class ModelPrice(BaseModel):
    """The price of one model, in USD per million tokens."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    input: _Price
    """Prompt tokens that were neither read from nor written to a cache."""
    output: _Price
    """Completion tokens."""
    cache_read: _Price | None = None
    """Prompt tokens read from cache; the ``input`` price when omitted."""
    cache_write: _Price | None = None
    """Prompt tokens written to cache; the ``input`` price when omitted."""
    reasoning: _Price | None = None
    """Reasoning tokens; the ``output`` price when omitted (as opencode bills them)."""


def _check_key(key: str) -> str:
    provider, _, model = key.partition("/")
    if not provider or not model:
        raise ValueError(f"pricing key {key!r} must be 'provider/model' (e.g. 'anthropic/claude-sonnet-4-5')")
    return key


class PricingConfig(RootModel[dict[Annotated[str, AfterValidator(_check_key)], ModelPrice]]):
    """Per-model price overrides, keyed ``"provider/model"`` as opencode names them.

    The key splits at the first ``/``: ``openrouter/anthropic/claude-3.5`` is
    provider ``openrouter``, model ``anthropic/claude-3.5``.
    """

    model_config = ConfigDict(frozen=True)

    root: dict[Annotated[str, AfterValidator(_check_key)], ModelPrice] = {}

    def get(self, provider_id: str | None, model_id: str | None) -> ModelPrice | None:
        """The override for a model, if the plan has one."""
        if provider_id is None or model_id is None:
            return None
        return self.root.get(f"{provider_id}/{model_id}")


def price_tokens(tokens: TokenCounts, price: ModelPrice) -> Decimal:
    """The exact USD cost of ``tokens`` at ``price`` (the way opencode computes it)."""
    cache_read = price.input if price.cache_read is None else price.cache_read
    cache_write = price.input if price.cache_write is None else price.cache_write
    reasoning = price.output if price.reasoning is None else price.reasoning
    micro_usd = (
        tokens.input * price.input
        + tokens.output * price.output
        + tokens.cache_read * cache_read
        + tokens.cache_write * cache_write
        + tokens.reasoning * reasoning
    )
    return micro_usd / _PER_TOKEN



@dataclass(frozen=True)
class StepDelta:
    """What one priced step changes in a job's totals."""

    new: bool
    """The step had never been counted: its tokens are added, and it counts as a step."""
    usd: Decimal
    """The change of the total cost (negative when a re-priced step turned out cheaper)."""
    tokens: int
    """The change of the total tokens (a step's tokens never change once counted)."""

    @property
    def changes(self) -> bool:
        """Anything changes (a duplicate with the same price changes nothing)."""
        return self.new or self.usd != 0


def step_delta(previous_usd: Decimal | None, step: StepUsage, usd: Decimal) -> StepDelta:
    """Count a priced step against what was already counted for it.

    Args:
        previous_usd: The price this step was last counted at (``None``: never counted).
        step: The step.
        usd: Its price now.
    """
    if previous_usd is None:
        return StepDelta(new=True, usd=usd, tokens=step.tokens.total)
    return StepDelta(new=False, usd=usd - previous_usd, tokens=0)
