"""A workflow that only takes signals: the floor a signal RPC costs (``bench.load``)."""

from __future__ import annotations

from temporalio import workflow


@workflow.defn(name="bench.Sink")
class Sink:
    """Counts signals until terminated."""

    def __init__(self) -> None:
        self.count = 0

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self.count >= 1_000_000)

    @workflow.signal
    def poke(self) -> None:
        self.count += 1
