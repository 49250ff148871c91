"""The harness against a real opencode 1.18.33: ScriptedModel drives it, EventReader watches it.

One turn: the model calls ``bash`` with ``echo hi``; opencode asks permission;
we reply ``once``; the tool runs; the model answers; the session goes idle.
The usage the model reported must add up, step by step, to the session totals.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobgov.testing import EventReader, OpencodeServer, ScriptedModel, Turn, Usage

pytestmark = pytest.mark.e2e

BASH = {"command": "echo hi", "description": "say hi"}
#: prompt 1000 with 400 cached, completion 50 with 20 reasoning (PROTOCOL.md "Token mapping").
FIRST = Usage(prompt_tokens=1000, completion_tokens=50, cached_tokens=400, reasoning_tokens=20)


def _tool_done(call_id: str) -> Callable[[dict[str, Any]], bool]:
    def match(evt: dict[str, Any]) -> bool:
        if evt["type"] != "message.part.updated":
            return False
        part: dict[str, Any] = evt["properties"]["part"]
        return part.get("callID") == call_id and part["state"]["status"] in ("completed", "error")

    return match


def _sum_tokens(steps: list[dict[str, Any]]) -> dict[str, Any]:
    total: dict[str, Any] = {
        "input": 0,
        "output": 0,
        "reasoning": 0,
        "cache": {"read": 0, "write": 0},
    }
    for step in steps:
        for key in ("input", "output", "reasoning"):
            total[key] += step["tokens"][key]
        for key in ("read", "write"):
            total["cache"][key] += step["tokens"]["cache"][key]
    return total


async def _session_totals(
    client: httpx.AsyncClient, sid: str, want: dict[str, Any]
) -> dict[str, Any]:
    """GET /session/{id} until its tokens equal ``want`` (the totals land just after idle)."""
    deadline = time.monotonic() + 10.0
    while True:
        session: dict[str, Any] = (await client.get(f"/session/{sid}")).json()
        if session["tokens"] == want or time.monotonic() > deadline:
            return session
        await asyncio.sleep(0.1)


async def test_bash_permission_round_trip(
    opencode_binary: Path, project_dir: Path, tmp_path: Path
) -> None:
    model = ScriptedModel([Turn.call("bash", BASH, usage=FIRST), Turn.say("Said hi.")])
    log = tmp_path / "opencode.log"
    async with (
        model,
        OpencodeServer(opencode_binary, project_dir, model.openai_base_url, log_path=log) as server,
    ):
        timeout = httpx.Timeout(30.0, connect=5.0)
        async with httpx.AsyncClient(base_url=server.base_url, timeout=timeout) as client:
            # The first subscription boots the project instance (PROTOCOL.md finding 8).
            async with EventReader(client, connect_timeout=60.0) as events:
                assert events.events[0]["type"] == "server.connected"
                sid = (await client.post("/session", json={})).json()["id"]
                prompt = {"parts": [{"type": "text", "text": "Say hi with bash."}]}
                assert (
                    await client.post(f"/session/{sid}/prompt_async", json=prompt)
                ).status_code == 204

                ask = (await events.next("permission.asked", session_id=sid, timeout=60.0))[
                    "properties"
                ]
                assert (ask["permission"], ask["patterns"], ask["always"]) == (
                    "bash",
                    ["echo hi"],
                    ["echo *"],
                )
                assert ask["metadata"] == {"command": "echo hi"}
                assert ask["id"] in [p["id"] for p in (await client.get("/permission")).json()]
                reply = await client.post(f"/permission/{ask['id']}/reply", json={"reply": "once"})
                assert (reply.status_code, reply.json()) == (200, True)
                replied = await events.next("permission.replied", session_id=sid)
                assert replied["properties"]["reply"] == "once"

                done = await events.next(
                    _tool_done(ask["tool"]["callID"]), session_id=sid, timeout=30.0
                )
                state = done["properties"]["part"]["state"]
                assert (state["status"], state["input"], state["output"].strip()) == (
                    "completed",
                    BASH,
                    "hi",
                )
                await events.next("session.idle", session_id=sid, timeout=60.0)

            steps = {
                e["properties"]["part"]["id"]: e["properties"]["part"]
                for e in events.events
                if e["type"] == "message.part.updated"
                and e["properties"]["sessionID"] == sid
                and e["properties"]["part"]["type"] == "step-finish"
            }
            assert [s["reason"] for s in steps.values()] == ["tool-calls", "stop"]
            first = next(iter(steps.values()))
            assert first["tokens"] == {
                "total": 1050,
                "input": 600,
                "output": 30,
                "reasoning": 20,
                "cache": {"write": 0, "read": 400},
            }
            want = _sum_tokens(list(steps.values()))
            session = await _session_totals(client, sid, want)
            assert session["tokens"] == want
            assert session["cost"] == pytest.approx(sum(s["cost"] for s in steps.values()))
            assert session["cost"] == pytest.approx(FIRST.cost() + Usage().cost())

    # Two agent calls consumed the script; the tool output went back to the model.
    assert len(model.agent_requests) == 2
    assert model.remaining == 0
    last_messages = model.agent_requests[-1]["messages"]
    assert any(m.get("role") == "tool" and "hi" in str(m.get("content")) for m in last_messages)
