"""``ScriptedModel``: an OpenAI-compatible chat-completions server that answers from a script.

Point a real ``opencode serve`` at it (provider ``@ai-sdk/openai-compatible``,
``baseURL`` = :attr:`ScriptedModel.openai_base_url`) and every agent LLM call
consumes the next :class:`Turn`: a text answer, one or more tool calls, or an
HTTP error. Each turn reports its :class:`~jobgov.testing.shapes.Usage` in the
last stream chunk, which opencode turns into step tokens and cost. Requests
without ``tools`` are opencode's title-generation calls (PROTOCOL.md finding
9): they get a short title and do not consume a turn. Once the script is
exhausted every call answers the text ``done``::

    model = ScriptedModel([Turn.call("bash", {"command": "echo hi"}), Turn.say("Said hi.")])
    async with model:
        ...  # model.requests holds every request body
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from jobgov.testing._httpserver import (
    EventStream,
    HttpServer,
    Request,
    Response,
    StreamingResponse,
    json_response,
)
from jobgov.testing._service import AsyncService
from jobgov.testing._shapes import Usage, new_id

__all__ = ["ScriptedModel", "ToolCall", "Turn"]

TITLE = "Fake session title"
MODEL_ID = "fake-model"


@dataclass(frozen=True)
class ToolCall:
    """One function call the model makes: the tool ``name`` and its JSON ``arguments``."""

    name: str
    arguments: dict[str, Any]
    id: str | None = None


@dataclass(frozen=True)
class Turn:
    """The answer to one agent LLM call; build it with :meth:`say`, :meth:`call` or :meth:`fail`."""

    text: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage = field(default_factory=Usage)
    #: Answer this HTTP status with an OpenAI error body instead of a stream.
    error_status: int | None = None
    #: Seconds to wait before the first byte (to test aborts while the model "thinks").
    delay: float = 0.0

    @classmethod
    def say(cls, text: str, *, usage: Usage | None = None, delay: float = 0.0) -> Turn:
        """A text answer (finish reason ``stop``)."""
        return cls(text=text, usage=usage or Usage(), delay=delay)

    @classmethod
    def call(
        cls, name: str, arguments: dict[str, Any], *, usage: Usage | None = None, delay: float = 0.0
    ) -> Turn:
        """A single tool call (finish reason ``tool_calls``)."""
        return cls(tool_calls=(ToolCall(name, arguments),), usage=usage or Usage(), delay=delay)

    @classmethod
    def calls(cls, *calls: ToolCall, usage: Usage | None = None, delay: float = 0.0) -> Turn:
        """Several tool calls in one answer."""
        return cls(tool_calls=tuple(calls), usage=usage or Usage(), delay=delay)

    @classmethod
    def fail(cls, status: int, message: str = "scripted upstream error") -> Turn:
        """An HTTP error answer, e.g. 400 (opencode gives up) or 500 (opencode retries)."""
        return cls(text=message, error_status=status)


class ScriptedModel(AsyncService):
    """An OpenAI-compatible model server on 127.0.0.1 that plays a list of :class:`Turn`."""

    def __init__(self, turns: Sequence[Turn] = (), *, model_id: str = MODEL_ID) -> None:
        self.turns: list[Turn] = list(turns)
        self.model_id = model_id
        #: Every request body received, in order (title calls included).
        self.requests: list[dict[str, Any]] = []
        self._next = 0
        self._server = HttpServer()
        self._server.route("POST", "/v1/chat/completions", self._completions)
        self._server.route("GET", "/v1/models", self._models)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``; valid once started."""
        return self._server.base_url

    @property
    def openai_base_url(self) -> str:
        """The ``baseURL`` for an OpenAI-compatible client: ``http://127.0.0.1:<port>/v1``."""
        return f"{self._server.base_url}/v1"

    @property
    def agent_requests(self) -> list[dict[str, Any]]:
        """The requests that consumed (or would have consumed) a turn: those with ``tools``."""
        return [r for r in self.requests if r.get("tools")]

    @property
    def title_requests(self) -> list[dict[str, Any]]:
        """opencode's title-generation requests (no ``tools``)."""
        return [r for r in self.requests if not r.get("tools")]

    @property
    def remaining(self) -> int:
        """How many scripted turns are still unplayed."""
        return max(0, len(self.turns) - self._next)

    async def start(self) -> None:
        """Listen on 127.0.0.1 (an ephemeral port)."""
        await self._server.start()

    async def stop(self) -> None:
        """Stop serving."""
        await self._server.stop()

    def _take_turn(self, body: dict[str, Any]) -> Turn:
        if not body.get("tools"):
            return Turn.say(TITLE, usage=Usage(prompt_tokens=100, completion_tokens=5))
        if self._next >= len(self.turns):
            return Turn.say("done")
        turn = self.turns[self._next]
        self._next += 1
        return turn

    async def _models(self, request: Request) -> Response:
        model = {"id": self.model_id, "object": "model", "created": 0, "owned_by": "jobgov"}
        return json_response({"object": "list", "data": [model]})

    async def _completions(self, request: Request) -> Response | StreamingResponse:
        body = request.json_object()
        if body is None:
            return _error(400, "request body must be a JSON object")
        self.requests.append(body)
        turn = self._take_turn(body)
        if turn.delay:
            await asyncio.sleep(turn.delay)
        if turn.error_status is not None:
            return _error(turn.error_status, turn.text or "error")
        chunks = _chunks(turn, self.model_id)
        if not body.get("stream"):
            return json_response(_completion(turn, self.model_id))

        async def produce(stream: EventStream) -> None:
            for chunk in chunks:
                await stream.send_sse(json.dumps(chunk))
            await stream.send_sse("[DONE]")

        return StreamingResponse(produce)


def _error(status: int, message: str) -> Response:
    return json_response(
        {"error": {"message": message, "type": "scripted_error", "code": str(status)}}, status
    )


def _frame(completion_id: str, model: str, choices: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": choices,
    }


def _chunks(turn: Turn, model: str) -> list[dict[str, Any]]:
    """The stream of one answer: role, content or tool-call deltas, finish reason, then usage."""
    cid = new_id("chatcmpl")

    def delta(d: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return _frame(cid, model, [{"index": 0, "delta": d, "finish_reason": finish}])

    chunks = [delta({"role": "assistant", "content": ""})]
    for word in re.findall(r"\S+\s*", turn.text or ""):
        chunks.append(delta({"content": word}))
    for index, call in enumerate(turn.tool_calls):
        arguments = json.dumps(call.arguments)
        head: dict[str, Any] = {"index": index, "id": call.id or new_id("call"), "type": "function"}
        head["function"] = {"name": call.name, "arguments": ""}
        chunks.append(delta({"tool_calls": [head]}))
        # Arguments arrive in two pieces, as real providers split them.
        middle = len(arguments) // 2
        for piece in (arguments[:middle], arguments[middle:]):
            chunks.append(
                delta({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
            )
    chunks.append(delta({}, "tool_calls" if turn.tool_calls else "stop"))
    usage_chunk = _frame(cid, model, [])
    usage_chunk["usage"] = turn.usage.openai()
    chunks.append(usage_chunk)
    return chunks


def _completion(turn: Turn, model: str) -> dict[str, Any]:
    """The non-streaming form of the same answer."""
    message: dict[str, Any] = {"role": "assistant", "content": turn.text}
    if turn.tool_calls:
        message["tool_calls"] = [
            {
                "id": call.id or new_id("call"),
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
            }
            for call in turn.tool_calls
        ]
    finish = "tool_calls" if turn.tool_calls else "stop"
    return {
        "id": new_id("chatcmpl"),
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": turn.usage.openai(),
    }
