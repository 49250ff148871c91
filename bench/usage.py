"""How fast usage is counted: the ledger over the real captures, replayed many times."""

from __future__ import annotations

import time

from jobgov.domain.usage import PricingConfig
from jobgov.opencode.events import read_events
from jobgov.opencode.pricing import price_step
from jobgov.opencode.usage import UsageLedger
from tests.helpers import CAPTURES

PRICING = PricingConfig.model_validate({"fake/fake-model": {"input": 3, "output": 15, "cache_read": 0.3, "cache_write": 3.75}})


def run(rounds: int = 50) -> None:
    lines = [line for path in sorted(CAPTURES.glob("*.event.jsonl")) for line in path.read_text().splitlines()]
    events, _, _ = read_events(lines)
    t0 = time.perf_counter()
    for _ in range(rounds):
        ledger = UsageLedger()
        for event in events:
            ledger.add_event(event)
        for step in ledger.pending_pricing():
            ledger.record_cost(price_step(step, PRICING))
    elapsed = time.perf_counter() - t0
    count = rounds * len(events)
    print(f"usage: {count} captured events through the ledger ({len(events)} x {rounds})")
    print(f"  {count / elapsed:,.0f} events/s; totals {ledger.totals().tokens.total} tokens, ${ledger.totals().cost_usd}")
