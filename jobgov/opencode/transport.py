"""An ``httpx`` transport over ``aiohttp``: the agent client's HTTP stack in a worker.

:class:`~jobgov.opencode.client.AgentClient` speaks ``httpx`` (tests give it
``httpx.MockTransport``; users may give it any ``httpx.AsyncClient``). Under load, httpx's own
transport (httpcore over anyio) was the largest part of a worker's CPU: at 100 jobs, reading the
event streams and sending the replies took about 28 % of its samples. On this machine (a local
SSE server, 2026-12-01) an event frame read through :class:`AgentClient` cost about 100 µs of CPU
over httpcore and 44 µs over this transport (aiohttp alone: 41 µs). A reply POST cost about 1 ms
either way: most of it is httpx's own client (URL parsing, cookies, its request and response
models), so :class:`~jobgov.opencode.client.AgentClient` sends its short calls through
:meth:`AiohttpTransport.call` when its client is one :func:`~jobgov.opencode.client.new_http_client`
made: 180 to 210 µs of CPU for a reply instead of 430 to 460 (this machine, 2026-12-03).

The transport maps aiohttp's failures onto httpx's exceptions by what happened, so callers keep
catching ``httpx.TransportError`` and a message names the real cause: a refused connection is a
``ConnectError``, a server that went away mid-stream a ``RemoteProtocolError``, a read that timed
out a ``ReadTimeout``.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

import aiohttp
import httpx
from yarl import URL

__all__ = ["AiohttpTransport", "Answer"]

#: aiohttp's failures by what they mean, most specific first (the first match wins).
_ERRORS: Final[tuple[tuple[type[BaseException], type[httpx.TransportError]], ...]] = (
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),
    (aiohttp.SocketTimeoutError, httpx.ReadTimeout),
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
    (aiohttp.ClientConnectorError, httpx.ConnectError),  # refused, DNS, TLS handshake
    (aiohttp.ServerFingerprintMismatch, httpx.ConnectError),
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
    (aiohttp.ClientPayloadError, httpx.ReadError),  # a body cut short
    (aiohttp.ClientResponseError, httpx.RemoteProtocolError),  # not HTTP
    (aiohttp.ClientOSError, httpx.ReadError),  # reset after the connection was made
    (aiohttp.InvalidURL, httpx.UnsupportedProtocol),
    (aiohttp.ClientError, httpx.NetworkError),
    (asyncio.TimeoutError, httpx.TimeoutException),
)


@contextmanager
def _mapped(request: httpx.Request | None = None) -> Iterator[None]:
    try:
        yield
    except httpx.HTTPError:
        raise
    except (TimeoutError, aiohttp.ClientError) as exc:
        kind = next(to for frm, to in _ERRORS if isinstance(exc, frm))
        raise kind(str(exc) or type(exc).__name__, request=request) from exc


@lru_cache(maxsize=64)
def _client_timeout(connect: float | None, read: float | None, pool: float | None) -> aiohttp.ClientTimeout:
    # httpx's pool timeout (waiting for a free connection) is aiohttp's ``connect``, which also
    # covers making the connection; its connect timeout is aiohttp's ``sock_connect``.
    return aiohttp.ClientTimeout(total=None, connect=pool, sock_connect=connect, sock_read=read)


@dataclass(frozen=True, slots=True)
class Answer:
    """What :meth:`AiohttpTransport.call` got back: the whole answer, read."""

    status: int
    headers: Mapping[str, str]
    """Case-insensitive, as sent (a repeated header: its first value)."""
    content: bytes


class _Body(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _mapped(self._request):
            async for chunk in self._response.content.iter_any():
                yield chunk

    async def aclose(self) -> None:
        # A body read to its end returns the connection to the pool; one left unread (a
        # closed event stream) closes it.
        self._response.release()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Sends an ``httpx.AsyncClient``'s requests through one ``aiohttp`` session.

    HTTP/1.1 only (opencode serves HTTP/1.1); no retries, redirects, cookies or decompression of
    its own (``httpx`` does those it is asked to). The session is made on the first request (in
    the running event loop) and closed by ``aclose()``.

    Args:
        limits: ``max_connections`` (``None``: no limit) and ``keepalive_expiry`` of the pool.
        verify: A TLS context to share, ``True`` for httpx's default checks (its CA bundle, and
            ``SSL_CERT_FILE``/``SSL_CERT_DIR``, as the agent client's other clients), ``False`` for none.
    """

    def __init__(self, limits: httpx.Limits, verify: ssl.SSLContext | bool = True) -> None:
        self._limits = limits
        self._ssl: ssl.SSLContext | bool = verify
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._limits.max_connections or 0,
            keepalive_timeout=self._limits.keepalive_expiry if self._limits.keepalive_expiry is not None else 5.0,
            ssl=httpx.create_ssl_context() if self._ssl is True else self._ssl,
        )
        return aiohttp.ClientSession(
            connector=connector, auto_decompress=False, trust_env=False, cookie_jar=aiohttp.DummyCookieJar()
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._session is None:
            self._session = self._open()
        timeout = request.extensions.get("timeout", {})
        content = await request.aread()
        with _mapped(request):
            response = await self._session.request(
                request.method,
                URL(str(request.url), encoded=True),  # already quoted by httpx: sent as it is
                # As bytes on the wire (``multi_items()`` guesses an encoding for every header anew).
                headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw],
                data=content or None,
                allow_redirects=False,
                timeout=_client_timeout(timeout.get("connect"), timeout.get("read"), timeout.get("pool")),
            )
        extensions = {"http_version": b"HTTP/1.1"}
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode("latin-1", "replace")
        return httpx.Response(
            response.status,
            headers=list(response.raw_headers),
            stream=_Body(response, request),
            request=request,
            extensions=extensions,
        )

    async def call(self, method: str, url: str, *, headers: Mapping[str, str], body: bytes | None,
                   timeout: httpx.Timeout) -> Answer:
        """One short request without httpx's client: sent as given and read whole.

        ``url`` must be quoted already (it is sent as it is); no redirect is followed and nothing is
        decompressed (ask for ``Accept-Encoding: identity``). Failures raise the same
        ``httpx.TransportError`` kinds as a request through httpx does (with no ``request``).
        """
        if self._session is None:
            self._session = self._open()
        with _mapped():
            async with self._session.request(
                method, URL(url, encoded=True), headers=headers, data=body, allow_redirects=False,
                timeout=_client_timeout(timeout.connect, timeout.read, timeout.pool),
            ) as response:
                return Answer(response.status, response.headers, await response.read())

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()
