"""Plain HTTP/1.1 with request bodies on the WebSocket port, for the ``/v1/`` routes.

websockets' HTTP parser reads only ``GET`` requests without a body (enough for the handshake, ``/healthz`` and
the web player, which ``server/http.py`` answers through ``process_request``). The Videos API needs ``POST``
with JSON or multipart bodies and ``DELETE``, so each connection first looks at its request line: a path under
``/v1/`` is served here (keep-alive, ``Content-Length`` bodies), anything else goes to websockets unchanged.
:class:`FrontConnection` is websockets' ``ServerConnection`` with that one branch (``serve(create_connection=)``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, ClassVar

from websockets.asyncio.server import ServerConnection

logger = logging.getLogger(__name__)

API_PREFIX = b"/v1/"
MAX_HEAD_BYTES = 64 * 1024  # request line + headers
IDLE_TIMEOUT_S = 5.0  # a kept-alive connection waits this long for its next request
WRITE_CHUNK = 256 * 1024


@dataclass(frozen=True)
class HttpRequest:
    """One parsed request: method, target (path + query), lower-cased headers, body."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes = b""


@dataclass(frozen=True)
class HttpReply:
    """What a route answers: status, body, content type, extra headers."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = field(default=())


Handler = Callable[[HttpRequest], Awaitable[HttpReply]]


@dataclass(frozen=True)
class FrontBinding:
    """What a :class:`FrontConnection` class is bound to: the ``/v1/`` handler and its bounds."""

    handler: Handler
    open_timeout_s: float = 10.0  # the WebSocket opening handshake, and the first HTTP request's head
    max_body_bytes: int = 32 * 1024 * 1024


class BadRequest(Exception):
    """A request this reader cannot parse (answered 400 and the connection closed)."""


class FrontConnection(ServerConnection):
    """A websockets server connection that serves requests under ``/v1/`` itself.

    Subclass it with :func:`front_connection` to bind the handler; the app passes the subclass as
    ``create_connection`` and ``open_timeout=None`` (the WebSocket opening timeout is applied here, so that an
    HTTP exchange is not bound by it).
    """

    binding: ClassVar[FrontBinding | None] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._kind: asyncio.Future[str] = self.loop.create_future()  # "ws" or "http"
        self._head = b""
        self._reader: asyncio.StreamReader | None = None

    # ---- the branch ----------------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._reader is not None:
            self._reader.feed_data(data)
            return
        if self._kind.done():
            super().data_received(data)
            return
        self._head += data
        if b"\r\n" not in self._head and len(self._head) < MAX_HEAD_BYTES:
            return  # the request line is not complete yet
        line = self._head.split(b"\r\n", 1)[0]
        parts = line.split(b" ")
        if len(parts) == 3 and parts[1].startswith(API_PREFIX) and self.binding is not None:
            self._reader = asyncio.StreamReader(limit=MAX_HEAD_BYTES)
            self._reader.feed_data(self._head)
            self._kind.set_result("http")
        else:
            self._kind.set_result("ws")
            super().data_received(self._head)
        self._head = b""

    def eof_received(self) -> None:
        if self._reader is not None:
            self._reader.feed_eof()
            return
        super().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._reader is not None:
            self._reader.feed_eof()
        if not self._kind.done():
            self._kind.set_result("ws")
        super().connection_lost(exc)

    async def handshake(self, *args: Any, **kwargs: Any) -> None:
        """The WebSocket opening handshake, or (for ``/v1/``) the whole HTTP exchange."""
        timeout = self.binding.open_timeout_s if self.binding is not None else 10.0
        try:
            async with asyncio.timeout(timeout):
                kind = await self._kind
        except TimeoutError:
            self.transport.abort()
            return
        if kind == "ws":
            async with asyncio.timeout(timeout):
                await super().handshake(*args, **kwargs)
            return
        try:
            await self._serve_http()
        except Exception:  # the boundary of one HTTP connection: log it, drop the connection
            logger.exception("HTTP connection failed")
        finally:
            self.transport.close()  # flushes what was written, then connection_lost
            await self.connection_lost_waiter

    # ---- HTTP/1.1 ------------------------------------------------------------------------------------------

    async def _serve_http(self) -> None:
        binding = self.binding
        assert self._reader is not None and binding is not None
        first = True
        while True:
            try:
                request = await read_request(
                    self._reader, binding.open_timeout_s if first else IDLE_TIMEOUT_S, binding.max_body_bytes
                )
            except BadRequest as e:
                await self._write(HttpReply(400, f"{e}\n".encode(), "text/plain; charset=utf-8"), close=True)
                return
            if request is None:
                return  # the client closed, or went idle
            first = False
            reply = await binding.handler(request)
            close = request.headers.get("connection", "").lower() == "close" or not self.server.is_serving()
            await self._write(reply, close=close)
            if close:
                return

    async def _write(self, reply: HttpReply, *, close: bool) -> None:
        phrase = HTTPStatus(reply.status).phrase
        head = [
            f"HTTP/1.1 {reply.status} {phrase}",
            f"Content-Type: {reply.content_type}",
            f"Content-Length: {len(reply.body)}",
            "Cache-Control: no-store",
            "X-Content-Type-Options: nosniff",
            f"Connection: {'close' if close else 'keep-alive'}",
            *(f"{k}: {v}" for k, v in reply.headers),
        ]
        self.transport.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        view = memoryview(reply.body)
        for start in range(0, len(view), WRITE_CHUNK):
            if self.transport.is_closing():
                return
            self.transport.write(view[start : start + WRITE_CHUNK])
            await self.drain()


async def read_request(reader: asyncio.StreamReader, timeout: float, max_body: int) -> HttpRequest | None:
    """Read one request; None when the connection ends (or stays idle ``timeout``) before one starts.

    Raises:
        BadRequest: a malformed head, a chunked body, or a body over ``max_body`` bytes.
    """
    try:
        async with asyncio.timeout(timeout):
            head = await reader.readuntil(b"\r\n\r\n")
    except (TimeoutError, asyncio.IncompleteReadError):
        return None
    except asyncio.LimitOverrunError as e:
        raise BadRequest(f"request head over {MAX_HEAD_BYTES} bytes") from e
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(f"not an HTTP/1.x request line: {lines[0][:100]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise BadRequest(f"malformed header line {line[:100]!r}")
        headers[name.strip().lower()] = value.strip()
    if "transfer-encoding" in headers:
        raise BadRequest("chunked request bodies are not supported; send Content-Length")
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError as e:
        raise BadRequest("Content-Length is not a number") from e
    if not 0 <= length <= max_body:
        raise BadRequest(f"request body of {length} bytes; the limit is {max_body}")
    try:
        async with asyncio.timeout(max(timeout, 30.0)):
            body = await reader.readexactly(length) if length else b""
    except (TimeoutError, asyncio.IncompleteReadError) as e:
        raise BadRequest("the request body ended early") from e
    return HttpRequest(parts[0].upper(), parts[1], headers, body)


def front_connection(binding: FrontBinding) -> type[FrontConnection]:
    """A :class:`FrontConnection` class bound to one server's ``/v1/`` handler."""
    return type("BoundFrontConnection", (FrontConnection,), {"binding": binding})
