"""Budget rules: warnings once, the limit, raising it, per-job overrides, config errors."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from jobgov.configfile import ConfigError, parse_plan_config
from jobgov.domain.budget import (
    BudgetConfig,
    BudgetLimit,
    BudgetLimitOverride,
    BudgetOutcome,
    BudgetState,
    apply,
    crossed,
    raise_limit,
)


def _fired(outcome: BudgetOutcome) -> list[tuple[str, float]]:
    return [(w.dimension, w.threshold) for w in outcome.warnings]


def _run(state: BudgetState, *deltas: tuple[float | str, int]) -> tuple[BudgetState, list[BudgetOutcome]]:
    outcomes: list[BudgetOutcome] = []
    for usd, tokens in deltas:
        state, outcome = apply(state, Decimal(usd) if isinstance(usd, str) else usd, tokens)
        outcomes.append(outcome)
    return state, outcomes


USD_10 = BudgetLimit(usd=10)


def test_each_threshold_fires_once() -> None:
    state, outcomes = _run(BudgetState(limit=USD_10), (4, 0), (1, 0), (1, 0), (1.5, 0), (0.5, 0), (1, 0))
    assert [_fired(o) for o in outcomes] == [[], [("usd", 0.5)], [], [("usd", 0.75)], [], [("usd", 0.9)]]
    assert [o.action for o in outcomes] == ["continue", "notify", "continue", "notify", "continue", "notify"]
    assert state.warned_usd == [0.5, 0.75, 0.9]
    assert not state.exceeded


def test_one_jump_fires_every_threshold_it_crosses() -> None:
    state, (outcome,) = _run(BudgetState(limit=USD_10), (9.5, 0))
    assert _fired(outcome) == [("usd", 0.5), ("usd", 0.75), ("usd", 0.9)]
    assert outcome.action == "notify" and not outcome.exceeded
    _, (again,) = _run(state, (0.1, 0))
    assert again == BudgetOutcome()


def test_reaching_the_limit_exactly_exceeds_it_once() -> None:
    state, outcomes = _run(BudgetState(limit=BudgetLimit(usd=0.8, warn_at=[])), *[("0.1", 0)] * 8)
    # Exact decimals: eight floats of 0.1 would add up to 0.7999999999999999 and miss the limit.
    assert [o.exceeded for o in outcomes] == [False] * 7 + [True]
    assert outcomes[-1].action == "pause"
    assert outcomes[-1].exceeded_dimensions == ["usd"]
    assert state.spent_usd == Decimal("0.8")
    _, (later,) = _run(state, ("1", 0))
    assert later == BudgetOutcome()  # Reported once.


@pytest.mark.parametrize("action", ["pause", "notify", "kill"])
def test_exceeding_takes_the_configured_action(action: str) -> None:
    limit = BudgetLimit.model_validate({"usd": 1, "on_exceed": action})
    _, (outcome,) = _run(BudgetState(limit=limit), (2, 0))
    assert outcome.exceeded and outcome.action == action
    assert _fired(outcome) == [("usd", 0.5), ("usd", 0.75), ("usd", 0.9)]


def test_tokens_only_limit_ignores_usd() -> None:
    state, outcomes = _run(BudgetState(limit=BudgetLimit(tokens=1000)), (1000, 499), (1000, 1), (0, 500))
    assert [_fired(o) for o in outcomes] == [[], [("tokens", 0.5)], [("tokens", 0.75), ("tokens", 0.9)]]
    assert outcomes[-1].exceeded and outcomes[-1].exceeded_dimensions == ["tokens"]
    assert state.warned_usd == [] and state.spent_usd == Decimal(2000)


def test_usd_only_limit_ignores_tokens() -> None:
    _, outcomes = _run(BudgetState(limit=USD_10), (0, 10**9), (5, 0))
    assert outcomes[0] == BudgetOutcome()
    assert _fired(outcomes[1]) == [("usd", 0.5)]


def test_both_dimensions_warn_independently() -> None:
    limit = BudgetLimit(usd=10, tokens=100, warn_at=[0.5])
    state, outcomes = _run(BudgetState(limit=limit), (5, 10), (0, 50), (5, 0))
    assert [_fired(o) for o in outcomes] == [[("usd", 0.5)], [("tokens", 0.5)], []]
    assert outcomes[2].exceeded_dimensions == ["usd"]
    _, (tokens_too,) = _run(state, (0, 100))
    assert not tokens_too.exceeded  # Already exceeded: nothing new to do.


def test_no_limit_means_no_budget() -> None:
    state, outcomes = _run(BudgetState(), (10**6, 10**9))
    assert outcomes == [BudgetOutcome()]
    assert state.spent_tokens == 10**9 and not state.exceeded
    assert BudgetConfig().for_job("any") is None
    assert BudgetConfig(job=BudgetLimit()).for_job(None) is None


def test_apply_is_pure() -> None:
    state = BudgetState(limit=USD_10)
    first = apply(state, 9, 0)
    assert apply(state, 9, 0) == first
    assert state == BudgetState(limit=USD_10)


def test_lower_spending_neither_rearms_nor_goes_negative() -> None:
    state, _ = _run(BudgetState(limit=USD_10), (6, 0), (-10, 0))
    assert state.spent_usd == 0 and state.warned_usd == [0.5]
    _, (outcome,) = _run(state, (6, 0))
    assert outcome == BudgetOutcome()


# ---------------------------------------------------------------------------
# Raising a limit


def test_raise_rearms_warnings_above_the_new_ratio_and_clears_exceeded() -> None:
    state, _ = _run(BudgetState(limit=USD_10), (10, 0))
    assert state.exceeded and state.warned_usd == [0.5, 0.75, 0.9]
    raised = raise_limit(state, add_usd=6)  # 10 of 16 spent: 62.5%.
    assert raised.limit is not None and raised.limit.usd == 16
    assert raised.warned_usd == [0.5]
    assert not raised.exceeded
    _, outcomes = _run(raised, (2, 0), (2, 0), (2, 0))
    assert [_fired(o) for o in outcomes] == [[("usd", 0.75)], [], [("usd", 0.9)]]  # 12, 14, 16 of 16.
    assert outcomes[-1].exceeded and outcomes[-1].action == "pause"


def test_raise_that_stays_under_usage_keeps_exceeded() -> None:
    state, _ = _run(BudgetState(limit=BudgetLimit(usd=10, tokens=100)), (20, 100))
    raised = raise_limit(state, add_usd=5)
    assert raised.exceeded  # Still over both limits.
    raised = raise_limit(raised, add_usd=10, add_tokens=1)
    assert not raised.exceeded
    assert raised.warned_tokens == [0.5, 0.75, 0.9] and raised.warned_usd == [0.5, 0.75]


def test_raise_is_exact() -> None:
    state = raise_limit(BudgetState(limit=BudgetLimit(usd=0.1)), add_usd=0.2)
    assert state.limit is not None and state.limit.usd == 0.3


@pytest.mark.parametrize(
    ("limit", "kwargs"),
    [
        (None, {"add_usd": 1.0}),
        (BudgetLimit(tokens=10), {"add_usd": 1.0}),
        (BudgetLimit(usd=10), {"add_tokens": 5}),
        (BudgetLimit(usd=10), {"add_usd": 0.0}),
        (BudgetLimit(usd=10), {"add_usd": -1.0}),
        (BudgetLimit(tokens=10), {"add_tokens": 0}),
    ],
)
def test_raise_rejects_nothing_to_raise(limit: BudgetLimit | None, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        raise_limit(BudgetState(limit=limit), **kwargs)


# ---------------------------------------------------------------------------
# Properties


@given(
    deltas=st.lists(st.integers(min_value=0, max_value=300), max_size=40),
    warn_at=st.lists(st.sampled_from([0.1, 0.25, 0.5, 0.75, 0.9, 0.99]), max_size=6),
)
def test_thresholds_fire_once_whatever_the_steps(deltas: list[int], warn_at: list[float]) -> None:
    limit = BudgetLimit(tokens=1000, usd=1, warn_at=warn_at)
    state = BudgetState(limit=limit)
    fired: list[float] = []
    exceeded = 0
    for delta in deltas:
        state, outcome = apply(state, Decimal(delta) / 1000, delta)
        fired += [w.threshold for w in outcome.warnings if w.dimension == "tokens"]
        exceeded += outcome.exceeded
        assert outcome.action == ("pause" if outcome.exceeded else "notify" if outcome.warnings else "continue")
    total = sum(deltas)
    assert sorted(fired) == [t for t in limit.warn_at if total >= t * 1000]
    assert len(fired) == len(set(fired))
    assert exceeded == (1 if total >= 1000 else 0)
    assert state.warned_usd == state.warned_tokens  # Same ratio in both dimensions.


# ---------------------------------------------------------------------------
# Config: per-job merge and validation


def test_per_job_override_merges_key_by_key() -> None:
    config = BudgetConfig.model_validate(
        {
            "job": {"usd": 5, "tokens": 100000, "warn_at": [0.8], "on_exceed": "kill"},
            "jobs": {
                "big": {"usd": 20},
                "tokenless": {"tokens": None, "on_exceed": "notify"},
                "unlimited": {"usd": None, "tokens": None},
            },
        }
    )
    assert config.for_job("big") == BudgetLimit(usd=20, tokens=100000, warn_at=[0.8], on_exceed="kill")
    assert config.for_job("tokenless") == BudgetLimit(usd=5, warn_at=[0.8], on_exceed="notify")
    assert config.for_job("unlimited") is None
    assert config.for_job("other") == config.job
    assert config.for_job(None) == config.job


def test_override_without_a_job_limit_merges_over_defaults() -> None:
    config = BudgetConfig.model_validate({"jobs": {"capped": {"tokens": 50}}})
    assert config.for_job("capped") == BudgetLimit(tokens=50)
    assert config.for_job("other") is None
    assert BudgetLimitOverride().over(BudgetLimit(usd=1)) == BudgetLimit(usd=1)


def test_warn_at_is_sorted_and_deduplicated() -> None:
    assert BudgetLimit(warn_at=[0.9, 0.5, 0.9]).warn_at == [0.5, 0.9]
    assert BudgetLimit(warn_at=[]).warn_at == []


@pytest.mark.parametrize(
    ("limit", "field", "error"),
    [
        ({"usd": -1}, "usd", "greater_than"),
        ({"usd": 0}, "usd", "greater_than"),
        ({"tokens": 0}, "tokens", "greater_than"),
        ({"tokens": 1.5}, "tokens", "int_from_float"),
        ({"usd": float("inf")}, "usd", "finite_number"),
        ({"warn_at": [0.5, 1.0]}, "warn_at", "value_error"),
        ({"warn_at": [0]}, "warn_at", "value_error"),
        ({"on_exceed": "explode"}, "on_exceed", "literal_error"),
    ],
)
def test_bad_limits_name_the_field(limit: dict[str, object], field: str, error: str) -> None:
    for model in (BudgetLimit, BudgetLimitOverride):
        with pytest.raises(ValidationError) as info:
            model.model_validate(limit)
        (item,) = info.value.errors()
        assert (item["loc"], item["type"]) == ((field,), error)


def test_unknown_limit_keys_are_refused_in_a_config_file_and_ignored_on_the_wire() -> None:
    # A person's file is read strictly ...
    with pytest.raises(ConfigError, match=r"p.yaml:3: budget.job.limit: unknown key"):
        parse_plan_config("budget:\n  job:\n    limit: 2\n    usd: 1\n", "p.yaml")
    # ... while a newer worker's or client's message, with a field this version lacks, is read.
    for model in (BudgetLimit, BudgetLimitOverride):
        assert model.model_validate({"usd": 1, "limit": 2}).usd == 1


def test_plan_config_reports_budget_errors_by_line_and_field() -> None:
    text = (
        "budget:\n"
        "  job:\n"
        "    usd: -3\n"
        "    warn_at: [0.5, 2]\n"
        "  jobs:\n"
        "    big: {on_exceed: later}\n"
        "  plans: {}\n"
    )
    with pytest.raises(ConfigError) as info:
        parse_plan_config(text, "plan.yaml")
    lines = str(info.value).splitlines()
    assert "plan.yaml:3: budget.job.usd: Input should be greater than 0" in lines
    assert "plan.yaml:4: budget.job.warn_at: warning threshold 2.0 must be between 0 and 1 (exclusive), e.g. 0.8" in (
        lines
    )
    assert "plan.yaml:6: budget.jobs.big.on_exceed: Input should be 'pause', 'notify' or 'kill'" in lines
    assert "plan.yaml:7: budget.plans: unknown key" in lines


def test_plan_config_budget_defaults_to_none() -> None:
    config = parse_plan_config("plan: x\n")
    assert config.budget == BudgetConfig()
    assert config.budget.for_job("x") is None


def test_plan_config_budget_loads() -> None:
    config = parse_plan_config("budget:\n  job: {usd: 2.5}\n  plan: {tokens: 1000000, on_exceed: notify}\n")
    assert config.budget.for_job("any") == BudgetLimit(usd=2.5)
    assert config.budget.plan == BudgetLimit(tokens=1_000_000, on_exceed="notify")


def test_crossed_names_a_new_threshold_or_the_limit_only() -> None:
    start = BudgetState(limit=BudgetLimit(tokens=1000))
    under, _ = apply(start, 0, 400)
    half, _ = apply(under, 0, 200)
    still, _ = apply(half, 0, 100)
    over, _ = apply(still, 0, 400)
    assert not crossed(start, under) and crossed(under, half) and not crossed(half, still)
    assert crossed(still, over) and not crossed(over, apply(over, 0, 10)[0])
    assert crossed(None, half) and not crossed(None, under) and not crossed(half, None)
