"""Automatic decisions recorded in the stream activity's heartbeat (from 0.6).

Recording a decision by signal costs the job a history event and a workflow task per ask. A
heartbeat costs neither: it is one write to the activity's row on the Temporal server, and it is
as durable. So a 0.6 stream (``StreamInput.record_in_heartbeat``) records each automatic
decision with a heartbeat RPC whose answer it awaits, replies to the agent, and delivers the
decision with the next batch of events. Until it is delivered, a decision stays in every
heartbeat's details, under :data:`jobgov.names.HEARTBEAT_RECORDS`:

- a retried attempt (its worker died) reads it from its predecessor's details and delivers it first;
- before its run closes (continue-as-new, the job's end) the workflow reads the details of its
  pending streams (``collect_stream``), so no decision dies with the run;
- a stream whose run has closed hands what it still holds on to the workflow's newer run.

A heartbeat's answer also says whether the workflow asked this stream to stop (new inputs, or
the run is closing): a decision recorded then is not applied, and goes to the workflow instead.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any, Final

import pydantic

from jobgov import names
from jobgov.domain.items import AskItem
from jobgov.temporal.activities.stream_settings import StreamProgress

__all__ = ["MAX_UNDELIVERED", "Undelivered", "read_records"]

_LOG = logging.getLogger(__name__)

#: Decisions a stream holds undelivered at most; beyond, it delivers each before replying (the
#: workflow is not hearing it, and the heartbeat details must stay small).
MAX_UNDELIVERED: Final = 32


class Undelivered:
    """The decisions a stream recorded in heartbeats and has not delivered, in order.

    Each is dumped to JSON once, when it is recorded: every heartbeat carries all of them, and
    dumping them anew for each one cost 3 % of a loaded worker's CPU (``make bench``).
    """

    def __init__(self, items: Sequence[AskItem] = ()) -> None:
        self._items: list[AskItem] = []
        self._dumped: list[dict[str, Any]] = []
        for item in items:
            self.append(item)

    def __len__(self) -> int:
        return len(self._items)

    def append(self, item: AskItem) -> None:
        self._items.append(item)
        self._dumped.append(item.model_dump(mode="json"))

    def remove(self, item: AskItem) -> None:
        """Forget ``item`` (``ValueError`` when it is not held)."""
        index = self._items.index(item)
        del self._items[index], self._dumped[index]

    def clear(self) -> None:
        self._items.clear()
        self._dumped.clear()

    def details(self, progress: StreamProgress) -> dict[str, Any]:
        """The details of one heartbeat: the progress, and the decisions recorded and not delivered."""
        return {**asdict(progress), names.HEARTBEAT_RECORDS: list(self._dumped)}


def read_records(details: object) -> list[AskItem]:
    """The undelivered decisions in a heartbeat's details; never raises (a record that cannot be
    read is logged and skipped: its ask, still pending at the agent, is decided again)."""
    if not isinstance(details, dict):
        return []
    raw = details.get(names.HEARTBEAT_RECORDS)
    if not isinstance(raw, list):
        return []
    items: list[AskItem] = []
    for n, entry in enumerate(raw):
        try:
            items.append(AskItem.model_validate(entry))
        except pydantic.ValidationError as exc:
            _LOG.error("heartbeat details: record %d (%s) is not an ask: %s", n, names.HEARTBEAT_RECORDS, exc)
    return items
