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

__all__ = ["MAX_UNDELIVERED", "heartbeat_details", "read_records"]

_LOG = logging.getLogger(__name__)

#: Decisions a stream holds undelivered at most; beyond, it delivers each before replying (the
#: workflow is not hearing it, and the heartbeat details must stay small).
MAX_UNDELIVERED: Final = 32


def heartbeat_details(progress: StreamProgress, undelivered: Sequence[AskItem]) -> dict[str, Any]:
    """The details of one heartbeat: the progress, and the decisions recorded and not delivered."""
    return {**asdict(progress), names.HEARTBEAT_RECORDS: [item.model_dump(mode="json") for item in undelivered]}


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
