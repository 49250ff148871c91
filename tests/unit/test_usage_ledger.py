"""Event parsing and the usage ledger, checked against opencode's own totals."""

from __future__ import annotations

import json
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from jobgov.domain.usage import (
    CostRecord,
    PricingConfig,
    StepUsage,
    TokenCounts,
    decimal_usd,
)
from jobgov.opencode.events import (
    Event,
    MalformedLineError,
    UnknownShapeError,
    parse_line,
    read_events,
)
from jobgov.opencode.pricing import price_step
from jobgov.opencode.usage import UsageLedger, extract_step
from tests.helpers import CAPTURES

#: The price the captures' fake model was configured with (opencode.json ``cost``).
CAPTURE_PRICING = PricingConfig.model_validate(
    {"fake/fake-model": {"input": 3, "output": 15, "cache_read": 0.3, "cache_write": 3.75}}
)
CAPTURE_FILES = sorted(CAPTURES.glob("*.event.jsonl"))


def _capture_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def _capture_events(path: Path) -> list[Event]:
    events, skipped, warnings = read_events(_capture_lines(path))
    assert (skipped, warnings) == (0, [])
    return events


def _final_session(path: Path) -> dict[str, Any]:
    """opencode's own totals: the ``info`` of the last ``session.updated`` in the raw capture."""
    last: dict[str, Any] | None = None
    for line in _capture_lines(path):
        event = json.loads(line)
        if event["type"] == "session.updated":
            last = event["properties"]["info"]
    assert last is not None, f"{path.name} has no session.updated"
    return last


def _replay(events: list[Event], pricing: PricingConfig = CAPTURE_PRICING, *, fold: bool = False) -> UsageLedger:
    """Feed events and price pending steps after each one, as the workflow does."""
    ledger = UsageLedger(fold=fold)
    for event in events:
        ledger.add_event(event)
        for step in ledger.pending_pricing():
            ledger.record_cost(price_step(step, pricing))
    return ledger


def _step_event(part_id: str, message_id: str, session_id: str = "ses_1", **tokens: int) -> Event:
    raw: dict[str, Any] = {k: tokens.get(k, 0) for k in ("input", "output", "reasoning")}
    raw["cache"] = {"read": tokens.get("cache_read", 0), "write": tokens.get("cache_write", 0)}
    part = {"id": part_id, "messageID": message_id, "sessionID": session_id, "type": "step-finish", "tokens": raw, "cost": 0.001}
    properties = {"sessionID": session_id, "part": part, "time": 1000}
    return {"id": f"evt_{part_id}", "type": "message.part.updated", "properties": properties}


def _message_event(message_id: str, session_id: str = "ses_1", **info: Any) -> Event:
    zero = {"input": 0, "output": 0, "reasoning": 0, "cache": {"read": 0, "write": 0}}
    body: dict[str, Any] = {"id": message_id, "sessionID": session_id, "role": "assistant", "providerID": "fake"}
    body |= {"modelID": "fake-model", "time": {"created": 900}, "cost": 0, "tokens": zero, **info}
    return {"id": f"evt_{message_id}", "type": "message.updated", "properties": {"sessionID": session_id, "info": body}}


# ---------------------------------------------------------------------------
# Parsing lines


def test_captures_are_present() -> None:
    assert CAPTURE_FILES, f"no *.event.jsonl captures in {CAPTURES}"


EVENT = {"id": "evt_1", "type": "session.idle", "properties": {"sessionID": "ses_1"}}


@pytest.mark.parametrize(
    "line",
    [
        json.dumps(EVENT),
        "data: " + json.dumps(EVENT),
        "data:" + json.dumps(EVENT) + "\r\n",
        json.dumps({"directory": "/srv/p", "project": "abc", "payload": EVENT}),
    ],
    ids=["bare", "sse", "sse-no-space", "global"],
)
def test_every_line_form_gives_the_inner_event(line: str) -> None:
    assert parse_line(line) == EVENT


@pytest.mark.parametrize(
    "line",
    [
        *("", "   ", ": keep-alive", "event: message", "id: 42", "retry: 1000"),
        json.dumps({"payload": {"type": "sync", "syncEvent": {"id": "x", "type": "message.updated.1", "seq": 3}}}),
        json.dumps({"id": "e", "type": "message.part.delta", "properties": {"field": "text", "delta": "Hi"}}),
        "data: " + json.dumps({"payload": {"type": "message.part.delta", "properties": {}}}),
    ],
    ids=["blank", "spaces", "comment", "event-field", "id-field", "retry-field", "sync", "delta", "global-delta"],
)
def test_lines_without_usable_content_are_dropped(line: str) -> None:
    assert parse_line(line) is None


def test_first_global_frame_has_no_directory() -> None:
    frame = {"payload": {"id": "evt_0", "type": "server.connected", "properties": {}}}
    assert parse_line(json.dumps(frame)) == frame["payload"]


def test_malformed_json_raises_a_specific_error() -> None:
    with pytest.raises(MalformedLineError, match="invalid JSON"):
        parse_line('data: {"type": "session.idle", ')


@pytest.mark.parametrize(
    "value",
    [[1, 2], "text", 3, {"id": "x"}, {"type": ""}, {"type": "x", "properties": []}, {"payload": 1}],
)
def test_unknown_shapes_raise_a_specific_error(value: Any) -> None:
    with pytest.raises(UnknownShapeError):
        parse_line(json.dumps(value))


def test_read_events_skips_bad_lines_with_count_and_warning() -> None:
    lines = [
        json.dumps(EVENT),
        "{not json",
        "[1]",
        "",
        json.dumps({"id": "e", "type": "some.future.event", "properties": {"x": 1}}),
        "data: " + json.dumps(EVENT),
    ]
    events, skipped, warnings = read_events(lines)
    assert [e["type"] for e in events] == ["session.idle", "some.future.event", "session.idle"]
    assert skipped == 2
    assert len(warnings) == 2
    assert warnings[0].startswith("line 2: invalid JSON")
    assert warnings[1].startswith("line 3: expected a JSON object")


def test_unknown_event_types_and_bad_lines_do_not_change_totals() -> None:
    path = CAPTURES / "approve.event.jsonl"
    lines = _capture_lines(path)
    noisy = list(lines)
    noisy.insert(3, json.dumps({"id": "e1", "type": "brand.new.event", "properties": {"tokens": {"input": 5}}}))
    noisy.insert(7, "garbage{")
    noisy.insert(9, json.dumps({"type": "message.part.updated", "properties": {"part": {"type": "future-part"}}}))
    noisy.append('{"truncated": ')
    events, skipped, _ = read_events(noisy)
    assert skipped == 2
    assert _replay(events).totals() == _replay(_capture_events(path)).totals()


# ---------------------------------------------------------------------------
# Tokens


def test_token_counts_arithmetic() -> None:
    a = TokenCounts(input=1, output=2, reasoning=3, cache_read=4, cache_write=5)
    b = TokenCounts(input=10, output=20, reasoning=30, cache_read=40, cache_write=50)
    assert a.total == 15
    assert (a + b).total == 165
    assert (b - a) == TokenCounts(input=9, output=18, reasoning=27, cache_read=36, cache_write=45)
    with pytest.raises(ValidationError):
        a - b
    assert a.as_dict() == {"input": 1, "output": 2, "reasoning": 3, "cache_read": 4, "cache_write": 5, "total": 15}


def test_token_counts_from_opencode() -> None:
    raw = {"total": 999, "input": 600, "output": 30, "reasoning": 20, "cache": {"read": 400, "write": 7}}
    counts = TokenCounts.from_opencode(raw)
    assert counts == TokenCounts(input=600, output=30, reasoning=20, cache_read=400, cache_write=7)
    assert counts.total == 1057  # Ours, not opencode's "total".
    assert TokenCounts.from_opencode({}) == TokenCounts()


# ---------------------------------------------------------------------------
# Steps and the ledger


def test_extract_step_reads_a_step_finish_part() -> None:
    step = extract_step(_step_event("prt_1", "msg_1", input=600, output=30, reasoning=20, cache_read=400))
    assert step == StepUsage(
        part_id="prt_1",
        message_id="msg_1",
        session_id="ses_1",
        tokens=TokenCounts(input=600, output=30, reasoning=20, cache_read=400),
        agent_cost_usd=Decimal("0.001"),
        time=1000,
    )


def test_extract_step_ignores_other_events() -> None:
    assert extract_step(_message_event("msg_1")) is None
    assert extract_step({"type": "message.part.updated", "properties": {"part": {"type": "text"}}}) is None
    assert extract_step(EVENT) is None


def test_message_updated_never_adds_tokens() -> None:
    ledger = UsageLedger()
    busy = {"input": 1000, "output": 50, "reasoning": 0, "cache": {"read": 0, "write": 0}}
    for _ in range(3):
        assert ledger.add_event(_message_event("msg_1", cost=0.00375, tokens=busy)) == []
    assert ledger.totals().tokens == TokenCounts()
    ledger.add_event(_step_event("prt_1", "msg_1", input=1000, output=50))
    ledger.add_event(_message_event("msg_1", cost=0.0075, tokens=busy))
    assert ledger.totals().tokens == TokenCounts(input=1000, output=50)
    assert ledger.totals().steps == 1


def test_duplicate_step_is_counted_once() -> None:
    ledger = UsageLedger()
    event = _step_event("prt_1", "msg_1", input=10)
    assert len(ledger.add_event(event)) == 1
    assert ledger.add_event(event) == []
    assert ledger.add_event(_step_event("prt_1", "msg_1", input=99)) == []  # Same part id: ignored.
    assert ledger.totals().tokens.input == 10


def test_zero_usage_aborted_step_counts_as_a_step() -> None:
    ledger = UsageLedger()
    ledger.add_event(_message_event("msg_1"))
    assert len(ledger.add_event(_step_event("prt_1", "msg_1"))) == 1
    assert ledger.totals().steps == 1
    assert ledger.totals().tokens.total == 0


def test_model_comes_from_the_assistant_message() -> None:
    ledger = UsageLedger()
    ledger.add_event(_message_event("msg_1"))
    (step,) = ledger.add_event(_step_event("prt_1", "msg_1", input=5))
    assert (step.provider_id, step.model_id) == ("fake", "fake-model")


def test_model_learned_after_the_step_is_filled_in_and_repriced() -> None:
    ledger = UsageLedger()
    (step,) = ledger.add_event(_step_event("prt_1", "msg_1", input=1000, output=50))
    assert step.model_id is None
    assert ledger.pending_pricing() == [step]
    first = price_step(step, CAPTURE_PRICING)
    assert first.source == "agent"
    assert ledger.record_cost(first) == Decimal("0.001")
    assert ledger.pending_pricing() == []

    ledger.add_event(_message_event("msg_1"))
    (filled,) = ledger.pending_pricing()
    assert (filled.provider_id, filled.model_id, filled.time) == ("fake", "fake-model", 1000)
    delta = ledger.record_cost(price_step(filled, CAPTURE_PRICING))
    assert delta == Decimal("0.00375") - Decimal("0.001")
    assert ledger.totals().cost_usd == Decimal("0.00375")
    assert ledger.totals().cost_sources == ["override"]
    assert ledger.pending_pricing() == []


def test_step_time_falls_back_to_message_creation() -> None:
    event = _step_event("prt_1", "msg_1")
    del event["properties"]["time"]
    ledger = UsageLedger()
    ledger.add_event(_message_event("msg_1"))
    (step,) = ledger.add_event(event)
    assert step.time == 900


def test_stale_cost_record_stays_pending() -> None:
    ledger = UsageLedger()
    (step,) = ledger.add_event(_step_event("prt_1", "msg_1", input=1))
    stale = price_step(step, CAPTURE_PRICING)
    ledger.add_event(_message_event("msg_1"))  # The model arrives while the price is computed.
    ledger.record_cost(stale)
    assert [s.part_id for s in ledger.pending_pricing()] == ["prt_1"]


def test_cost_for_an_uncounted_step_is_rejected() -> None:
    record = CostRecord(part_id="prt_x", session_id="ses_1", usd=Decimal(1), source="agent")
    with pytest.raises(KeyError):
        UsageLedger().record_cost(record)


def test_unreadable_step_finish_is_counted_not_applied() -> None:
    ledger = UsageLedger()
    bad_tokens = _step_event("prt_1", "msg_1")
    bad_tokens["properties"]["part"]["tokens"] = {"input": -5}
    no_tokens = _step_event("prt_2", "msg_1")
    del no_tokens["properties"]["part"]["tokens"]
    no_id = _step_event("", "msg_1", input=3)
    for event in (bad_tokens, no_tokens, no_id):
        assert ledger.add_event(event) == []
    assert ledger.invalid_events == 3
    assert ledger.totals() == UsageLedger().totals()


@pytest.mark.parametrize("fold", [False, True])
def test_ledger_round_trips_as_workflow_state(fold: bool) -> None:
    ledger = _replay(_capture_events(CAPTURES / "approve.event.jsonl"), fold=fold)
    again = UsageLedger.model_validate_json(ledger.model_dump_json())
    assert again == ledger
    assert again.totals() == ledger.totals()


# ---------------------------------------------------------------------------
# Against opencode's own totals, for every capture


@pytest.mark.parametrize("fold", [False, True], ids=["every-step", "folding"])
@pytest.mark.parametrize("path", CAPTURE_FILES, ids=lambda p: p.name.removesuffix(".event.jsonl"))
def test_totals_equal_opencode_session_totals(path: Path, fold: bool) -> None:
    final = _final_session(path)
    ledger = _replay(_capture_events(path), fold=fold)
    totals = ledger.totals(final["id"])
    assert totals.tokens == TokenCounts.from_opencode(final["tokens"])
    assert totals.cost_usd == decimal_usd(final["cost"])
    assert float(totals.cost_usd) == final["cost"]
    assert totals.agent_cost_usd == decimal_usd(final["cost"])
    assert ledger.totals() == totals  # One session per capture.
    assert totals.pending_steps == 0


@pytest.mark.parametrize("path", CAPTURE_FILES, ids=lambda p: p.name.removesuffix(".event.jsonl"))
def test_each_assistant_message_matches_its_steps(path: Path) -> None:
    """``GET /session/{id}/message`` after the run: one step per assistant message."""
    ledger = _replay(_capture_events(path))
    messages = json.loads(path.with_name(path.name.replace(".event.jsonl", ".messages.json")).read_text())
    for message in messages:
        info = message["info"]
        if info["role"] != "assistant":
            continue
        steps = [s for s in ledger.steps.values() if s.message_id == info["id"]]
        tokens = sum((s.tokens for s in steps), TokenCounts())
        assert tokens == TokenCounts.from_opencode(info["tokens"])
        assert sum(ledger.costs[s.part_id].usd for s in steps) == decimal_usd(info["cost"])


@pytest.mark.parametrize("path", CAPTURE_FILES, ids=lambda p: p.name.removesuffix(".event.jsonl"))
def test_global_and_sse_forms_give_the_same_totals(path: Path) -> None:
    lines: list[str] = []
    for line in _capture_lines(path):
        event = json.loads(line)
        lines.append(json.dumps({"directory": "/srv/agent/project", "project": "p", "payload": event}))
        sync = {"id": "s", "type": f"{event['type']}.1", "seq": len(lines), "data": event["properties"]}
        lines.append(json.dumps({"payload": {"type": "sync", "syncEvent": sync}}))
        lines.append("data: " + line)  # The same event twice more: must not count twice.
    events, skipped, _ = read_events(lines)
    assert skipped == 0
    assert _replay(events).totals() == _replay(_capture_events(path)).totals()


# ---------------------------------------------------------------------------
# Properties: order and repetition never change totals

ALL_EVENTS: list[Event] = [event for path in CAPTURE_FILES for event in _capture_events(path)]
#: A price that differs from opencode's figure, so a step priced before its model is known shows.
DOUBLE_PRICING = PricingConfig.model_validate({"fake/fake-model": {"input": 6, "output": 30}})
EXPECTED = _replay(ALL_EVENTS, DOUBLE_PRICING).totals()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    order=st.permutations(range(len(ALL_EVENTS))),
    repeats=st.lists(st.integers(min_value=0, max_value=len(ALL_EVENTS) - 1), max_size=80),
    seed=st.randoms(use_true_random=False),
)
def test_shuffled_duplicated_and_resent_events_keep_totals(
    order: list[int], repeats: list[int], seed: random.Random
) -> None:
    stream = [ALL_EVENTS[i] for i in order] + [ALL_EVENTS[i] for i in repeats]
    seed.shuffle(stream)
    stream += ALL_EVENTS  # A reconnect that re-sends everything.
    totals = _replay(stream, DOUBLE_PRICING).totals()
    assert totals == EXPECTED
    assert _replay(stream, DOUBLE_PRICING, fold=True).totals() == EXPECTED
    assert EXPECTED.cost_usd == 2 * EXPECTED.agent_cost_usd


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from(ALL_EVENTS), max_size=200))
def test_any_subsequence_counts_each_step_once(events: list[Event]) -> None:
    ledger = _replay(events)
    distinct = {e["properties"]["part"]["id"] for e in events if extract_step(e) is not None}
    assert ledger.totals().steps == len(distinct)
    assert ledger.totals().cost_usd == sum((ledger.costs[p].usd for p in distinct), Decimal(0))


def test_running_spend_equals_the_totals_walk() -> None:
    """``spend`` is kept as steps and prices arrive; it always equals what ``totals`` adds up."""
    ledger = UsageLedger()
    for path in CAPTURE_FILES:
        events, _, _ = read_events(path.read_text().splitlines())
        for event in events:
            ledger.add_event(event)
            for step in ledger.pending_pricing():
                ledger.record_cost(price_step(step, CAPTURE_PRICING))
            for session_id in ledger.session_ids():
                totals = ledger.totals(session_id)
                assert ledger.spend(session_id) == (totals.cost_usd, totals.tokens.total)
    assert ledger.session_ids()


# ---------------------------------------------------------------------------
# A folding ledger (the stream activity's) counts as one that keeps every step


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=st.lists(st.sampled_from(ALL_EVENTS), max_size=300),
    price_unknown_models=st.booleans(),
)
def test_a_folding_ledger_counts_as_one_that_keeps_every_step(
    events: list[Event], price_unknown_models: bool
) -> None:
    """After every event: the same totals, per session and whole, the same spend, the same steps
    to price. Steps are priced as ``jobgov usage`` does (all of them) or as the stream does (only
    those whose model is known), with a price that differs from opencode's figure."""
    whole, folding = UsageLedger(), UsageLedger(fold=True)
    for event in events:
        for ledger in (whole, folding):
            ledger.add_event(event)
            for step in ledger.pending_pricing():
                if price_unknown_models or step.model_id is not None:
                    ledger.record_cost(price_step(step, DOUBLE_PRICING))
        assert folding.totals() == whole.totals()
        assert folding.sessions() == whole.sessions()
        assert folding.session_ids() == whole.session_ids()
        for session_id in whole.session_ids():
            assert folding.spend(session_id) == whole.spend(session_id)
        assert folding.pending_pricing() == whole.pending_pricing()
        assert folding.steps.keys() | folding.folded_ids == whole.steps.keys()
        assert not folding.steps.keys() & folding.folded_ids


def test_a_folding_ledger_keeps_ids_not_steps() -> None:
    """Once every step is priced as its model, only the part ids are left of them."""
    ledger = _replay(ALL_EVENTS, fold=True)
    distinct = {e["properties"]["part"]["id"] for e in ALL_EVENTS if extract_step(e) is not None}
    assert ledger.folded_ids == distinct
    assert (ledger.steps, ledger.costs, ledger.pending, ledger.by_message) == ({}, {}, {}, {})
    assert ledger.totals() == _replay(ALL_EVENTS).totals()
    assert ledger.add_event(next(e for e in ALL_EVENTS if extract_step(e) is not None)) == []


def test_a_step_priced_before_its_model_is_known_is_not_folded() -> None:
    """Its price is not final: the message's model re-prices it, then it folds."""
    ledger = UsageLedger(fold=True)
    ledger.add_event(_step_event("prt_1", "msg_1", input=1000))
    (step,) = ledger.pending_pricing()
    ledger.record_cost(price_step(step, DOUBLE_PRICING))
    assert "prt_1" in ledger.steps and not ledger.folded_ids
    ledger.add_event(_message_event("msg_1"))
    (step,) = ledger.pending_pricing()
    assert ledger.record_cost(price_step(step, DOUBLE_PRICING)) == Decimal("0.005")  # was opencode's 0.001
    assert ledger.folded_ids == {"prt_1"} and not ledger.steps
    assert ledger.totals().cost_usd == Decimal("0.006")
    assert ledger.totals().cost_sources == ["override"]
