"""Pricing a step: what one model call cost in USD, and on whose word.

The order is: the plan's own price for the model (``override``), else the
``genai-prices`` table, else the cost opencode reported (``agent``), else
zero (``unpriced``). Amounts are exact :class:`~decimal.Decimal` values:
token counts times per-million prices, never rounded, so sums of steps are
exact too and equal opencode's own session cost for the same prices. Round
only for display.

:func:`price_step` reads the genai-prices table, whose contents depend on the
installed library version, so a workflow calls it from an activity.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, RootModel

from jobgov.usage.ledger import CostRecord, CostSource, StepUsage, TokenCounts, decimal_usd

__all__ = ["CostRecord", "CostSource", "ModelPrice", "PricingConfig", "price_step", "price_tokens"]

_PER_TOKEN = Decimal(1_000_000)

_Price = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]


class ModelPrice(BaseModel):
    """The price of one model, in USD per million tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

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


def _genai_price(step: StepUsage) -> tuple[Decimal, str] | None:
    """The genai-prices figure for a step and the library version, or ``None`` if it does not know the model."""
    if step.provider_id is None or step.model_id is None:
        return None
    # Imported here: it takes a third of a second and brings an HTTP client, which
    # config loading and workflow code (that import this module) do not need.
    import genai_prices

    tokens = step.tokens
    usage = genai_prices.Usage(
        # genai-prices counts cache reads and writes inside input_tokens;
        # opencode's input excludes them.
        input_tokens=tokens.input + tokens.cache_read + tokens.cache_write,
        cache_read_tokens=tokens.cache_read,
        cache_write_tokens=tokens.cache_write,
        # opencode's output excludes reasoning, which is billed as output.
        output_tokens=tokens.output + tokens.reasoning,
    )
    # Price at the step's own time so that re-pricing a step gives the same figure.
    when = datetime.fromtimestamp(step.time / 1000, tz=UTC) if step.time is not None else None
    try:
        calculation = genai_prices.calc_price(
            usage, model_ref=step.model_id, provider_id=step.provider_id, genai_request_timestamp=when
        )
    except (LookupError, ValueError):
        # Unknown provider or model (LookupError), or usage the table cannot price.
        return None
    return decimal_usd(calculation.total_price), genai_prices.__version__


def price_step(step: StepUsage, pricing: PricingConfig) -> CostRecord:
    """Price one step: override, else genai-prices, else the agent's cost, else zero.

    Args:
        step: The step to price, with its model when known.
        pricing: The plan's price overrides.

    Returns:
        The step's cost record, naming its source.
    """
    usd: Decimal
    source: CostSource
    version: str | None = None
    override = pricing.get(step.provider_id, step.model_id)
    listed = _genai_price(step) if override is None else None
    if override is not None:
        usd, source = price_tokens(step.tokens, override), "override"
    elif listed is not None:
        (usd, version), source = listed, "genai-prices"
    elif step.agent_cost_usd > 0:
        usd, source = step.agent_cost_usd, "agent"
    else:
        usd, source = Decimal(0), "unpriced"
    return CostRecord(
        part_id=step.part_id,
        session_id=step.session_id,
        provider_id=step.provider_id,
        model_id=step.model_id,
        usd=usd,
        source=source,
        library_version=version,
        agent_cost_usd=step.agent_cost_usd,
    )
