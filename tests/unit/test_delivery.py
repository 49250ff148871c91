"""When a stream delivers its outbox: the pure rules of jobgov.temporal.activities.delivery."""

from __future__ import annotations

from decimal import Decimal

import pytest

from jobgov.domain.asks import Action, Category, Decision, PermissionAsk, unjudgeable
from jobgov.domain.items import AskItem, EventItem, RepliedItem, SessionItem, StepItem
from jobgov.domain.usage import CostRecord, StepUsage, TokenCounts
from jobgov.temporal.activities.delivery import MAX_BATCH, due_now, may_wait, spacing
from jobgov.temporal.activities.stream_settings import StreamSettings

SETTINGS = StreamSettings(coalesce=0.5, usage_every=1.0, deliver_every=3.0)


def _ask(ask_id: str, auto: bool) -> AskItem:
    normalized = unjudgeable(PermissionAsk(id=ask_id, session_id="ses_1", permission="bash", patterns=["ls"]),
                             "/w", "test")
    decision = Decision(action=Action.AUTO_APPROVE, category=Category.SHELL_COMMAND, reason="r") if auto else None
    return AskItem(ask=normalized, auto=decision)


def _step(part: str) -> StepItem:
    step = StepUsage(part_id=part, message_id="m", session_id="ses_1", tokens=TokenCounts(input=1))
    return StepItem(step=step, cost=CostRecord(part_id=part, session_id="ses_1", usd=Decimal(0), source="override"))


def _due(outbox: list[EventItem], *, last: str | None = "busy", by_heartbeat: bool = True,
         news: bool = False) -> bool:
    return due_now(outbox, delivered_status=last, by_heartbeat=by_heartbeat, budget_news=news)


def test_what_rides_along_waits_and_what_the_workflow_acts_on_goes_now() -> None:
    replied = RepliedItem(request_id="per_0", reply="once")
    assert not _due([])
    assert not _due([_step("prt_1"), replied, _ask("per_1", auto=True), SessionItem(status="busy")])
    assert _due([SessionItem(status="idle")])  # a change of status
    assert _due([SessionItem(status="busy")], last="idle")  # busy again after an idle
    assert _due([_ask("per_2", auto=False)])  # an ask for a person
    assert _due([SessionItem(status="busy", message="overloaded")])  # a busy that says something


def test_without_heartbeat_records_every_decision_and_status_goes_now() -> None:
    assert _due([_ask("per_1", auto=True)], by_heartbeat=False)  # recorded by its delivery
    assert _due([SessionItem(status="busy")], by_heartbeat=False)
    assert not _due([_step("prt_1")], by_heartbeat=False)


def test_a_budget_threshold_or_a_full_batch_goes_now() -> None:
    assert _due([_step("prt_1")], news=True)
    assert not _due([], news=True)  # nothing to deliver
    assert _due([_step(f"prt_{n}") for n in range(MAX_BATCH)])
    assert not _due([_step(f"prt_{n}") for n in range(MAX_BATCH - 1)])


@pytest.mark.parametrize(("by_heartbeat", "plan_budget", "steps", "expected"), [
    (False, True, True, 0.5),  # decisions delivered by signal: coalesced briefly
    (True, True, True, 1.0),  # the plan sums its jobs' usage against its budget
    (True, None, True, 1.0),  # a workflow before 0.7 does not say: as if it had a budget
    (True, False, True, 3.0),  # no plan budget: usage rides with the next delivery
    (True, True, False, 3.0),  # nothing the plan sums
])
def test_how_long_the_outbox_may_wait(by_heartbeat: bool, plan_budget: bool | None, steps: bool,
                                      expected: float) -> None:
    outbox: list[EventItem] = [_step("prt_1")] if steps else [RepliedItem(request_id="per_1", reply="once")]
    assert may_wait(outbox, SETTINGS, by_heartbeat=by_heartbeat, plan_budget=plan_budget) == expected


def test_many_streams_in_one_worker_deliver_less_often() -> None:
    settings = StreamSettings(deliver_every=2.0, deliveries_per_second=25.0)
    assert spacing(settings, 1) == 2.0  # few streams: deliver_every
    assert spacing(settings, 50) == 2.0
    assert spacing(settings, 100) == 4.0  # 100 streams share 25 deliveries a second
    assert spacing(settings, 1000) == 40.0
    assert spacing(StreamSettings(deliver_every=2.0, deliveries_per_second=None), 1000) == 2.0  # never stretched


@pytest.mark.parametrize(("plan_budget", "expected"), [(False, 40.0), (True, 1.0), (None, 1.0)])
def test_a_plan_budgets_usage_waits_no_longer_however_many_streams_run(plan_budget: bool | None,
                                                                      expected: float) -> None:
    settings = StreamSettings(coalesce=0.5, usage_every=1.0, deliver_every=3.0, deliveries_per_second=25.0)
    steps: list[EventItem] = [_step("prt_1")]
    assert may_wait(steps, settings, by_heartbeat=True, plan_budget=plan_budget, streams=1000) == expected
    replied: list[EventItem] = [RepliedItem(request_id="per_1", reply="once")]
    assert may_wait(replied, settings, by_heartbeat=True, plan_budget=plan_budget, streams=1000) == 40.0
    assert may_wait(replied, settings, by_heartbeat=False, plan_budget=plan_budget, streams=1000) == 0.5  # by signal


@pytest.mark.parametrize("rate", [0.0, -1.0])
def test_deliveries_per_second_must_be_positive(rate: float) -> None:
    with pytest.raises(ValueError, match=r"StreamSettings.deliveries_per_second: .*expected a number above 0"):
        StreamSettings(deliveries_per_second=rate)
