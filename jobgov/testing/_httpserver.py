"""A small asyncio HTTP/1.1 server for jobgov's test doubles.

The fake opencode server and the scripted model both need the same thing: a
real TCP endpoint on 127.0.0.1 that a real ``httpx`` client (or a real
``opencode serve``) can talk to, with JSON routes and Server-Sent-Event
streams that a handler writes frame by frame. Only the stdlib is used.

Connections are kept alive between plain responses, as real servers (opencode's
Bun included) keep them, so a client's connection pool behaves as it does in
production; a streaming response is delimited by closing its connection, which
HTTP/1.1 allows for responses, and ``Connection: close`` from the client ends one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, cast
from urllib.parse import parse_qsl, unquote, urlsplit

from jobgov.testing._service import AsyncService

__all__ = [
    "EventStream",
    "Handler",
    "HttpServer",
    "Request",
    "Response",
    "StreamingResponse",
    "empty_response",
    "json_response",
]

#: How long a client may take to send its request head and body.
REQUEST_TIMEOUT = 10.0
#: How long one write may wait for the client to drain its socket buffer.
WRITE_TIMEOUT = 10.0
#: How long an idle kept-alive connection waits for its next request: as opencode 1.18.33, which
#: kept one open past 120 s; longer than the agent client's keep-alive (30 s,
#: ``jobgov.opencode.client.KEEPALIVE``), so the client gives a connection up before the server does.
KEEPALIVE_IDLE = 120.0
#: How long ``stop()`` waits for open connections to finish after cancelling them.
STOP_TIMEOUT = 5.0
MAX_BODY_BYTES = 32 * 1024 * 1024


@dataclass
class Request:
    """One parsed HTTP request; ``params`` holds the values of ``{name}`` path segments."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict[str, str])

    def json(self) -> Any:
        """The body decoded as JSON (``None`` if empty); ``ValueError`` if malformed."""
        if not self.body:
            return None
        return json.loads(self.body)

    def json_object(self) -> dict[str, Any] | None:
        """The body if it is a JSON object, else ``None`` (malformed JSON included)."""
        try:
            body = self.json()
        except ValueError:
            return None
        return cast(dict[str, Any], body) if isinstance(body, dict) else None  # JSON keys are str


@dataclass
class Response:
    """A complete (non-streaming) response."""

    status: int = 200
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: dict[str, str] = field(default_factory=dict[str, str])


def json_response(payload: Any, status: int = 200) -> Response:
    """A JSON response with ``payload`` serialized compactly."""
    return Response(status=status, body=json.dumps(payload, separators=(",", ":")).encode())


def empty_response(status: int = 204) -> Response:
    """A response without a body (204 by default)."""
    return Response(status=status, body=b"", content_type=None)


class EventStream:
    """The writing end of a streaming response, handed to a ``StreamingResponse`` producer."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer

    @property
    def closed(self) -> bool:
        """Whether the connection is closing (client gone or server stopping)."""
        return self._writer.is_closing()

    async def send(self, data: bytes) -> None:
        """Write raw bytes and wait until flushed; ``ConnectionError`` once closed."""
        if self._writer.is_closing():
            raise ConnectionResetError("stream closed")
        self._writer.write(data)
        async with asyncio.timeout(WRITE_TIMEOUT):  # unlike wait_for, never swallows a cancel
            await self._writer.drain()

    async def send_sse(self, data: str) -> None:
        """Write one SSE frame ``data: <data>\\n\\n`` (``data`` must be a single line)."""
        await self.send(f"data: {data}\n\n".encode())


@dataclass
class StreamingResponse:
    """A response whose body ``produce`` writes piece by piece; the body ends when it returns."""

    produce: Callable[[EventStream], Coroutine[Any, Any, None]]
    content_type: str = "text/event-stream"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict[str, str])


Handler = Callable[[Request], Awaitable[Response | StreamingResponse]]


@dataclass
class _Route:
    method: str
    regex: re.Pattern[str]
    handler: Handler


def _compile(pattern: str) -> re.Pattern[str]:
    # "{name}" matches one path segment; everything else is literal.
    parts = re.split(r"(\{[A-Za-z_][A-Za-z0-9_]*\})", pattern)
    regex = "".join(
        f"(?P<{part[1:-1]}>[^/]+)" if part.startswith("{") else re.escape(part) for part in parts
    )
    return re.compile(f"^{regex}$")


class HttpServer(AsyncService):
    """An HTTP/1.1 server on 127.0.0.1 with routes by method and path pattern.

    Use it as an async context manager; ``base_url`` is known once started::

        server = HttpServer()
        server.route("GET", "/items/{id}", handler)
        async with server:
            ...  # server.base_url == "http://127.0.0.1:<port>"
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._port = port
        self._routes: list[_Route] = []
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[Any]] = set()

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        """Register ``handler`` for ``method`` and a ``pattern`` such as ``/session/{id}/abort``."""
        self._routes.append(_Route(method.upper(), _compile(pattern), handler))

    @property
    def port(self) -> int:
        """The bound port (ephemeral unless given); only valid once started."""
        if self._server is None:
            raise RuntimeError("server not started")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` of the running server."""
        return f"http://{self._host}:{self.port}"

    async def start(self) -> None:
        """Bind and start accepting connections."""
        if self._server is not None:
            raise RuntimeError("server already started")
        self._server = await asyncio.start_server(self._on_connection, self._host, self._port)

    async def stop(self) -> None:
        """Stop accepting, cancel open connections (streams included) and wait for them."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        if tasks:
            # Bounded: a connection task only awaits socket I/O, which cancellation interrupts.
            await asyncio.wait(tasks, timeout=STOP_TIMEOUT)
        await asyncio.wait_for(server.wait_closed(), STOP_TIMEOUT)

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            # The first request of a connection comes at once; later ones when the client reuses it
            # (an idle timeout or the client's hang-up between requests ends the connection).
            timeout = REQUEST_TIMEOUT
            while True:
                request = await asyncio.wait_for(self._read_request(reader), timeout)
                timeout = KEEPALIVE_IDLE
                if request is None:
                    await self._write(writer, json_response(_error("malformed request"), 400), keep_alive=False)
                    return
                response = await self._dispatch(request)
                if isinstance(response, StreamingResponse):
                    await self._stream(reader, writer, response)
                    return
                keep_alive = request.headers.get("connection", "").lower() != "close"
                await self._write(writer, response, keep_alive=keep_alive)
                if not keep_alive:
                    return
        except (
            TimeoutError,
            ConnectionError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
        ):
            pass  # The client went away or was too slow: nothing left to answer.
        except asyncio.CancelledError:
            # stop() cancels open connections. The task must still end normally:
            # Python 3.11's StreamReaderProtocol calls task.exception() on it, which
            # raises (and logs "Exception in callback") for a cancelled task.
            pass
        finally:
            if task is not None:
                self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    async def _read_request(self, reader: asyncio.StreamReader) -> Request | None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, _version = lines[0].split(" ", 2)
        except ValueError:
            return None
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return None  # Our clients (httpx, opencode) always send Content-Length.
        length = int(headers.get("content-length", "0") or "0")
        if length < 0 or length > MAX_BODY_BYTES:
            return None
        body = await reader.readexactly(length) if length else b""
        url = urlsplit(target)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        return Request(method.upper(), unquote(url.path), query, headers, body)

    async def _dispatch(self, request: Request) -> Response | StreamingResponse:
        path_matched = False
        for route in self._routes:
            match = route.regex.match(request.path)
            if match is None:
                continue
            path_matched = True
            if route.method != request.method:
                continue
            request.params = match.groupdict()
            try:
                return await route.handler(request)
            except Exception as exc:  # noqa: BLE001 - a handler bug must surface as a 500, not a hung client.
                return json_response(_error(f"{type(exc).__name__}: {exc}", "UnknownError"), 500)
        if path_matched:
            return json_response(_error(f"method {request.method} not allowed"), 405)
        return json_response(
            {"name": "NotFoundError", "data": {"message": f"no route for {request.path}"}}, 404
        )

    async def _write(self, writer: asyncio.StreamWriter, response: Response, *, keep_alive: bool) -> None:
        headers = dict(response.headers)
        if response.content_type is not None:
            headers.setdefault("Content-Type", response.content_type)
        if response.status not in (204, 304):
            headers["Content-Length"] = str(len(response.body))
        writer.write(_head(response.status, headers, keep_alive=keep_alive) + response.body)
        await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT)

    async def _stream(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        response: StreamingResponse,
    ) -> None:
        headers = {
            **response.headers,
            "Content-Type": response.content_type,
            "Cache-Control": "no-cache",
        }
        writer.write(_head(response.status, headers, keep_alive=False))
        await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT)
        producer = asyncio.create_task(response.produce(EventStream(writer)))
        # The client never sends more bytes on a one-request connection, so a
        # completed read means it hung up: stop producing instead of writing
        # into a dead socket until the next heartbeat.
        hangup = asyncio.create_task(reader.read(1))
        try:
            await asyncio.wait({producer, hangup}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (producer, hangup):
                task.cancel()
            try:
                await asyncio.wait({producer, hangup}, timeout=STOP_TIMEOUT)
            finally:
                # Also when stop() cancels this wait, or a task outlives it: an
                # unretrieved hang-up would be logged as "Task exception was never retrieved".
                for task in (producer, hangup):
                    _settle(task)


def _settle(task: asyncio.Task[Any]) -> None:
    """Retrieve a stream task's outcome now, or when it ends if it is still running.

    Cancellation and a client hang-up (``ConnectionError``, a write
    ``TimeoutError``) are normal ends of a stream; anything else is a producer
    bug and goes to the loop's exception handler, as an exception escaping the
    connection task would.
    """
    if not task.done():
        task.add_done_callback(_settle)
        return
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None and not isinstance(exc, ConnectionError | TimeoutError):
        task.get_loop().call_exception_handler(
            {"message": "Stream producer failed", "exception": exc, "task": task}
        )


def _head(status: int, headers: dict[str, str], *, keep_alive: bool) -> bytes:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Status"
    lines = [f"HTTP/1.1 {status} {reason}", *(f"{k}: {v}" for k, v in headers.items())]
    lines.append("Connection: keep-alive" if keep_alive else "Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _error(message: str, name: str = "BadRequest") -> dict[str, Any]:
    return {"name": name, "data": {"message": message}}
