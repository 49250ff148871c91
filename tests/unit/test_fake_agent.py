"""FakeAgent speaks opencode 1.18.33's protocol: checked over real HTTP with httpx.

The expected shapes and orders come from the captures in
``tests/fixtures/opencode/captures`` and the findings of its PROTOCOL.md.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from jobgov.testing import EventReader, FakeAgent, Scenario, ScriptedModel, Turn, Usage
from jobgov.testing._fake_session import REJECTED
from tests.helpers import CAPTURES

PROMPT = {"parts": [{"type": "text", "text": "go"}]}

async def _client(agent: FakeAgent) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=agent.base_url, timeout=5.0)


async def _start(client: httpx.AsyncClient) -> str:
    """Create a session and prompt it; return the session id."""
    created = await client.post("/session", json={})
    assert created.status_code == 200
    sid: str = created.json()["id"]
    prompted = await client.post(f"/session/{sid}/prompt_async", json=PROMPT)
    assert prompted.status_code == 204
    return sid


async def _reply(
    client: httpx.AsyncClient, rid: str, reply: str, message: str | None = None
) -> None:
    body: dict[str, Any] = {"reply": reply}
    if message is not None:
        body["message"] = message
    response = await client.post(f"/permission/{rid}/reply", json=body)
    assert (response.status_code, response.json()) == (200, True)


def _tool_parts(events: list[dict[str, Any]], sid: str) -> list[dict[str, Any]]:
    return [
        e["properties"]["part"]
        for e in events
        if e["type"] == "message.part.updated"
        and e["properties"]["sessionID"] == sid
        and e["properties"]["part"]["type"] == "tool"
    ]


@pytest.fixture
async def approve() -> AsyncIterator[tuple[FakeAgent, httpx.AsyncClient]]:
    agent = FakeAgent.from_capture(CAPTURES / "approve.event.jsonl")
    async with agent, await _client(agent) as client:
        yield agent, client


async def test_health_and_session_shape(approve: tuple[FakeAgent, httpx.AsyncClient]) -> None:
    _, client = approve
    assert (await client.get("/global/health")).json() == {"healthy": True, "version": "1.18.33"}
    captured = json.loads((CAPTURES / "approve.event.jsonl").read_text().splitlines()[0])
    info = (await client.post("/session", json={})).json()
    assert set(info) == set(captured["properties"]["info"])
    assert info["id"].startswith("ses_")
    assert info["id"] != captured["properties"]["sessionID"]
    assert (await client.get(f"/session/{info['id']}")).json()["id"] == info["id"]
    missing = await client.get("/session/ses_unknown")
    assert missing.status_code == 404
    assert missing.json()["name"] == "NotFoundError"


async def test_replays_approve_capture_with_replies(
    approve: tuple[FakeAgent, httpx.AsyncClient],
) -> None:
    agent, client = approve
    async with EventReader(client) as events:
        assert events.events[0]["type"] == "server.connected"
        sid = await _start(client)
        for expected, reply in (
            ("bash", "once"),
            ("edit", "always"),
            ("external_directory", "once"),
        ):
            ask = await events.next("permission.asked", session_id=sid)
            assert ask["properties"]["permission"] == expected
            assert [p["id"] for p in (await client.get("/permission")).json()] == [
                ask["properties"]["id"]
            ]
            await _reply(client, ask["properties"]["id"], reply)
            replied = await events.next("permission.replied", session_id=sid)
            assert replied["properties"] == {
                "sessionID": sid,
                "requestID": ask["properties"]["id"],
                "reply": reply,
            }
        await events.next("session.idle", session_id=sid)
    await agent.wait_idle(sid)
    assert [r.reply for r in agent.replies] == ["once", "always", "once"]
    assert (await client.get("/permission")).json() == []
    session = (await client.get(f"/session/{sid}")).json()
    assert session["cost"] == pytest.approx(0.015)
    assert session["tokens"] == {
        "input": 4000,
        "output": 200,
        "reasoning": 0,
        "cache": {"read": 0, "write": 0},
    }
    # The message list has the shape of the captured GET /session/{id}/message.
    captured = json.loads((CAPTURES / "approve.messages.json").read_text())
    messages = (await client.get(f"/session/{sid}/message")).json()
    assert [[p["type"] for p in m["parts"]] for m in messages] == [
        [p["type"] for p in m["parts"]] for m in captured
    ]
    assert messages[-1]["parts"][1]["text"] == "All three steps done."  # rebuilt from the deltas


async def test_reject_without_message_stops_the_run(
    approve: tuple[FakeAgent, httpx.AsyncClient],
) -> None:
    agent, client = approve
    async with EventReader(client) as events:
        sid = await _start(client)
        ask = await events.next("permission.asked", session_id=sid)
        await _reply(client, ask["properties"]["id"], "reject")
        await events.next("session.idle", session_id=sid)
        await agent.wait_idle(sid)
        after = events.types(sid)[events.types(sid).index("permission.replied") :]
    assert "permission.asked" not in after
    assert "session.error" not in after
    failed = _tool_parts(agent.events, sid)[-1]
    assert failed["state"]["status"] == "error"
    assert failed["state"]["error"] == REJECTED
    assert agent.sessions[sid]["cost"] == pytest.approx(0.00375)  # the rejected step still counts


async def test_reject_with_message_continues(approve: tuple[FakeAgent, httpx.AsyncClient]) -> None:
    agent, client = approve
    async with EventReader(client) as events:
        sid = await _start(client)
        ask = await events.next("permission.asked", session_id=sid)
        await _reply(client, ask["properties"]["id"], "reject", "not that one")
        nxt = await events.next("permission.asked", session_id=sid)
        assert nxt["properties"]["permission"] == "edit"
    call = ask["properties"]["tool"]["callID"]
    failed = [p for p in _tool_parts(agent.events, sid) if p["callID"] == call][-1]
    assert failed["state"]["status"] == "error"
    assert failed["state"]["error"].endswith("with the following feedback: not that one")
    assert agent.replies[0].message == "not that one"


async def test_abort_keeps_the_ask_listed(approve: tuple[FakeAgent, httpx.AsyncClient]) -> None:
    agent, client = approve
    async with EventReader(client) as events:
        sid = await _start(client)
        ask = (await events.next("permission.asked", session_id=sid))["properties"]
        aborted = await client.post(f"/session/{sid}/abort")
        assert (aborted.status_code, aborted.json()) == (200, True)
        error = await events.next("session.error", session_id=sid)
        assert error["properties"]["error"] == {
            "name": "MessageAbortedError",
            "data": {"message": "Aborted"},
        }
        await events.next(
            lambda e: e["type"] == "session.status" and e["properties"]["status"]["type"] == "idle"
        )
        await events.next("session.idle", session_id=sid)
        tool = await events.next("message.part.updated", session_id=sid)
        assert tool["properties"]["part"]["state"]["error"] == "Tool execution aborted"
        message = await events.next("message.updated", session_id=sid)
        assert message["properties"]["info"]["error"]["name"] == "MessageAbortedError"
        assert message["properties"]["info"]["cost"] == 0
        await events.next("session.idle", session_id=sid)  # the second idle of finding 4
        await agent.wait_idle(sid)
        assert "permission.replied" not in events.types(sid)
    assert agent.aborts == [sid]
    # finding 3: still listed, and a late reply is accepted (jobgov must never send one).
    assert [p["id"] for p in (await client.get("/permission")).json()] == [ask["id"]]
    await _reply(client, ask["id"], "once")
    assert agent.replies[-1].late is True
    assert (await client.get("/permission")).json() == []


async def test_abort_idle_and_unknown_sessions(
    approve: tuple[FakeAgent, httpx.AsyncClient],
) -> None:
    agent, client = approve
    assert agent.aborts == []
    sid = (await client.post("/session", json={})).json()["id"]
    async with EventReader(client) as events:
        assert (await client.post(f"/session/{sid}/abort")).json() is True
        assert (await client.post("/session/ses_nope/abort")).json() is True
        idle = await events.next("session.idle")
        assert idle["properties"] == {"sessionID": "ses_nope"}
    assert agent.aborts == [sid, "ses_nope"]


async def test_reply_errors(approve: tuple[FakeAgent, httpx.AsyncClient]) -> None:
    agent, client = approve
    unknown = await client.post("/permission/per_unknown/reply", json={"reply": "once"})
    assert unknown.status_code == 404
    assert unknown.json()["_tag"] == "PermissionNotFoundError"
    assert unknown.json()["requestID"] == "per_unknown"
    for bad in (
        {"reply": "yes"},
        {},
        {"reply": "once", "extra": 1},
        {"reply": "once", "message": 3},
    ):
        response = await client.post("/permission/per_unknown/reply", json=bad)
        assert response.status_code == 400
        assert response.json()["data"]["kind"] == "Payload"
    assert agent.replies == []


async def test_drop_streams_loses_events(approve: tuple[FakeAgent, httpx.AsyncClient]) -> None:
    agent, client = approve
    async with EventReader(client) as first:
        sid = await _start(client)
        ask = await first.next("permission.asked", session_id=sid)
        assert agent.drop_streams() == 1
        await asyncio.wait_for(first.closed.wait(), 5.0)
    # Produced while nobody listens: the reply, the bash run and the next ask.
    await _reply(client, ask["properties"]["id"], "once")
    edit = await agent.wait_for_ask(sid, "edit")
    async with EventReader(client) as second:
        assert second.events[0]["type"] == "server.connected"
        await _reply(client, edit["id"], "once")
        replied = await second.next("permission.replied", session_id=sid)
        assert replied["properties"]["requestID"] == edit["id"]  # not the first reply
        types = second.types(sid)
    assert "permission.asked" not in types  # the edit ask was never replayed
    # Reconciling through the API still works: the run went on.
    assert len(agent.replies) == 2


async def test_permission_list_400_while_webfetch_pending() -> None:
    capture = CAPTURES / "webfetch.event.jsonl"
    for switch, status in ((True, 400), (False, 200)):
        agent = FakeAgent.from_capture(capture, webfetch_list_error=switch)
        async with agent, await _client(agent) as client:
            sid = await _start(client)
            ask = await agent.wait_for_ask(sid, "webfetch")
            listed = await client.get("/permission")
            assert listed.status_code == status
            if switch:
                assert listed.json()["name"] == "BadRequest"
                assert "metadata" in listed.json()["data"]["message"]
            await _reply(client, ask["id"], "once")
            await agent.wait_idle(sid)
            assert (await client.get("/permission")).status_code == 200


async def test_heartbeats_and_resend() -> None:
    agent = FakeAgent(heartbeat_interval=0.05)
    async with agent, await _client(agent) as client, EventReader(client) as events:
        await events.next("server.heartbeat", timeout=2.0)
        sid = await _start(client)
        await events.next("session.idle", session_id=sid)
        await agent.wait_idle(sid)
        again = agent.resend_last(1)[0]
        await events.next(lambda e: e["id"] == again["id"])
        await events.next(lambda e: e["id"] == again["id"])  # the same event, sent twice


async def test_synthetic_scenario_shapes_and_totals() -> None:
    usage = Usage(prompt_tokens=1000, completion_tokens=50, cached_tokens=400, reasoning_tokens=20)
    scenario = Scenario().bash("rm -rf build && ls", usage=usage).webfetch("https://example.com")
    scenario.external_directory("/srv/agent/outside/x.txt").text("Finished.").next_turn().text(
        "Again."
    )
    # The captures' worktree: the shapes below are theirs.
    async with FakeAgent(scenario, duplicate_events=True, directory="/srv/agent/project") as agent, await _client(
        agent
    ) as client:
        async with EventReader(client) as events:
            sid = await _start(client)
            expected = [
                ("bash", ["rm -rf build", "ls"], ["rm *", "ls *"]),
                ("webfetch", ["https://example.com"], ["*"]),
                ("external_directory", ["/srv/agent/outside/*"], ["/srv/agent/outside/*"]),
                ("edit", ["../outside/x.txt"], ["*"]),
            ]
            seen: set[str] = set()

            def new_ask(evt: dict[str, Any]) -> bool:  # duplicates carry the same event id
                fresh = evt["type"] == "permission.asked" and evt["id"] not in seen
                seen.add(evt["id"])
                return fresh

            for permission, patterns, always in expected:
                ask = (await events.next(new_ask, session_id=sid))["properties"]
                assert (ask["permission"], ask["patterns"], ask["always"]) == (
                    permission,
                    patterns,
                    always,
                )
                assert set(ask) == {
                    "id",
                    "sessionID",
                    "permission",
                    "patterns",
                    "metadata",
                    "always",
                    "tool",
                }
                await _reply(client, ask["id"], "once")
            await agent.wait_idle(sid)
            await client.post(f"/session/{sid}/prompt_async", json=PROMPT)
            await agent.wait_idle(sid)
            await asyncio.sleep(0.05)
        ids = [e["id"] for e in events.events if e["type"] != "server.connected"]
        assert len(ids) == 2 * len(set(ids))  # every event arrived twice
    steps = [
        e["properties"]["part"]
        for e in agent.events
        if e["type"] == "message.part.updated" and e["properties"]["part"]["type"] == "step-finish"
    ]
    assert steps[0]["tokens"] == {
        "total": 1050,
        "input": 600,
        "output": 30,
        "reasoning": 20,
        "cache": {"write": 0, "read": 400},
    }
    assert steps[0]["cost"] == pytest.approx(0.00267)
    assert agent.sessions[sid]["cost"] == pytest.approx(0.00267 + 4 * 0.00375)
    assert agent.sessions[sid]["tokens"]["input"] == 600 + 4 * 1000
    finishes = [
        m["info"].get("finish") for m in agent.messages(sid) if m["info"]["role"] == "assistant"
    ]
    assert finishes == ["tool-calls", "tool-calls", "tool-calls", "stop", "stop"]
    assert [p.text for p in agent.prompts] == ["go", "go"]


async def test_always_applies_across_sessions() -> None:
    async with (
        FakeAgent(Scenario.synthetic(2, ask="edit")) as agent,
        await _client(agent) as client,
    ):
        first = await _start(client)
        ask = await agent.wait_for_ask(first, "edit")
        await _reply(client, ask["id"], "always")
        await agent.wait_idle(first, timeout=5.0)  # the second edit was not asked
        second = await _start(client)
        await agent.wait_idle(second, timeout=5.0)
    assert len(agent.replies) == 1
    assert not any(
        e["type"] == "permission.asked" and e["properties"]["sessionID"] == second
        for e in agent.events
    )


async def test_capture_abort_holds_until_aborted() -> None:
    capture = CAPTURES / "abort_running_tool.event.jsonl"
    async with FakeAgent.from_capture(capture) as agent, await _client(agent) as client:
        sid = await _start(client)
        ask = await agent.wait_for_ask(sid, "bash")
        await _reply(client, ask["id"], "once")
        with pytest.raises(TimeoutError):
            await agent.wait_idle(sid, timeout=0.2)  # the captured run holds where it was aborted
        await client.post(f"/session/{sid}/abort")
        await agent.wait_idle(sid)
    bash = _tool_parts(agent.events, sid)[-1]
    assert bash["state"]["status"] == "completed"  # finding 5
    assert "User aborted the command" in bash["state"]["output"]


async def test_abort_of_a_running_synthetic_bash() -> None:
    agent = FakeAgent(Scenario().bash("sleep 30", duration=30.0).text("never"))
    async with agent, await _client(agent) as client:
        sid = await _start(client)
        await _reply(client, (await agent.wait_for_ask(sid, "bash"))["id"], "once")
        await asyncio.sleep(0.05)
        assert (await client.get("/session/status")).json() == {sid: {"type": "busy"}}
        assert (await client.post(f"/session/{sid}/abort")).json() is True
        await agent.wait_idle(sid)
        assert (await client.get("/session/status")).json() == {}
    bash = _tool_parts(agent.events, sid)[-1]
    assert bash["state"]["status"] == "completed"  # finding 5
    assert agent.sessions[sid]["cost"] == 0  # finding 6: the aborted step lost its usage
    types = [e["type"] for e in agent.events if e["properties"].get("sessionID") == sid]
    tail = types[types.index("session.error") :]
    assert tail[:3] == ["session.error", "session.status", "session.idle"]  # finding 4
    assert tail[-2:] == ["session.status", "session.idle"]


async def test_scripted_model_streams_openai_chunks() -> None:
    turns = [
        Turn.call("bash", {"command": "echo hi"}, usage=Usage(cached_tokens=400)),
        Turn.say("ok"),
    ]
    async with ScriptedModel(turns) as model, httpx.AsyncClient(base_url=model.base_url) as client:
        title = await client.post("/v1/chat/completions", json={"stream": True, "messages": []})
        assert "title" in title.text
        assert model.remaining == 2
        body = {"stream": True, "messages": [], "tools": [{"type": "function"}]}
        answer = await client.post("/v1/chat/completions", json=body)
        frames = [line[6:] for line in answer.text.splitlines() if line.startswith("data: ")]
        assert frames[-1] == "[DONE]"
        chunks = [json.loads(f) for f in frames[:-1]]
        assert chunks[-1]["usage"]["prompt_tokens_details"] == {"cached_tokens": 400}
        assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
        arguments = "".join(
            c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
            for c in chunks
            if c["choices"] and "tool_calls" in c["choices"][0]["delta"]
        )
        assert json.loads(arguments) == {"command": "echo hi"}
        for expected in ("ok", "done"):
            text = (
                await client.post("/v1/chat/completions", json={**body, "stream": False})
            ).json()
            assert text["choices"][0]["message"]["content"] == expected
        assert len(model.agent_requests) == 3
        assert len(model.title_requests) == 1
        assert (await client.get("/v1/models")).json()["data"][0]["id"] == "fake-model"


async def test_a_paced_run_answers_its_http_calls_at_once() -> None:
    """opencode answers a session's creation and a reply at once; the run's pace (``event_delay``)
    is the run's own: its next event still waits that long after the reply's event."""
    slow = 60.0  # longer than the test's 10 s bound: a call that waited for the pace would fail
    agent = FakeAgent(Scenario().bash("ls").text("Done."), event_delay=slow)
    async with agent, await _client(agent) as client:
        created = await asyncio.wait_for(client.post("/session", json={}), 10)
        sid = created.json()["id"]
        agent.event_delay = 0.001  # quickly to the ask
        assert (await client.post(f"/session/{sid}/prompt_async", json=PROMPT)).status_code == 204
        ask = await agent.wait_for_ask(sid, "bash")
        agent.event_delay = slow
        await asyncio.wait_for(_reply(client, ask["id"], "once"), 10)
        assert [r.request_id for r in agent.replies] == [ask["id"]]
        # The run waits out its pace after the reply's event before going on.
        assert agent.events[-1]["type"] == "permission.replied"
