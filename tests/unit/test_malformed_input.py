"""No input from the agent or a user crashes or stalls the judge: malformed requests go to a person."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from jobgov.cli import app
from jobgov.configfile import parse_plan_config
from jobgov.domain.asks import Category
from jobgov.domain.items import AskItem
from jobgov.opencode import jsonsafe
from jobgov.opencode.client import _TYPE_HEAD, AgentClient, _parse_events
from jobgov.opencode.events import DROPPED_TYPES, PROBLEM_KEY, read_ask
from jobgov.temporal.activities.consumer import EventStreamConsumer
from jobgov.temporal.payloads import EventBatch, StreamInput

DEEP = "[" * 100_000 + "]" * 100_000
HUGE = "7" * 5_000


def test_deep_json_is_read_with_its_deep_part_cut_off() -> None:
    value, problem = jsonsafe.loads('{"a": ' + DEEP + ', "b": "kept]"}')
    assert problem is not None and "nested more than" in problem
    assert value["b"] == "kept]"
    depth, node = 0, value["a"]
    while isinstance(node, list) and node:
        node, depth = node[0], depth + 1
    assert node is None and depth < jsonsafe.MAX_DEPTH


def test_huge_numbers_and_lone_surrogates_are_kept_as_text() -> None:
    value, problem = jsonsafe.loads('{"n": ' + HUGE + "}")
    assert problem is not None and value["n"] == HUGE
    value, problem = jsonsafe.loads('{"s": "\\ud800x", "\\udc00": 1}')
    assert problem is not None and value == {"s": "\ufffdx", "\ufffd": 1}
    json.dumps(value).encode()  # re-encodes: it can travel in a workflow signal
    assert jsonsafe.loads('{"ok": "\\ud83d\\ude00"}') == ({"ok": "\U0001f600"}, None)


def test_a_long_number_inside_deep_json_is_read_too() -> None:
    for text in ('{"n": ' + HUGE + ', "a": ' + DEEP + "}", '{"a": ' + DEEP + ', "n": ' + HUGE + "}"):
        value, problem = jsonsafe.loads(text)
        assert value["n"] == HUGE and problem is not None and "nested more than" in problem


@pytest.mark.parametrize("kind", sorted(DROPPED_TYPES))
async def test_frames_of_a_dropped_type_are_skipped_compact_or_spaced(kind: str) -> None:
    dropped = {"id": "evt_1", "type": kind, "properties": {"sessionID": "ses_1"}}
    shapes = [json.dumps(dropped), json.dumps(dropped, separators=(",", ":")), json.dumps(dropped, indent=2),
              json.dumps({k: v for k, v in dropped.items() if k != "id"})]
    long_id = json.dumps({**dropped, "id": "evt_" + "x" * 500})  # past the fast path's id: read, then skipped

    async def frames() -> AsyncIterator[Any]:
        for data in [*shapes, long_id]:
            yield SimpleNamespace(data=data)
        yield SimpleNamespace(data=json.dumps({"id": "evt_2", "type": "session.idle", "properties": {}}))
        yield SimpleNamespace(data=json.dumps({"properties": {}, "type": kind}))  # type not first: read, then skipped

    assert [e["type"] async for e in _parse_events(frames())] == ["session.idle"]
    # ... from the frame's head, without reading the JSON (the stream's fast path):
    assert all((head := _TYPE_HEAD.match(data)) and head.group(1) == kind for data in shapes)
    assert _TYPE_HEAD.match(long_id) is None
    # Only the top-level type counts: an id that holds a dropped type's name is not one.
    tricky = json.dumps({"id": f'a", "type": "{kind}', "type": "permission.asked", "properties": {}})
    assert _TYPE_HEAD.match(tricky) is None  # its escaped quote ends the fast path: the JSON is read

    async def one() -> AsyncIterator[Any]:
        yield SimpleNamespace(data=tricky)

    assert [e["type"] async for e in _parse_events(one())] == ["permission.asked"]


async def test_every_other_type_is_read_even_one_jobgov_does_not_know() -> None:
    async def frames() -> AsyncIterator[Any]:
        for kind in ("permission.asked", "session.created", "server.heartbeat", "something.new"):
            yield SimpleNamespace(data=json.dumps({"id": "evt_1", "type": kind, "properties": {}}))

    assert [e["type"] async for e in _parse_events(frames())] == [
        "permission.asked", "session.created", "server.heartbeat", "something.new"]


def test_ordinary_json_is_untouched() -> None:
    assert jsonsafe.loads('{"a": [1, 2, {"b": null}]}') == ({"a": [1, 2, {"b": None}]}, None)
    with pytest.raises(ValueError):
        jsonsafe.loads("{not json")


async def test_the_event_stream_marks_what_it_had_to_change() -> None:
    async def frames() -> AsyncIterator[Any]:
        yield SimpleNamespace(data=json.dumps({"type": "permission.asked", "properties": {"id": "p", "n": 1}}))
        yield SimpleNamespace(data='{"type": "permission.asked", "properties": {"id": "q", "deep": ' + DEEP + "}}")
        yield SimpleNamespace(data="{broken")

    events = [event async for event in _parse_events(frames())]
    assert [e["properties"]["id"] for e in events] == ["p", "q"]
    assert PROBLEM_KEY not in events[0] and "nested" in events[1][PROBLEM_KEY]


def test_a_malformed_ask_is_still_an_ask_with_its_problem() -> None:
    ask, problem = read_ask({"id": "p", "sessionID": "s", "permission": "bash", "patterns": 5}) or (None, None)
    assert ask is not None and ask.id == "p" and problem is not None and "patterns" in problem
    ask, problem = read_ask({"id": "p", "sessionID": "s", "permission": "bash", PROBLEM_KEY: "is nested"}) or (
        None, None)
    assert ask is not None and problem == "is nested" and PROBLEM_KEY not in ask.model_dump(by_alias=True)
    assert read_ask({"sessionID": "s", "permission": "bash"}) is None  # no id: nothing can answer it


async def test_the_stream_sends_a_malformed_ask_to_a_person(tmp_path: Path) -> None:
    sent: list[EventBatch] = []

    async def send(batch: EventBatch) -> None:
        sent.append(batch)

    policy = parse_plan_config("").policy_for(None)
    stream_input = StreamInput(agent_url="http://127.0.0.1:9", session_id="s", worktree=str(tmp_path), policy=policy)
    async with httpx.AsyncClient() as http:
        consumer = EventStreamConsumer(AgentClient(http, "http://127.0.0.1:9"), stream_input, send, lambda *a: None)
        for properties in ({"id": "p1", "sessionID": "s", "permission": "bash", "metadata": {"command": "ls"},
                            PROBLEM_KEY: "is nested more than 64 levels deep"},
                           {"id": "p2", "sessionID": "s", "permission": "bash", "patterns": {"not": "a list"}}):
            await consumer._on_event({"type": "permission.asked", "properties": properties})
        await consumer._flush()
    asks = [item for batch in sent for item in batch.items if isinstance(item, AskItem)]
    assert [a.ask.ask.id for a in asks] == ["p1", "p2"]
    for item in asks:
        assert item.auto is None  # no automatic reply: the workflow keeps it pending for a person
        (operation,) = item.ask.operations
        assert operation.uncertain and operation.category is Category.OTHER
        assert "jobgov cannot judge this ask" in operation.detail
    EventBatch.model_validate_json(sent[0].model_dump_json())  # it travels as a signal


@pytest.mark.parametrize(("request_text", "message"), [
    ('{"id": "p", "sessionID": "s", "permission": "bash", "metadata": ' + DEEP + "}", "nested more than"),
    ('{"id": "p", "sessionID": "s", "permission": "bash", "metadata": {"n": ' + HUGE + "}}", "number too long"),
    ('{"id": "p", "sessionID": "s", "permission": "bash", "patterns": 5}', "patterns"),
    ('{"id": "p", "sessionID": "s", "permission": "bash", "metadata": {"command": "\\ud800"}}', "not valid Unicode"),
    ("[1, 2]", "expected a JSON object"),
])
def test_policy_check_refuses_malformed_requests_with_exit_2(tmp_path: Path, request_text: str, message: str) -> None:
    request = tmp_path / "request.json"
    request.write_text(request_text)
    result = CliRunner().invoke(app, ["policy", "check", "--worktree", str(tmp_path), str(request)])
    assert result.exit_code == 2, result.output
    assert message in result.output and str(request) in result.output


def test_policy_check_explains_every_segment(tmp_path: Path) -> None:
    request = tmp_path / "request.json"
    command = "ls && cat ../x && python3 -c 'print(1)'"
    request.write_text(json.dumps({"id": "p", "sessionID": "s", "permission": "bash",
                                   "metadata": {"command": command}}))
    result = CliRunner().invoke(app, ["policy", "check", "--worktree", str(tmp_path), str(request)])
    assert result.exit_code == 0, result.output
    decision = json.loads(result.output)
    rows = {row["text"]: row for row in decision["segments"]}
    assert rows["ls"]["action"] == "auto-approve" and rows["ls"]["location"] == "inside"
    assert rows["cat ../x"]["location"] == "outside" and rows["cat ../x"]["action"] == "deny"
    assert "program text" in rows["python3 -c print(1)"]["reason"]
    assert decision["action"] == "deny"
