"""The agent client's aiohttp transport against raw sockets on 127.0.0.1.

Each server here is a few lines of asyncio writing exact bytes, so a test controls what the wire
carries: a path as sent, a connection dropped mid-stream, a reply that never comes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
import trustme

from jobgov.opencode.client import AgentClient, AgentHTTPError, AgentUnreachable, new_http_client
from tests.helpers import answering_true

Serve = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
#: The agent client's two HTTP stacks: a client new_http_client made (short calls without httpx's
#: client layer, the event stream through httpx over aiohttp), and any other httpx client.
CLIENTS: dict[str, Callable[[], httpx.AsyncClient]] = {"direct": new_http_client, "httpx": httpx.AsyncClient}


@contextlib.asynccontextmanager
async def server(serve: Serve) -> AsyncIterator[str]:
    srv = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.close()
        await srv.wait_closed()


async def read_head(reader: asyncio.StreamReader) -> tuple[str, dict[str, str]]:
    """The request line and the headers (lower-cased names) of the next request."""
    line = (await reader.readline()).decode().rstrip("\r\n")
    headers: dict[str, str] = {}
    while (header := (await reader.readline()).decode().rstrip("\r\n")) != "":
        name, _, value = header.partition(":")
        headers[name.strip().lower()] = value.strip()
    return line, headers


def reply(status: str, body: bytes, content_type: str = "application/json", extra: str = "") -> bytes:
    head = f"HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {len(body)}\r\n{extra}\r\n"
    return head.encode() + body


@contextlib.asynccontextmanager
async def never_answering() -> AsyncIterator[str]:
    """A server that reads each request and never answers it (until the test leaves)."""
    leaving = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        await leaving.wait()
        writer.close()

    async with server(serve) as url:
        try:
            yield url
        finally:
            leaving.set()


async def open_stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer the next request with an event stream (chunked) and its first frame, left open."""
    await read_head(reader)
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
    frame = b'data: {"id": "evt_1", "type": "server.connected", "properties": {}}\n\n'
    writer.write(b"%x\r\n%s\r\n" % (len(frame), frame))
    await writer.drain()


async def test_a_request_goes_as_sent_and_its_answer_comes_back_whole() -> None:
    seen: list[tuple[str, dict[str, str], bytes]] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(2):  # two requests on one kept-alive connection
            line, headers = await read_head(reader)
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            seen.append((line, headers, body))
            writer.write(reply("200 OK", b'{"ok": true}', extra="x-agent: one\r\nx-agent: two\r\n"))
            await writer.drain()
        writer.close()

    async with server(serve) as url, new_http_client() as http:
        first = await http.post(f"{url}/permission/per%2F1/reply", json={"reply": "once"}, auth=("opencode", "pw"))
        second = await http.get(f"{url}/session/status", params={"directory": "/srv/a b"})
    assert (first.status_code, first.json(), first.headers.get_list("x-agent")) == (200, {"ok": True}, ["one", "two"])
    assert second.json() == {"ok": True}
    (line1, headers1, body1), (line2, _, body2) = seen
    assert line1 == "POST /permission/per%2F1/reply HTTP/1.1"  # a quoted id is not re-quoted or unquoted
    assert json.loads(body1) == {"reply": "once"} and headers1["content-type"] == "application/json"
    assert headers1["authorization"].startswith("Basic ") and headers1["content-length"] == str(len(body1))
    assert line2 == "GET /session/status?directory=%2Fsrv%2Fa+b HTTP/1.1" and body2 == b""


async def test_a_redirect_is_returned_not_followed() -> None:
    requests: list[str] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line, _ = await read_head(reader)
        requests.append(line)
        writer.write(reply("302 Found", b"", extra="location: http://127.0.0.1:1/elsewhere\r\n"))
        await writer.drain()
        writer.close()

    async with server(serve) as url, new_http_client() as http:
        response = await http.get(f"{url}/global/health")
    assert response.status_code == 302 and requests == ["GET /global/health HTTP/1.1"]


async def test_a_refused_connection_is_a_connect_error_naming_the_cause() -> None:
    with socket.socket() as held:  # a port nobody listens on
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
    async with new_http_client() as http:
        agent = AgentClient(http, f"http://127.0.0.1:{port}")
        with pytest.raises(AgentUnreachable, match=r"ConnectError: .*127\.0\.0\.1") as caught:
            await agent.health()
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


async def test_a_connection_closed_without_an_answer_is_not_retried() -> None:
    requests = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal requests
        await read_head(reader)
        requests += 1
        writer.close()  # no answer at all

    async with server(serve) as url, new_http_client() as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.post(f"{url}/permission/per_1/reply", json={"reply": "once"})
    assert requests == 1  # Temporal owns retries: the transport never sends a request twice


async def test_a_read_that_outlasts_its_timeout_is_a_read_timeout() -> None:
    async with never_answering() as url, new_http_client() as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.get(f"{url}/global/health", timeout=httpx.Timeout(5.0, read=0.05))


@pytest.mark.parametrize("make", ["direct", "httpx"])
async def test_a_stream_yields_each_frame_as_it_comes_and_a_drop_is_unreachable(make: str) -> None:
    frame_read = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await open_stream(reader, writer)
        await frame_read.wait()  # the client has the frame while the response is still open
        writer.transport.abort()  # the agent goes away mid-stream

    seen: list[str] = []
    async with server(serve) as url, CLIENTS[make]() as http:
        agent = AgentClient(http, url)
        with pytest.raises(AgentUnreachable) as caught:
            async for event in agent.events():
                seen.append(event["type"])
                frame_read.set()
    assert seen == ["server.connected"]
    assert isinstance(caught.value.__cause__, httpx.TransportError), caught.value.__cause__


@pytest.mark.parametrize("make", ["direct", "httpx"])
async def test_a_stream_left_early_closes_its_connection(make: str) -> None:
    closed = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await open_stream(reader, writer)
        await reader.read()  # returns b"" once the client closes the connection
        closed.set()

    async with server(serve) as url, CLIENTS[make]() as http:
        async with AgentClient(http, url).event_stream() as events:
            assert (await anext(events))["type"] == "server.connected"
        await asyncio.wait_for(closed.wait(), timeout=10)


@contextlib.asynccontextmanager
async def tls_server(ca: trustme.CA) -> AsyncIterator[str]:
    """An https server on 127.0.0.1 with a certificate ``ca`` issued, answering ``{"ok": true}``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            await read_head(reader)
            writer.write(reply("200 OK", b'{"ok": true}'))
            await writer.drain()
        writer.close()

    srv = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    try:
        yield f"https://127.0.0.1:{srv.sockets[0].getsockname()[1]}"
    finally:
        srv.close()
        await srv.wait_closed()


async def test_tls_checks_the_agents_certificate_against_what_the_client_trusts(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ca = trustme.CA()
    trusted = ssl.create_default_context()
    ca.configure_trust(trusted)
    async with tls_server(ca) as url:
        async with new_http_client(verify=trusted) as http:  # a context shared by the caller
            assert (await http.get(f"{url}/session/status")).json() == {"ok": True}
        async with new_http_client() as http:  # httpx's CA bundle does not hold this CA
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await http.get(f"{url}/session/status")
        # ``verify=True`` trusts what httpx trusts: SSL_CERT_FILE too.
        ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
        async with new_http_client() as http:
            assert (await http.get(f"{url}/session/status")).json() == {"ok": True}
        async with new_http_client(verify=False) as http:  # no checks at all, when asked
            assert (await http.get(f"{url}/session/status")).json() == {"ok": True}


# --------------------------------------------------------------------------- AgentClient's short calls
# Over a client new_http_client made, AgentClient sends them without httpx's client layer
# (AiohttpTransport.call); over any other httpx client, through it. Both must put the same request
# on the wire and read every answer alike.

Clients = Callable[[], httpx.AsyncClient]
BOTH: list[Clients] = list(CLIENTS.values())
BOTH_IDS = list(CLIENTS)


@contextlib.asynccontextmanager
async def answering(*answers: bytes) -> AsyncIterator[tuple[str, list[tuple[str, dict[str, str], bytes]]]]:
    """A server answering its requests with ``answers`` in turn; yields its URL and what it got."""
    seen: list[tuple[str, dict[str, str], bytes]] = []
    queue = list(answers)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while queue:
                line, headers = await read_head(reader)
                if not line:
                    break
                seen.append((line, headers, await reader.readexactly(int(headers.get("content-length", "0")))))
                writer.write(queue.pop(0))
                await writer.drain()
        writer.close()

    async with server(serve) as url:
        yield url, seen


@pytest.mark.parametrize("make", BOTH, ids=BOTH_IDS)
async def test_a_short_call_puts_the_same_request_on_the_wire_either_way(make: Clients) -> None:
    async with answering(reply("200 OK", b"true"), reply("200 OK", b'{"ses_1": {"type": "busy"}}')) as (url, seen), \
            make() as http:
        agent = AgentClient(http, url + "/", directory="/srv/a b", auth=httpx.BasicAuth("opencode", "pw é"))
        assert await agent.reply("per/1", "reject", "not in café") is True
        assert await agent.session_status() == {"ses_1": {"type": "busy"}}
    (line1, headers1, body1), (line2, headers2, body2) = seen
    assert line1 == "POST /permission/per%2F1/reply?directory=%2Fsrv%2Fa+b HTTP/1.1"
    assert body1 == '{"reply":"reject","message":"not in café"}'.encode()  # httpx's compact UTF-8 JSON
    assert headers1["content-type"] == "application/json" and headers1["content-length"] == str(len(body1))
    assert headers1["authorization"] == httpx.BasicAuth("opencode", "pw é")._auth_header
    assert line2 == "GET /session/status?directory=%2Fsrv%2Fa+b HTTP/1.1" and body2 == b""
    assert "content-type" not in headers2 and headers2["authorization"] == headers1["authorization"]


async def test_a_client_new_http_client_made_skips_httpx_and_any_other_goes_through_it() -> None:
    class Token(httpx.Auth):  # not Basic auth: its header may differ from request to request
        def auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
            request.headers["authorization"] = "Bearer t"
            yield request

    async with answering(*[reply("200 OK", b'{"healthy": true}')] * 3) as (url, seen), \
            new_http_client() as ours, httpx.AsyncClient() as theirs:
        await AgentClient(ours, url).health()
        await AgentClient(theirs, url).health()
        await AgentClient(ours, url, auth=Token()).health()
    direct, through_httpx, token = (headers for _, headers, _ in seen)
    assert direct["accept-encoding"] == "identity" and "httpx" not in direct["user-agent"]
    assert through_httpx["user-agent"].startswith("python-httpx/")
    assert token["authorization"] == "Bearer t" and token["user-agent"].startswith("python-httpx/")


@pytest.mark.parametrize("make", BOTH, ids=BOTH_IDS)
async def test_the_agents_answers_read_alike_either_way(make: Clients) -> None:
    gone = json.dumps({"name": "PermissionNotFoundError", "data": {"message": "gone"}}).encode()
    async with answering(
        reply("404 Not Found", gone),
        reply("503 Service Unavailable", b"busy", content_type="text/plain", extra="retry-after: 7\r\n"),
        reply("400 Bad Request", b'{"name": "BadRequest"}'),
        reply("200 OK", b"<html>a proxy</html>", content_type="text/html"),
        reply("200 OK", b'[{"id": "per_1", "permission": "bash"}, 3]'),
    ) as (url, _), make() as http:
        agent = AgentClient(http, url)
        assert await agent.reply("per_1", "once") is False  # already answered
        with pytest.raises(AgentHTTPError) as busy:
            await agent.reply("per_2", "once")
        assert (busy.value.status, busy.value.body, busy.value.retry_after) == (503, "busy", 7.0)
        assert (busy.value.method, busy.value.path) == ("POST", "/permission/per_2/reply")
        assert await agent.list_permissions() is None  # a webfetch ask is pending
        with pytest.raises(AgentHTTPError, match=r"GET /session/status: HTTP 200: <html>a proxy") as proxy:
            await agent.session_status()
        assert proxy.value.status == 200
        assert await agent.list_permissions() == [{"id": "per_1", "permission": "bash"}]


@pytest.mark.parametrize("make", BOTH, ids=BOTH_IDS)
async def test_a_short_call_that_outlasts_its_timeout_is_unreachable_either_way(make: Clients) -> None:
    async with never_answering() as url, make() as http:
        agent = AgentClient(http, url, timeout=httpx.Timeout(5.0, read=0.05))
        with pytest.raises(AgentUnreachable, match=r"^POST .*/permission/per_1/reply: ReadTimeout") as caught:
            await agent.reply("per_1", "once")
        assert isinstance(caught.value.__cause__, httpx.ReadTimeout)


@pytest.mark.parametrize("make", BOTH, ids=BOTH_IDS)
async def test_a_connection_closed_without_an_answer_is_unreachable_either_way(make: Clients) -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.close()

    async with server(serve) as url, make() as http:
        with pytest.raises(AgentUnreachable, match=r"RemoteProtocolError") as caught:
            await AgentClient(http, url).abort("ses_1")
        assert isinstance(caught.value.__cause__, httpx.RemoteProtocolError)


@pytest.mark.parametrize("make", BOTH, ids=BOTH_IDS)
async def test_a_stream_is_asked_for_alike_and_its_frames_read_across_chunks(make: Clients) -> None:
    heads: list[tuple[str, dict[str, str]]] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await read_head(reader))
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        body = b'data: {"type": "session.idle",\r\ndata:  "properties": {"sessionID": "ses_\xc3\xa9"}}\r\n\r\n: ping\n\n'
        for piece in (body[:31], body[31:73], body[73:]):  # cut inside a CRLF and inside a UTF-8 character
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        writer.close()

    async with server(serve) as url, make() as http:
        events = [event async for event in AgentClient(http, url, directory="/w").events()]
    assert events == [{"type": "session.idle", "properties": {"sessionID": "ses_é"}}]
    line, headers = heads[0]
    assert line == "GET /event?directory=%2Fw HTTP/1.1"
    assert headers["accept"] == "text/event-stream" and headers["cache-control"] == "no-store"


@pytest.mark.parametrize("make", BOTH, ids=BOTH_IDS)
async def test_a_stream_refused_or_not_an_event_stream_is_an_http_error_either_way(make: Clients) -> None:
    async with answering(
        reply("401 Unauthorized", b'{"name": "Unauthorized"}', extra="retry-after: 3\r\n"),
        reply("200 OK", b"<html>a proxy</html>", content_type="text/html"),
    ) as (url, _), make() as http:
        agent = AgentClient(http, url)
        with pytest.raises(AgentHTTPError, match=r"^GET /event: HTTP 401: Unauthorized") as refused:
            async with agent.event_stream():
                pass
        assert (refused.value.status, refused.value.retry_after, refused.value.path) == (401, 3.0, "/event")
        with pytest.raises(AgentHTTPError, match=r"expected text/event-stream, got 'text/html'"):
            async with agent.event_stream():
                pass


async def test_an_idle_connection_is_kept_for_the_keepalive_and_then_given_up() -> None:
    """The client with a short keep-alive is the clock: once it has given its idle connection up,
    the default client, idle as long, still sends its next reply on the connection it had."""
    async with (answering_true() as (short_url, short), answering_true() as (kept_url, kept),
                new_http_client(keepalive=0.05) as brief, new_http_client() as default):
        assert await AgentClient(brief, short_url).reply("per_1", "once")
        assert await AgentClient(default, kept_url).reply("per_1", "once")
        await asyncio.wait_for(short[0].wait(), 10)  # given up by the client, not by the server
        assert await AgentClient(brief, short_url).reply("per_2", "once")
        assert await AgentClient(default, kept_url).reply("per_2", "once")
        assert len(short) == 2  # a new connection for the second reply
        assert len(kept) == 1 and not kept[0].is_set()  # the same one, still open


@pytest.mark.parametrize("keepalive", [0.0, -2.0, float("nan")])
def test_a_keepalive_of_0_or_less_is_refused(keepalive: float) -> None:
    with pytest.raises(ValueError, match=r"^keepalive: .* s; an idle connection must be kept for more than 0 s$"):
        new_http_client(keepalive=keepalive)
