"""A typed async client for the ``opencode serve`` HTTP API (1.18, see PROTOCOL.md).

The client never owns a connection pool: it runs over an ``httpx.AsyncClient``
the caller injects (and closes), so activities share one pool per worker and
tests inject ``httpx.MockTransport``. Every call has an explicit timeout and
no call is retried here: at the activity boundary Temporal owns retries, and
the event-stream consumer owns its reconnect loop.

Failures raise :class:`AgentHTTPError` (the agent answered with an error
status) or :class:`AgentUnreachable` (no answer: connect or read failure,
timeout, broken stream); :mod:`jobgov.temporal.activities.errors` turns them into
Temporal errors.
"""

from __future__ import annotations

import json
import re
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final, Literal
from urllib.parse import quote, urlencode

import httpx
from httpx_sse import aconnect_sse

from jobgov.opencode import jsonsafe
from jobgov.opencode.events import DROPPED_TYPES, PROBLEM_KEY, Event
from jobgov.opencode.transport import AiohttpTransport

__all__ = [
    "DEFAULT_TIMEOUT",
    "KEEPALIVE",
    "STREAM_CONNECT_TIMEOUT",
    "AgentClient",
    "AgentError",
    "AgentHTTPClient",
    "AgentHTTPError",
    "AgentUnreachable",
    "check_keepalive",
    "new_http_client",
]

#: Ordinary calls answer in milliseconds; 10 s only guards against a hung server
#: (PROTOCOL finding 8: a request during boot once hung forever).
DEFAULT_TIMEOUT: Final = httpx.Timeout(10.0, connect=5.0)
#: ``GET /session/{id}/message`` returns the whole session: allow more time to read it.
MESSAGES_TIMEOUT: Final = httpx.Timeout(30.0, connect=5.0)
#: Seconds to open the event stream; once open it has no read timeout (it idles between
#: opencode's 10 s heartbeats and the consumer watches for silence itself).
STREAM_CONNECT_TIMEOUT: Final = 10.0

# Frames of the types jobgov drops (``events.DROPPED_TYPES``: text chunks, the session's info
# and diffs ...) carry nothing jobgov uses: they are recognised from the frame's head without
# parsing the JSON. opencode serialises ``{"id":…,"type":…`` in that order, compact or spaced
# (its ids are short); anything else is parsed and filtered by type.
_TYPE_HEAD = re.compile(r'\s*\{\s*(?:"id"\s*:\s*"[^"\\]{0,100}"\s*,\s*)?"type"\s*:\s*"([^"\\]{1,64})"')
_BODY_LIMIT = 2000


#: Connections kept per client for short calls (replies, prompts, aborts, session reads).
CALL_POOL = 100
#: Seconds an idle connection to an agent is kept for the next call. Longer than the gaps between
#: one job's asks, so a reply reuses its stream client's connection: with httpx's 5 s, a job asking
#: every 5 s opened a connection for every reply (0.4 to 0.55 ms more of the worker's CPU each).
#: Shorter than the idle timeout of the agent and of a proxy before it, so the client gives a
#: connection up before the server does: opencode 1.18.33 kept an idle one open past 120 s.
KEEPALIVE = 30.0


def check_keepalive(seconds: float, name: str = "keepalive") -> None:
    """Refuse a keep-alive of 0 s or less (or NaN), naming ``name``: ``ValueError``."""
    if not seconds > 0:
        raise ValueError(f"{name}: {seconds} s; an idle connection must be kept for more than 0 s")


class AgentHTTPClient(httpx.AsyncClient):
    """The ``httpx.AsyncClient`` :func:`new_http_client` makes, over ``aiohttp``.

    :class:`AgentClient` sends its short calls (replies, prompts, aborts, session reads) over it
    without httpx's client layer, through :meth:`AiohttpTransport.call
    <jobgov.opencode.transport.AiohttpTransport.call>`: at 100 jobs, httpx's request and response
    models and URL handling were about a tenth of a worker's CPU. Anything else sent through it
    (the event stream, webhooks) goes through httpx as through any client.
    """

    def __init__(self, transport: AiohttpTransport, **kwargs: Any) -> None:
        super().__init__(transport=transport, **kwargs)
        self.aiohttp = transport


def new_http_client(pool: int | None = CALL_POOL, verify: ssl.SSLContext | bool = True, *,
                    keepalive: float = KEEPALIVE) -> AgentHTTPClient:
    """An ``httpx.AsyncClient`` suited to :class:`AgentClient`: no retries, no redirects, HTTP/1.1
    over ``aiohttp`` (:class:`~jobgov.opencode.transport.AiohttpTransport`), and short calls
    without httpx's client layer (:class:`AgentHTTPClient`).

    Args:
        pool: The most connections it opens at once (``None``: no limit).
        verify: A TLS context to share between clients (creating one per client costs
            milliseconds of CPU), or ``True`` for httpx's default.
        keepalive: Seconds an idle connection is kept for the next call (see :data:`KEEPALIVE`).

    The caller owns it and must ``aclose()`` it.
    """
    check_keepalive(keepalive)
    limits = httpx.Limits(max_connections=pool, max_keepalive_connections=min(pool or CALL_POOL, 20),
                          keepalive_expiry=keepalive)
    return AgentHTTPClient(
        # No retries of its own (Temporal owns retries), over aiohttp (see jobgov.opencode.transport).
        AiohttpTransport(limits, verify),
        timeout=DEFAULT_TIMEOUT,
        follow_redirects=False,
    )


class AgentError(Exception):
    """A call to the agent failed."""


class AgentHTTPError(AgentError):
    """The agent answered with an error status.

    Attributes:
        status: The HTTP status.
        body: The response body (decoded JSON when it is JSON, else text, truncated).
        retry_after: Seconds from the ``Retry-After`` header, when present.
        method: The request's method.
        path: The request's path.
    """

    def __init__(
        self,
        status: int,
        body: Any,
        retry_after: float | None = None,
        *,
        method: str = "",
        path: str = "",
    ) -> None:
        self.status = status
        self.body = body
        self.retry_after = retry_after
        self.method = method
        self.path = path
        super().__init__(f"{method} {path}: HTTP {status}: {_describe(body)}".strip())

    @property
    def error_name(self) -> str | None:
        """opencode's error name (``name`` or ``_tag`` of the body), e.g. ``PermissionNotFoundError``."""
        if isinstance(self.body, dict):
            for key in ("_tag", "name"):
                value = self.body.get(key)
                if isinstance(value, str):
                    return value
        return None


class AgentUnreachable(AgentError):
    """The agent gave no usable answer: connection refused or reset, timeout, broken stream."""


def _describe(body: Any) -> str:
    if isinstance(body, dict):
        data = body.get("data")
        message = body.get("message") or (data.get("message") if isinstance(data, dict) else None)
        name = body.get("_tag") or body.get("name")
        if message or name:
            return ": ".join(str(x) for x in (name, message) if x)
    text = body if isinstance(body, str) else json.dumps(body)
    return text[:200]


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass(frozen=True, slots=True)
class _Answer:
    """A short call's answer, read whole, however it was sent."""

    status: int
    content: bytes
    retry_after: str | None
    method: str
    path: str
    """The request's path, without its query."""

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    @classmethod
    def of(cls, response: httpx.Response) -> _Answer:
        return cls(response.status_code, response.content, response.headers.get("retry-after"),
                   response.request.method, response.request.url.path)


def _body(response: _Answer | httpx.Response) -> Any:
    try:
        return json.loads(response.content)
    except ValueError:  # also UnicodeDecodeError
        return response.text[:_BODY_LIMIT]


def _http_error(response: _Answer | httpx.Response) -> AgentHTTPError:
    answer = response if isinstance(response, _Answer) else _Answer.of(response)
    return AgentHTTPError(
        answer.status,
        _body(answer),
        parse_retry_after(answer.retry_after),
        method=answer.method,
        path=answer.path,
    )


def _json_bytes(value: Any) -> bytes:
    # As httpx encodes ``json=``, so both ways of sending put the same bytes on the wire.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def _basic_authorization(auth: httpx.Auth | None, url: str) -> str | None:
    """The ``Authorization`` header ``auth`` sends (``""`` for no auth), or ``None`` when it is not
    Basic auth, whose header is the same for every request."""
    if auth is None:
        return ""
    if not isinstance(auth, httpx.BasicAuth):
        return None
    request = next(auth.sync_auth_flow(httpx.Request("GET", url)))
    return request.headers["authorization"]


def _segment(value: str) -> str:
    # Ids come from the agent or from users: never let one change the route.
    return quote(value, safe="")


class AgentClient:
    """The opencode HTTP API, typed, over an injected ``httpx.AsyncClient``.

    Args:
        http: The HTTP client to use; the caller owns (and closes) it.
        base_url: The ``opencode serve`` base URL, e.g. ``http://127.0.0.1:4096``.
        timeout: The timeout of ordinary calls.
        stream_connect_timeout: Seconds to open ``GET /event``.
        directory: Sent as ``?directory=`` to address one project of a server
            that serves several (default: the server's working directory).
        auth: HTTP Basic auth for a password-protected agent (:mod:`jobgov.opencode.credentials`).
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        stream_connect_timeout: float = STREAM_CONNECT_TIMEOUT,
        directory: str | None = None,
        auth: httpx.Auth | None = None,
    ) -> None:
        self._http = http
        self._auth = auth
        self.base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._stream_timeout = httpx.Timeout(
            connect=stream_connect_timeout, read=None, write=stream_connect_timeout, pool=stream_connect_timeout
        )
        self._params = {"directory": directory} if directory else {}
        # Short calls skip httpx's client layer when ``http`` is ours and the request needs nothing
        # of httpx but its bytes (see AgentHTTPClient); else they go through ``http``.
        self._direct: AiohttpTransport | None = None
        url = httpx.URL(self.base_url)
        authorization = _basic_authorization(auth, self.base_url)
        if isinstance(http, AgentHTTPClient) and authorization is not None and not url.query and not url.fragment:
            self._direct = http.aiohttp
            self._base = str(url).rstrip("/")  # quoted as httpx would
            self._base_path = url.path.rstrip("/")
            self._query = "?" + urlencode(self._params) if self._params else ""
            self._headers = {"accept": "*/*", "accept-encoding": "identity"}
            if authorization:
                self._headers["authorization"] = authorization
            self._json_headers = {**self._headers, "content-type": "application/json"}

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        timeout: httpx.Timeout | None = None,
        ok: tuple[int, ...] = (200,),
    ) -> _Answer:
        try:
            if self._direct is not None:
                body = None if json_body is None else _json_bytes(json_body)
                headers = self._headers if body is None else self._json_headers
                got = await self._direct.call(method, self._base + path + self._query, headers=headers, body=body,
                                              timeout=timeout or self._timeout)  # fmt: skip
                retry_after = got.headers.get("retry-after")
                answer = _Answer(got.status, got.content, retry_after, method, self._base_path + path)
            else:
                answer = _Answer.of(await self._http.request(
                    method, self.base_url + path, json=json_body, params=self._params, timeout=timeout or self._timeout,
                    auth=self._auth or httpx.USE_CLIENT_DEFAULT))  # fmt: skip
        except httpx.TransportError as exc:
            raise AgentUnreachable(f"{method} {self.base_url}{path}: {type(exc).__name__}: {exc}") from exc
        if answer.status not in ok:
            raise _http_error(answer)
        return answer

    @staticmethod
    def _json(response: _Answer) -> Any:
        try:
            body, problem = jsonsafe.loads(response.text)
        except ValueError as exc:
            # A 200 that is not JSON is a proxy or the wrong server, not the agent.
            raise AgentHTTPError(
                response.status,
                response.text[:_BODY_LIMIT],
                method=response.method,
                path=response.path,
            ) from exc
        if problem is not None and isinstance(body, list):
            # Which item was damaged is unknown: every one is sent to a person.
            for item in body:
                if isinstance(item, dict):
                    item[PROBLEM_KEY] = problem
        return body

    async def health(self) -> dict[str, Any]:
        """``GET /global/health``: ``{"healthy": true, "version": "1.18.33"}``."""
        response = await self._request("GET", "/global/health")
        body = self._json(response)
        return body if isinstance(body, dict) else {"healthy": bool(body)}

    async def create_session(self, title: str | None = None) -> str:
        """``POST /session``; returns the new session's id."""
        response = await self._request("POST", "/session", json_body={"title": title} if title else {})
        body = self._json(response)
        session_id = body.get("id") if isinstance(body, dict) else None
        if not isinstance(session_id, str) or not session_id:
            raise AgentHTTPError(response.status, body, method="POST", path="/session")
        return session_id

    async def prompt_async(self, session_id: str, text: str) -> None:
        """``POST /session/{id}/prompt_async`` (204): the run continues in the background."""
        await self._request(
            "POST",
            f"/session/{_segment(session_id)}/prompt_async",
            json_body={"parts": [{"type": "text", "text": text}]},
            ok=(200, 204),
        )

    async def reply(
        self, request_id: str, reply: Literal["once", "always", "reject"], message: str | None = None
    ) -> bool:
        """``POST /permission/{id}/reply``.

        A ``reject`` with a ``message`` lets the agent's loop continue with that
        feedback; without one the run stops (PROTOCOL finding 1).

        Returns:
            ``True`` when applied; ``False`` when opencode no longer knows the
            request (``PermissionNotFoundError``: already answered, or gone).
        """
        body: dict[str, str] = {"reply": reply}
        if message:
            body["message"] = message
        try:
            await self._request("POST", f"/permission/{_segment(request_id)}/reply", json_body=body)
        except AgentHTTPError as exc:
            if exc.status == 404 and exc.error_name == "PermissionNotFoundError":
                return False
            raise
        return True

    async def abort(self, session_id: str) -> None:
        """``POST /session/{id}/abort``; opencode answers ``true`` even for an idle session."""
        await self._request("POST", f"/session/{_segment(session_id)}/abort")

    async def list_permissions(self) -> list[dict[str, Any]] | None:
        """``GET /permission``: the pending requests of every session.

        Returns:
            The requests, or ``None`` when opencode answers 400, which it does
            while a ``webfetch`` request is pending (PROTOCOL finding 7).
        """
        try:
            response = await self._request("GET", "/permission")
        except AgentHTTPError as exc:
            if exc.status == 400:
                return None
            raise
        body = self._json(response)
        if not isinstance(body, list):
            raise AgentHTTPError(response.status, body, method="GET", path="/permission")
        return [item for item in body if isinstance(item, dict)]

    async def session_messages(self, session_id: str) -> list[dict[str, Any]]:
        """``GET /session/{id}/message``: every message as ``{"info": {…}, "parts": […]}``."""
        path = f"/session/{_segment(session_id)}/message"
        response = await self._request("GET", path, timeout=MESSAGES_TIMEOUT)
        body = self._json(response)
        if not isinstance(body, list):
            raise AgentHTTPError(response.status, body, method="GET", path=path)
        return [item for item in body if isinstance(item, dict)]

    async def session_status(self) -> dict[str, dict[str, Any]]:
        """``GET /session/status``: ``{session_id: {"type": "busy" | "retry" | "idle", …}}``.

        Sessions that are not running may be missing (read a missing one as idle).
        """
        response = await self._request("GET", "/session/status")
        body = self._json(response)
        if not isinstance(body, dict):
            raise AgentHTTPError(response.status, body, method="GET", path="/session/status")
        return {key: value for key, value in body.items() if isinstance(value, dict)}

    @asynccontextmanager
    async def event_stream(self) -> AsyncIterator[AsyncIterator[Event]]:
        """Open ``GET /event``; yields an iterator of parsed events once the server accepted.

        Entering raises :class:`AgentHTTPError` or :class:`AgentUnreachable`;
        so does iterating when the stream breaks. The iterator ends when the
        server closes the stream. ``message.part.delta`` events and frames
        that are not JSON objects with a ``type`` are skipped.
        """
        url = self.base_url + "/event"
        try:
            async with aconnect_sse(self._http, "GET", url, params=self._params, timeout=self._stream_timeout,
                                    auth=self._auth or httpx.USE_CLIENT_DEFAULT) as src:
                response = src.response
                if response.status_code != 200:
                    await response.aread()
                    raise _http_error(response)
                content_type = response.headers.get("content-type", "")
                if "text/event-stream" not in content_type:
                    await response.aread()
                    raise AgentHTTPError(
                        response.status_code,
                        f"expected text/event-stream, got {content_type!r}",
                        method="GET",
                        path="/event",
                    )
                yield _parse_events(src.aiter_sse())
        except httpx.TransportError as exc:  # includes httpx_sse.SSEError
            raise AgentUnreachable(f"GET {url}: {type(exc).__name__}: {exc}") from exc

    async def events(self) -> AsyncIterator[Event]:
        """The parsed events of ``GET /event`` until the server closes it (see :meth:`event_stream`)."""
        async with self.event_stream() as stream:
            async for event in stream:
                yield event


async def _parse_events(frames: AsyncIterator[Any]) -> AsyncIterator[Event]:
    async for frame in frames:
        data: str = frame.data
        if not data or ((head := _TYPE_HEAD.match(data)) is not None and head.group(1) in DROPPED_TYPES):
            continue  # skipped unparsed
        try:
            event, problem = jsonsafe.loads(data)
        except ValueError:
            continue  # Not ours to judge: a later opencode may send other frames.
        if isinstance(event, dict) and isinstance(event.get("type"), str):
            if problem is not None:
                event[PROBLEM_KEY] = problem
            if event["type"] in DROPPED_TYPES:
                continue
            if not isinstance(event.get("properties"), dict):
                event["properties"] = {}
            yield event
