"""Rolling deploys: every message in a recorded history is read by a newer and by an older version.

Replaying the histories recorded by earlier releases (``tests/histories/``) decodes every
workflow input, signal, update, activity result and continue-as-new input they hold, and
encodes every activity input the workflows schedule. Each such message is captured here and
read again as it would arrive from a newer version during a rolling deploy: with a field this
version does not know added to every object of it (at every depth the model describes). It
must read the same. The other direction, a newer version reading what an older one wrote, is
the replay itself: the histories are kept exactly as the earlier release recorded them
(``test_replay.py``), and fields are only ever added with defaults.
"""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter
from temporalio.worker import Replayer

from jobgov.temporal.plugin import JobGovPlugin

HISTORIES = Path(__file__).resolve().parents[1] / "histories"
FUTURE = "zz_field_from_a_newer_version"


def _recorded() -> list[Path]:
    return sorted(HISTORIES.rglob("*.json"))


async def _messages(monkeypatch: pytest.MonkeyPatch) -> dict[type[BaseModel], list[dict[str, Any]]]:
    """Every jobgov message the replays decode or encode, by model type."""
    seen: dict[type[BaseModel], list[dict[str, Any]]] = {}

    def keep(kind: Any, data: bytes) -> None:
        if isinstance(kind, type) and issubclass(kind, BaseModel) and kind.__module__.startswith("jobgov."):
            seen.setdefault(kind, []).append(json.loads(data))

    decode, encode = PydanticJSONPlainPayloadConverter.from_payload, PydanticJSONPlainPayloadConverter.to_payload

    def from_payload(self: Any, payload: Any, type_hint: Any = None) -> Any:
        keep(type_hint, payload.data)
        return decode(self, payload, type_hint)

    def to_payload(self: Any, value: Any) -> Any:
        payload = encode(self, value)
        if payload is not None:
            keep(type(value), payload.data)
        return payload

    monkeypatch.setattr(PydanticJSONPlainPayloadConverter, "from_payload", from_payload)
    monkeypatch.setattr(PydanticJSONPlainPayloadConverter, "to_payload", to_payload)
    for path in _recorded():
        history = WorkflowHistory.from_json(path.stem, path.read_text())
        await Replayer(workflows=[], plugins=[JobGovPlugin()]).replay_workflow(history)
    monkeypatch.undo()
    return seen


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold a value of directly (``X | None``, ``Annotated``)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _models_in(args[0])
    if args and origin not in (list, dict, tuple):
        return [m for arg in args for m in _models_in(arg)]
    return [annotation] if isinstance(annotation, type) and issubclass(annotation, BaseModel) else []


def _newer(model: type[BaseModel], data: Any) -> Any:
    """``data`` with an unknown field in every object that ``model`` describes, at every depth."""
    if not isinstance(data, dict) or "root" in model.model_fields:
        return data
    out = dict(data)
    for name, field in model.model_fields.items():
        key = field.alias or name
        if key not in out:
            continue
        origin, args = typing.get_origin(field.annotation), typing.get_args(field.annotation)
        value = out[key]
        inner = [m for arg in args for m in _models_in(arg)] if origin in (list, dict) else []
        if origin is list and inner and isinstance(value, list):
            out[key] = [_newer(_pick(inner, v), v) for v in value]
        elif origin is dict and inner and isinstance(value, dict):
            out[key] = {k: _newer(_pick(inner, v), v) for k, v in value.items()}
        elif (models := _models_in(field.annotation)) and isinstance(value, dict):
            out[key] = _newer(_pick(models, value), value)
    out[FUTURE] = {"anything": [1, 2, 3]}
    return out


def _pick(models: list[type[BaseModel]], value: Any) -> type[BaseModel]:
    """The model a value of a (discriminated) union is: by its ``kind``, else the first."""
    if isinstance(value, dict) and "kind" in value:
        for model in models:
            kind = model.model_fields.get("kind")
            if kind is not None and kind.default == value["kind"]:
                return model
    return models[0]


def _without_future(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_future(v) for k, v in value.items() if k != FUTURE}
    if isinstance(value, list):
        return [_without_future(v) for v in value]
    return value


async def test_every_recorded_message_is_read_by_a_newer_version(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = await _messages(monkeypatch)
    names = {model.__name__ for model in seen}
    # The replays cover the workflows' inputs, signals, updates, activity inputs and results.
    for expected in ("JobInput", "PlanInput", "EventBatch", "ApproveInput", "ResumeInput", "StreamInput",
                     "ReplyInput", "NotifyInput", "ReportToPlanInput", "PlanJobReport", "DecisionRecord",
                     "CollectedRecords"):
        assert expected in names, sorted(names)
    checked = 0
    for model, samples in seen.items():
        for sample in samples:
            original = model.model_validate(sample).model_dump(mode="json")
            newer = model.model_validate(_newer(model, sample)).model_dump(mode="json")
            # Models that keep what opencode adds (extra="allow") keep the new field too; the rest is equal.
            assert _without_future(newer) == original, model.__name__
            checked += 1
    assert checked >= 50


@pytest.mark.parametrize("path", _recorded(), ids=lambda p: p.stem)
def test_recorded_histories_are_kept(path: Path) -> None:
    """A release's recordings are compatibility data: they are never re-recorded (only added)."""
    history = json.loads(path.read_text())
    assert history["events"][0]["eventType"] in ("EVENT_TYPE_WORKFLOW_EXECUTION_STARTED", "WorkflowExecutionStarted")
