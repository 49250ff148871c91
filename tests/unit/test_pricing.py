"""Pricing a step: overrides, genai-prices, the agent's figure, and config errors."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import genai_prices
import pytest
from pydantic import ValidationError

from jobgov.configfile import ConfigError, parse_plan_config
from jobgov.domain.usage import (
    ModelPrice,
    PricingConfig,
    StepUsage,
    TokenCounts,
    price_tokens,
)
from jobgov.opencode.pricing import price_step

CAPTURE_PRICE = ModelPrice.model_validate({"input": 3, "output": 15, "cache_read": 0.3, "cache_write": 3.75})
#: A time genai-prices knows gpt-4o's price for (2025-06-01, epoch ms).
JUNE_2025 = int(datetime(2025, 6, 1, tzinfo=UTC).timestamp() * 1000)


def _step(
    provider: str | None = "fake",
    model: str | None = "fake-model",
    agent_cost: str = "0",
    time: int | None = JUNE_2025,
    **tokens: int,
) -> StepUsage:
    return StepUsage(
        part_id="prt_1",
        message_id="msg_1",
        session_id="ses_1",
        provider_id=provider,
        model_id=model,
        tokens=TokenCounts(**tokens),
        agent_cost_usd=Decimal(agent_cost),
        time=time,
    )


# ---------------------------------------------------------------------------
# Overrides


def test_price_tokens_matches_opencode_reasoning_example() -> None:
    # PROTOCOL.md: prompt 1000 with 400 cached, completion 50 with 20 reasoning costs 0.00267.
    tokens = TokenCounts(input=600, cache_read=400, output=30, reasoning=20)
    assert price_tokens(tokens, CAPTURE_PRICE) == Decimal("0.00267")


def test_price_tokens_is_exact_for_every_kind() -> None:
    tokens = TokenCounts(input=1, output=1, reasoning=1, cache_read=1, cache_write=1)
    assert price_tokens(tokens, CAPTURE_PRICE) == Decimal("0.00003705")


def test_cache_prices_default_to_input_and_reasoning_to_output() -> None:
    price = ModelPrice.model_validate({"input": 2, "output": 8})
    tokens = TokenCounts(cache_read=1_000_000, cache_write=1_000_000, reasoning=1_000_000)
    assert price_tokens(tokens, price) == Decimal(2 + 2 + 8)
    own = ModelPrice.model_validate({"input": 2, "output": 8, "reasoning": 1, "cache_read": 0.5, "cache_write": 0})
    assert price_tokens(tokens, own) == Decimal("1.5")


def test_override_wins_over_everything() -> None:
    pricing = PricingConfig.model_validate({"openai/gpt-4o": {"input": 1, "output": 1}})
    record = price_step(_step("openai", "gpt-4o", agent_cost="9", input=1_000_000), pricing)
    assert (record.usd, record.source, record.library_version) == (Decimal(1), "override", None)
    assert record.agent_cost_usd == Decimal(9)
    assert (record.provider_id, record.model_id, record.part_id, record.session_id) == (
        "openai",
        "gpt-4o",
        "prt_1",
        "ses_1",
    )


def test_override_key_splits_at_the_first_slash() -> None:
    pricing = PricingConfig.model_validate({"openrouter/anthropic/claude-x": {"input": 1, "output": 1}})
    assert pricing.get("openrouter", "anthropic/claude-x") is not None
    assert pricing.get("openrouter", None) is None
    assert pricing.get(None, "anthropic/claude-x") is None


# ---------------------------------------------------------------------------
# genai-prices


def test_genai_prices_prices_a_known_model_with_cache_mapping() -> None:
    # gpt-4o: $2.5 input, $1.25 cached input, $10 output per million.
    step = _step("openai", "gpt-4o", input=600, cache_read=400, output=30, reasoning=20)
    record = price_step(step, PricingConfig())
    assert record.source == "genai-prices"
    assert record.library_version == genai_prices.__version__
    assert record.usd == Decimal("0.0025")  # 600*2.5 + 400*1.25 + (30+20)*10, per million.

    uncached = price_step(_step("openai", "gpt-4o", input=1000, output=50), PricingConfig())
    assert uncached.usd - record.usd == Decimal(400) * (Decimal("2.5") - Decimal("1.25")) / 1_000_000


def test_genai_prices_input_tokens_include_cache_tokens() -> None:
    step = _step("anthropic", "claude-sonnet-4-5", input=600, cache_read=300, cache_write=100, output=40, reasoning=10)
    direct = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=1000, cache_read_tokens=300, cache_write_tokens=100, output_tokens=50),
        model_ref="claude-sonnet-4-5",
        provider_id="anthropic",
        genai_request_timestamp=datetime(2025, 6, 1, tzinfo=UTC),
    )
    record = price_step(step, PricingConfig())
    assert record.source == "genai-prices"
    assert record.usd == direct.total_price
    # $3 input, $0.3 cache read, $3.75 cache write, $15 output per million.
    assert record.usd == price_tokens(step.tokens, CAPTURE_PRICE)


def test_genai_prices_without_step_time_uses_now() -> None:
    assert price_step(_step("openai", "gpt-4o", time=None, input=10), PricingConfig()).source == "genai-prices"


@pytest.mark.parametrize(
    ("provider", "model"),
    [("openai", "no-such-model-xyz"), ("no-such-provider", "gpt-4o"), ("fake", "fake-model"), (None, None)],
)
def test_unknown_models_fall_through_to_the_agent_cost(provider: str | None, model: str | None) -> None:
    record = price_step(_step(provider, model, agent_cost="0.00375", input=1000, output=50), PricingConfig())
    assert (record.usd, record.source, record.library_version) == (Decimal("0.00375"), "agent", None)


def test_nothing_known_is_unpriced_zero() -> None:
    record = price_step(_step("fake", "fake-model", input=1000), PricingConfig())
    assert (record.usd, record.source) == (Decimal(0), "unpriced")


def test_zero_token_step_with_override_costs_zero() -> None:
    pricing = PricingConfig.model_validate({"fake/fake-model": CAPTURE_PRICE.model_dump()})
    record = price_step(_step(), pricing)
    assert (record.usd, record.source) == (Decimal(0), "override")


# ---------------------------------------------------------------------------
# Validation


@pytest.mark.parametrize("key", ["gpt-4o", "/gpt-4o", "openai/"])
def test_pricing_key_must_name_provider_and_model(key: str) -> None:
    with pytest.raises(ValidationError, match=r"must be 'provider/model'") as info:
        PricingConfig.model_validate({key: {"input": 1, "output": 1}})
    assert info.value.errors()[0]["loc"] == (key, "[key]")


def test_unknown_price_keys_are_refused_in_a_config_file_only() -> None:
    with pytest.raises(ConfigError, match=r"p.yaml:3: pricing.a/b.cache: unknown key"):
        parse_plan_config("pricing:\n  a/b:\n    cache: 2\n    input: 1\n    output: 1\n", "p.yaml")
    assert PricingConfig.model_validate({"a/b": {"input": 1, "output": 1, "cache": 2}}).get("a", "b") is not None


@pytest.mark.parametrize(
    ("price", "field", "error"),
    [
        ({"input": -1, "output": 1}, "input", "greater_than_equal"),
        ({"input": 1, "output": 1, "cache_read": -0.1}, "cache_read", "greater_than_equal"),
        ({"input": 1, "output": float("nan")}, "output", "finite_number"),
        ({"input": 1}, "output", "missing"),
        ({"input": "cheap", "output": 1}, "input", "decimal_parsing"),
    ],
)
def test_bad_prices_name_the_field(price: dict[str, object], field: str, error: str) -> None:
    with pytest.raises(ValidationError) as info:
        PricingConfig.model_validate({"a/b": price})
    (item,) = info.value.errors()
    assert (item["loc"], item["type"]) == (("a/b", field), error)


def test_plan_config_reports_pricing_errors_by_line_and_field() -> None:
    text = "pricing:\n  a/b:\n    input: 1\n    output: -2\n  nope: {input: 1, output: 1}\n"
    with pytest.raises(ConfigError) as info:
        parse_plan_config(text, "plan.yaml")
    message = str(info.value)
    assert "plan.yaml:4: pricing.a/b.output: Input should be greater than or equal to 0" in message
    assert "plan.yaml:5: pricing.nope.[key]: pricing key 'nope' must be 'provider/model'" in message


def test_plan_config_pricing_defaults_to_empty() -> None:
    config = parse_plan_config("plan: x\n")
    assert config.pricing == PricingConfig()
    assert config.pricing.get("fake", "fake-model") is None
