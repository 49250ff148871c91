"""Pricing a step: what one model call cost in USD, and on whose word.

The order is: the plan's own price for the model (``override``), else the
``genai-prices`` table, else the cost opencode reported (``agent``), else
zero (``unpriced``). Amounts are exact :class:`~decimal.Decimal` values:
token counts times per-million prices, never rounded, so sums of steps are
exact too and equal opencode's own session cost for the same prices. Round
only for display.

:func:`price_step` reads the genai-prices table, whose contents depend on the
installed library version, so it runs in the stream activity (and the CLI), never
in a workflow. The override arithmetic (:func:`~jobgov.domain.usage.price_tokens`)
is pure and lives in the domain.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from jobgov.domain.usage import (
    CostRecord,
    CostSource,
    PricingConfig,
    StepUsage,
    decimal_usd,
    price_tokens,
)

__all__ = ["price_step"]


def _genai_price(step: StepUsage) -> tuple[Decimal, str] | None:
    """The genai-prices figure for a step and the library version, or ``None`` if it does not know the model."""
    if step.provider_id is None or step.model_id is None:
        return None
    # Imported here: it takes a third of a second and brings an HTTP client, which CLI
    # commands that import this module without pricing anything do not need.
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
