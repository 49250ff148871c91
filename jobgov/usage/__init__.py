"""Usage accounting: opencode event streams in, tokens and exact USD cost out.

* :mod:`jobgov.usage.events` reads recorded or live event lines.
* :mod:`jobgov.usage.ledger` counts each model call once and keeps totals.
* :mod:`jobgov.usage.pricing` prices a model call.

Budgets live in :mod:`jobgov.budget`.
"""

from __future__ import annotations

from jobgov.usage.events import (
    DROPPED_TYPES,
    Event,
    EventParseError,
    MalformedLineError,
    UnknownShapeError,
    parse_line,
    read_events,
)
from jobgov.usage.ledger import (
    CostRecord,
    CostSource,
    InvalidStepError,
    StepUsage,
    TokenCounts,
    UsageLedger,
    UsageTotals,
    decimal_usd,
    extract_step,
)
from jobgov.usage.pricing import ModelPrice, PricingConfig, price_step, price_tokens

__all__ = [
    "DROPPED_TYPES",
    "CostRecord",
    "CostSource",
    "Event",
    "EventParseError",
    "InvalidStepError",
    "MalformedLineError",
    "ModelPrice",
    "PricingConfig",
    "StepUsage",
    "TokenCounts",
    "UnknownShapeError",
    "UsageLedger",
    "UsageTotals",
    "decimal_usd",
    "extract_step",
    "parse_line",
    "price_step",
    "price_tokens",
    "read_events",
]
