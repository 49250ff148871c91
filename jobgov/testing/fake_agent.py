"""``FakeAgent``: an in-process stand-in for ``opencode serve`` 1.18.33, for tests and benchmarks.

It speaks the protocol recorded in ``tests/fixtures/opencode/PROTOCOL.md`` over
real HTTP on 127.0.0.1: health, the ``/event`` SSE stream, sessions, async
prompts, aborts, permission listing and replies, and the message list. What a
session does is scripted, by a real capture (:meth:`FakeAgent.from_capture`)
or by a synthetic :class:`~jobgov.testing.scenario.Scenario`; each prompt
plays one turn of the script. The opencode behaviours jobgov must survive are
reproduced on purpose:

- ``reject`` without a message stops the run; with a message it continues (finding 1);
- ``always`` auto-approves matching asks for the agent's lifetime, across sessions (finding 2);
- an abort leaves the pending ask listed and sends no ``permission.replied``
  (finding 3), in the captured event order (finding 4);
- optionally, ``GET /permission`` answers 400 while a webfetch ask is pending (finding 7);
- events produced while no stream is connected are lost, never replayed.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import tempfile
from collections import deque
from dataclasses import replace
from pathlib import Path
from typing import Any

from jobgov.testing._capture import CaptureScript
from jobgov.testing._fake_session import (
    PendingAsk,
    ReceivedPrompt,
    ReceivedReply,
    SessionState,
    abort_events,
    always_covers,
    reject_outcome,
)
from jobgov.testing._httpserver import (
    EventStream,
    HttpServer,
    Request,
    Response,
    StreamingResponse,
    empty_response,
    json_response,
)
from jobgov.testing._service import AsyncService
from jobgov.testing._shapes import event, new_id
from jobgov.testing.scenario import (
    Emit,
    Hold,
    Item,
    Pause,
    Scenario,
    Script,
    TurnContext,
)

__all__ = ["FakeAgent", "ReceivedPrompt", "ReceivedReply"]  # the records are re-exported

_DEFAULT_TURN = Scenario().text("done")
_REPLIES = ("once", "always", "reject")



_WORKTREE: str | None = None


def default_worktree() -> str:
    """A directory of this process's own (created on first use) that fake agents report as their
    worktree unless told otherwise, and that tests give jobs as theirs."""
    global _WORKTREE
    if _WORKTREE is None or not os.path.isdir(_WORKTREE):
        _WORKTREE = tempfile.mkdtemp(prefix="jobgov-fake-worktree-")
    return _WORKTREE

class FakeAgent(AsyncService):
    """An opencode-compatible fake server; use as ``async with FakeAgent(...) as agent``.

    Args:
        script: what every session does (default: answer "done" to each prompt).
        directory: the worktree the sessions report (default: :func:`default_worktree`, a real
            directory: jobgov auto-approves nothing for a worktree that does not exist).
        heartbeat_interval: seconds between ``server.heartbeat`` frames on idle streams.
        event_delay: seconds to sleep after each emitted event, to pace runs.
        webfetch_list_error: answer ``GET /permission`` with opencode's 400 while a webfetch
            ask is pending (finding 7).
        duplicate_events: send every event twice, to test at-least-once consumers.
        ask_timeout: how long a run waits for a reply (or, when a capture holds, for an
            abort) before it aborts itself.
    """

    def __init__(
        self,
        script: Script | None = None,
        *,
        directory: str | None = None,
        heartbeat_interval: float = 10.0,
        event_delay: float = 0.0,
        webfetch_list_error: bool = False,
        duplicate_events: bool = False,
        ask_timeout: float = 120.0,
    ) -> None:
        self.script: Script = script or Scenario(turns=[])
        self.directory = directory or default_worktree()
        self.heartbeat_interval = heartbeat_interval
        self.event_delay = event_delay
        self.webfetch_list_error = webfetch_list_error
        self.duplicate_events = duplicate_events
        self.ask_timeout = ask_timeout
        #: Every reply accepted, in order.
        self.replies: list[ReceivedReply] = []
        #: The session id of every abort request, in order (unknown ids included).
        self.aborts: list[str] = []
        #: Every prompt received, in order.
        self.prompts: list[ReceivedPrompt] = []
        #: Every event emitted (whether or not a stream was connected), in order.
        self.events: list[dict[str, Any]] = []
        self._sessions: dict[str, SessionState] = {}
        self._pending: dict[str, PendingAsk] = {}
        self._always: dict[str, list[str]] = {}
        self._subscribers: set[asyncio.Queue[dict[str, Any] | None]] = set()
        self._server = HttpServer()
        for method, path, handler in (
            ("GET", "/global/health", self._health),
            ("GET", "/event", self._event_stream),
            ("GET", "/session", self._list_sessions),
            ("POST", "/session", self._create_session),
            ("GET", "/session/status", self._session_status),  # before /session/{sid}
            ("GET", "/session/{sid}", self._get_session),
            ("GET", "/session/{sid}/message", self._messages),
            ("POST", "/session/{sid}/message", self._prompt_sync),
            ("POST", "/session/{sid}/prompt_async", self._prompt_async),
            ("POST", "/session/{sid}/abort", self._abort_route),
            ("GET", "/permission", self._list_permissions),
            ("POST", "/permission/{rid}/reply", self._reply_route),
            ("POST", "/session/{sid}/permissions/{rid}", self._legacy_reply_route),
        ):
            self._server.route(method, path, handler)

    @classmethod
    def from_capture(cls, path: str | Path, **kwargs: Any) -> FakeAgent:
        """A fake whose sessions replay the capture ``path`` (``*.event.jsonl``) when prompted."""
        return cls(CaptureScript.load(path), **kwargs)

    # -- lifecycle and inspection ------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``; valid once started."""
        return self._server.base_url

    async def start(self) -> None:
        """Listen on 127.0.0.1 (an ephemeral port)."""
        await self._server.start()

    async def stop(self) -> None:
        """End every scripted run and stream, then stop serving."""
        runners = [s.runner for s in self._sessions.values() if s.runner is not None]
        for runner in runners:
            runner.cancel()
        if runners:
            await asyncio.wait(runners, timeout=5.0)
        self.drop_streams()
        await self._server.stop()

    @property
    def sessions(self) -> dict[str, dict[str, Any]]:
        """The session objects by id, with live totals."""
        return {sid: copy.deepcopy(s.info) for sid, s in self._sessions.items()}

    @property
    def pending(self) -> list[dict[str, Any]]:
        """What ``GET /permission`` lists (asks left behind by an abort included)."""
        return [copy.deepcopy(p.properties) for p in self._pending.values()]

    @property
    def subscriber_count(self) -> int:
        """How many ``/event`` streams are connected."""
        return len(self._subscribers)

    def messages(self, session_id: str) -> list[dict[str, Any]]:
        """What ``GET /session/{id}/message`` returns."""
        return copy.deepcopy(self._sessions[session_id].message_list())

    def drop_streams(self) -> int:
        """Close every ``/event`` stream now; undelivered and later events are lost to them."""
        queues, self._subscribers = list(self._subscribers), set()
        for queue in queues:
            while not queue.empty():
                queue.get_nowait()
            queue.put_nowait(None)
        return len(queues)

    def resend_last(self, count: int = 1) -> list[dict[str, Any]]:
        """Send the last ``count`` events again, verbatim (same ids), to the connected streams."""
        events = self.events[-count:] if count > 0 else []
        for evt in events:
            self._broadcast(evt)
        return events

    async def emit(self, evt: dict[str, Any]) -> None:
        """Emit any event; it is tracked like scripted ones when it names a known session."""
        sid = evt.get("properties", {}).get("sessionID")
        await self._emit(self._sessions.get(sid) if isinstance(sid, str) else None, evt)

    async def wait_idle(self, session_id: str | None = None, timeout: float = 10.0) -> None:
        """Wait until the session (or every session) has finished its run, or ``TimeoutError``."""
        sessions = [self._sessions[session_id]] if session_id else list(self._sessions.values())
        async with asyncio.timeout(timeout):
            for sess in sessions:
                await sess.idle.wait()

    async def wait_for_ask(
        self, session_id: str | None = None, permission: str | None = None, timeout: float = 10.0
    ) -> dict[str, Any]:
        """Wait until a live ask (of ``permission``, for ``session_id``) is pending; return it."""
        async with asyncio.timeout(timeout):
            while True:
                for p in self._pending.values():
                    if p.orphaned or session_id not in (None, p.session_id):
                        continue
                    if permission in (None, p.properties["permission"]):
                        return copy.deepcopy(p.properties)
                await asyncio.sleep(0.01)

    # -- event plumbing ----------------------------------------------------------------------

    def _broadcast(self, evt: dict[str, Any]) -> None:
        for queue in self._subscribers:
            queue.put_nowait(evt)
            if self.duplicate_events:
                queue.put_nowait(evt)

    async def _emit(self, sess: SessionState | None, evt: dict[str, Any], *, paced: bool = True) -> None:
        """Record and broadcast ``evt``; ``paced``: then sleep ``event_delay`` (the run's pace). The
        handlers opencode answers at once (a session's creation, a reply) emit theirs unpaced."""
        evt = {**evt, "properties": dict(evt.get("properties", {}))}
        if sess is not None:
            sess.track(evt)
        self.events.append(evt)
        self._broadcast(evt)
        if self.event_delay and paced:
            await asyncio.sleep(self.event_delay)

    async def _event_stream(self, request: Request) -> StreamingResponse:
        # Subscribe before answering, so nothing emitted after the connect is missed.
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._subscribers.add(queue)

        async def produce(stream: EventStream) -> None:
            try:
                await stream.send_sse(json.dumps(event("server.connected", {})))
                while True:
                    try:
                        async with asyncio.timeout(self.heartbeat_interval):
                            evt = await queue.get()
                    except TimeoutError:
                        evt = event("server.heartbeat", {})
                    if evt is None:
                        return
                    await stream.send_sse(json.dumps(evt))
            except ConnectionError:
                return  # the client hung up: a normal end of the stream
            finally:
                self._subscribers.discard(queue)

        return StreamingResponse(produce)

    # -- the scripted run --------------------------------------------------------------------

    def _start(self, sess: SessionState, body: dict[str, Any]) -> None:
        prompt = ReceivedPrompt(sess.id, body)
        self.prompts.append(prompt)
        sess.prompts.append(prompt.text)  # a prompt while busy runs after the current turn
        if sess.runner is None:
            sess.idle.clear()
            sess.runner = asyncio.create_task(self._run(sess), name=f"fake-agent-{sess.id}")

    async def _run(self, sess: SessionState) -> None:
        cancelled = False
        try:
            while sess.prompts:
                ctx = TurnContext(sess.id, self.directory, sess.prompts.popleft(), sess.turn)
                sess.turn += 1
                items = self.script.render_turn(ctx)
                if items is None:  # script exhausted: answer like the scripted model does
                    items = _DEFAULT_TURN.render_turn(replace(ctx, index=0)) or []
                if not await self._play(sess, deque(items)):
                    sess.prompts.clear()
        except asyncio.CancelledError:
            cancelled = True
            raise
        finally:
            sess.runner = None
            # After a cancellation, _abort sends the abort sequence and then marks it idle.
            if not cancelled:
                sess.idle.set()

    async def _play(self, sess: SessionState, queue: deque[Item]) -> bool:
        """Play one turn; ``False`` when it ended early (reject, or a timeout abort)."""
        while queue:
            item = queue.popleft()
            if isinstance(item, Emit):
                await self._emit(sess, item.event)
            elif isinstance(item, Pause):
                await asyncio.sleep(item.seconds)
            elif isinstance(item, Hold):
                await asyncio.sleep(self.ask_timeout)
                await self._send_abort(sess)
                return False
            else:
                reply = await self._ask(sess, item.properties)
                if reply is None:
                    await self._send_abort(sess)
                    return False
                if reply.reply != "reject":
                    continue
                events, rest, go_on = reject_outcome(sess, item.properties, reply.message, queue)
                for evt in events:
                    await self._emit(sess, evt)
                queue = deque(rest)
                if not go_on:
                    return False
        return True

    async def _ask(self, sess: SessionState, props: dict[str, Any]) -> ReceivedReply | None:
        """Send the ask and wait for its reply; ``None`` on timeout."""
        if always_covers(self._always, props):  # answered by an earlier "always" (finding 2)
            return ReceivedReply(props["id"], sess.id, "always")
        future: asyncio.Future[ReceivedReply] = asyncio.get_running_loop().create_future()
        self._pending[props["id"]] = PendingAsk(sess.id, copy.deepcopy(props), future)
        await self._emit(sess, event("permission.asked", props))
        try:
            # shield: an abort cancels the run, but the ask must stay answerable (finding 3).
            async with asyncio.timeout(self.ask_timeout):
                received = await asyncio.shield(future)
        except TimeoutError:
            return None
        if self.event_delay:  # the run's pause after its reply's event, which the reply did not wait for
            await asyncio.sleep(self.event_delay)
        return received

    async def _send_abort(self, sess: SessionState) -> None:
        for pending in self._pending.values():
            if pending.session_id == sess.id:
                pending.orphaned = True
        waiting = {
            str(p.properties.get("tool", {}).get("callID"))
            for p in self._pending.values()
            if p.orphaned
        }
        for evt in abort_events(sess, waiting):
            await self._emit(sess, evt)

    async def _abort(self, sid: str) -> None:
        self.aborts.append(sid)
        sess = self._sessions.get(sid)
        if sess is None:  # opencode answers true and emits session.idle even for unknown ids
            await self._emit(None, event("session.idle", {"sessionID": sid}))
            return
        sess.prompts.clear()
        runner = sess.runner
        if runner is None:  # idle: nothing to abort
            return
        runner.cancel()
        await asyncio.wait({runner}, timeout=5.0)
        await self._send_abort(sess)
        sess.idle.set()

    # -- routes ------------------------------------------------------------------------------

    async def _health(self, request: Request) -> Response:
        return json_response({"healthy": True, "version": "1.18.33"})

    def _session_or_404(self, sid: str) -> SessionState | Response:
        sess = self._sessions.get(sid)
        if sess is None:
            data = {"message": f"Session not found: {sid}"}
            return json_response({"name": "NotFoundError", "data": data}, 404)
        return sess

    async def _list_sessions(self, request: Request) -> Response:
        return json_response(list(self.sessions.values()))

    async def _session_status(self, request: Request) -> Response:
        # Like opencode, only sessions that are not idle are listed.
        sessions = self._sessions.items()
        return json_response({k: s.status for k, s in sessions if s.status["type"] != "idle"})

    async def _create_session(self, request: Request) -> Response:
        body = request.json_object() or {}
        sid = new_id("ses")
        info = self.script.session_info(sid, self.directory)
        if isinstance(body.get("title"), str):
            info["title"] = body["title"]
        sess = SessionState(sid, info)
        sess.idle.set()
        self._sessions[sid] = sess
        created = {"sessionID": sid, "info": copy.deepcopy(info)}
        await self._emit(sess, event("session.created", created), paced=False)
        return json_response(info)

    async def _get_session(self, request: Request) -> Response:
        sess = self._session_or_404(request.params["sid"])
        return sess if isinstance(sess, Response) else json_response(sess.info)

    async def _messages(self, request: Request) -> Response:
        sess = self._session_or_404(request.params["sid"])
        return sess if isinstance(sess, Response) else json_response(sess.message_list())

    async def _prompt_async(self, request: Request) -> Response:
        sess = self._session_or_404(request.params["sid"])
        if isinstance(sess, Response):
            return sess
        body = request.json_object()
        if body is None or not isinstance(body.get("parts"), list):
            return _bad_request('Missing key at ["parts"]', "Payload")
        self._start(sess, body)
        return empty_response(204)

    async def _prompt_sync(self, request: Request) -> Response:
        response = await self._prompt_async(request)
        if response.status != 204:
            return response
        sess = self._sessions[request.params["sid"]]
        await self.wait_idle(sess.id, timeout=self.ask_timeout)
        last = sess.messages.get(sess.last_assistant or "")
        if last is None:
            return json_response(None)
        return json_response({"info": last["info"], "parts": list(last["parts"].values())})

    async def _abort_route(self, request: Request) -> Response:
        await self._abort(request.params["sid"])
        return json_response(True)

    async def _list_permissions(self, request: Request) -> Response:
        asks = self.pending
        for index, ask in enumerate(asks):
            if self.webfetch_list_error and ask["permission"] == "webfetch":
                where = f'[{index}]["metadata"]["timeout"]'
                return _bad_request(f"Expected JSON value, got undefined at {where}", "Body")
        return json_response(asks)

    async def _reply_route(self, request: Request) -> Response:
        body = request.json_object()
        if (
            body is None
            or body.get("reply") not in _REPLIES
            or set(body) - {"reply", "message"}
            or not isinstance(body.get("message"), str | None)
        ):
            return _bad_reply(body, "reply")
        return await self._reply(request.params["rid"], body["reply"], body.get("message"))

    async def _legacy_reply_route(self, request: Request) -> Response:
        body = request.json_object()
        if body is None or body.get("response") not in _REPLIES:
            return _bad_reply(body, "response")
        return await self._reply(request.params["rid"], body["response"], None)

    async def _reply(self, rid: str, reply: str, message: str | None) -> Response:
        pending = self._pending.pop(rid, None)
        if pending is None:
            missing = {"_tag": "PermissionNotFoundError", "requestID": rid}
            missing["message"] = f"Permission request not found: {rid}"
            return json_response(missing, 404)
        received = ReceivedReply(rid, pending.session_id, reply, message, late=pending.orphaned)
        self.replies.append(received)
        if reply == "always":
            rules = self._always.setdefault(pending.properties["permission"], [])
            rules.extend(pending.properties.get("always", []))
        props = {"sessionID": pending.session_id, "requestID": rid, "reply": reply}
        await self._emit(self._sessions.get(pending.session_id), event("permission.replied", props), paced=False)
        if not pending.future.done():
            pending.future.set_result(received)
        return json_response(True)


def _bad_request(message: str, kind: str) -> Response:
    return json_response({"name": "BadRequest", "data": {"message": message, "kind": kind}}, 400)


def _bad_reply(body: dict[str, Any] | None, key: str) -> Response:
    """opencode's 400 for a reply body, e.g. ``Expected "once" | … , got "yes"\n  at ["reply"]``."""
    value = (body or {}).get(key)
    got = "undefined" if value is None else json.dumps(value)
    where = f'\n  at ["{key}"]'
    return _bad_request(f'Expected "once" | "always" | "reject", got {got}{where}', "Payload")
