"""One WebSocket connection: access checks, the ``open`` handshake, then one reader and one sender task.

The reader decodes client messages and hands them to the session; the sender is the only task that writes to
the socket, draining the connection's :class:`Outbox` with a timeout per send (a client that stops reading is
closed with ``client.too_slow``). Every way a session ends goes through ``session.end.request`` and then
``session.end.run`` (``server/ending.py``), which checkpoints the state and sends ``error``/``final`` where the
client can hear them. The connection sees the server only through :class:`ConnectionServer`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Protocol

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from ltx2stream import codes
from ltx2stream import protocol as P
from ltx2stream.codes import error_spec
from ltx2stream.errors import LTX2StreamError, ProtocolError, SessionError
from ltx2stream.server.auth import check_access
from ltx2stream.server.config import ServerConfig
from ltx2stream.server.ending import EndingServer, EndReason
from ltx2stream.server.live import LiveSession
from ltx2stream.server.metrics import ServerMetrics
from ltx2stream.server.outbox import CloseRequest, Outbox

logger = logging.getLogger(__name__)
FINAL_REASON_BY_CODE = {codes.SERVER_SHUTDOWN: "shutdown", codes.SESSION_TIMEOUT: "timeout"}


class ConnectionServer(EndingServer, Protocol):
    """What a connection needs from the server (``StreamingServer`` implements it)."""

    @property
    def config(self) -> ServerConfig: ...

    @property
    def metrics(self) -> ServerMetrics: ...

    @property
    def closing(self) -> asyncio.Event:
        """Set when shutdown begins."""
        ...

    async def admit(self, msg: P.Open, outbox: Outbox) -> LiveSession:
        """Turn a valid ``open`` into a queued or active session (raises LTX2StreamError to refuse it)."""
        ...


class Connection:
    """Drives one client connection from handshake to close."""

    def __init__(self, app: ConnectionServer, ws: ServerConnection) -> None:
        self.app, self.ws = app, ws
        self.outbox = Outbox(app.config.send_high_water, self._on_pressure)
        self.session: LiveSession | None = None

    def _on_pressure(self, on: bool) -> None:
        if self.session is not None:
            self.session.on_pressure(on)

    async def run(self) -> None:
        """The websockets handler body: returns once the connection is closed."""
        sender = asyncio.create_task(self._send_loop(), name="ltx2stream-sender")
        try:
            self.session = await self._start()
            if self.session is not None:
                await self._serve(self.session)
        except Exception as e:  # the catch-all boundary: log, tell the client, close 1011
            logger.exception("connection %s failed", self.ws.id)
            self.refuse(e)
        finally:
            self.outbox.close(int(P.CloseCode.INTERNAL_ERROR), "handler ended")
            try:
                await asyncio.wait_for(sender, self.app.config.close_timeout_s * 2)
            except (TimeoutError, asyncio.CancelledError):
                sender.cancel()

    # ---- before accepted -----------------------------------------------------------------------------------

    async def _start(self) -> LiveSession | None:
        """Check access, wait for ``open`` and admit the session; refusals are reported, then None."""
        try:
            request = self.ws.request
            assert request is not None
            check_access(
                request.path, request.headers, token=self.app.config.token, origins=self.app.config.origins
            )
            msg = await self._receive_open()
            if msg is None:
                return None
            return await self.app.admit(msg, self.outbox)
        except LTX2StreamError as e:
            self.refuse(e)
            return None

    async def _receive_open(self) -> P.Open | None:
        recv = asyncio.ensure_future(self.ws.recv())
        closing = asyncio.ensure_future(self.app.closing.wait())
        try:
            done, _ = await asyncio.wait(
                {recv, closing}, timeout=self.app.config.open_timeout_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            closing.cancel()
        if recv not in done:
            recv.cancel()
            if closing in done:
                raise SessionError("the server is shutting down", code=codes.SERVER_SHUTDOWN)
            raise SessionError(
                f"no 'open' within {self.app.config.open_timeout_s:g} s", code=codes.SESSION_TIMEOUT
            )
        try:
            data = recv.result()
        except ConnectionClosed:
            return None
        msg = P.decode(data, limits=self.app.config.limits)
        if not isinstance(msg, P.Open):
            raise ProtocolError(
                f"the first message must be 'open', got {msg.type!r}", code=codes.PROTOCOL_UNEXPECTED
            )
        return msg

    def refuse(self, error: BaseException) -> None:
        """Report an error that ends the connection before or without a session: error, final, close."""
        err = self.send_error(error, accepted=self.session is not None)
        reason = FINAL_REASON_BY_CODE.get(err.code, "failed")
        self.outbox.put(P.Final(reason=reason, segments=0, error_code=err.code))
        self.outbox.close(int(error_spec(err.code).close_code), err.code)

    def send_error(
        self,
        error: BaseException,
        *,
        accepted: bool,
        request_id: int | None = None,
        ends_session: bool = False,
    ) -> P.Error:
        """Queue the ``error`` message for ``error`` and count it; ``ends_session`` forces ``fatal`` (an error
        the table calls non-fatal, e.g. ``input.size_rule`` from the generator, may still end a session)."""
        if not isinstance(error, LTX2StreamError):
            logger.error("connection %s: internal error", self.ws.id, exc_info=error)
        err = P.error_from(error, accepted=accepted, request_id=request_id)
        if ends_session and not err.fatal:
            err = dataclasses.replace(err, fatal=True)
        self.app.metrics.errors.inc(code=err.code)
        self.outbox.put(err)
        return err

    # ---- after accepted ------------------------------------------------------------------------------------

    async def _serve(self, session: LiveSession) -> None:
        reader = asyncio.create_task(self._read_loop(session), name="ltx2stream-reader")
        try:
            await session.end.requested.wait()
        finally:
            if not reader.done():
                reader.cancel()
        await session.end.run(self.app, self)

    async def _read_loop(self, session: LiveSession) -> None:
        limits = self.app.config.limits
        try:
            async for data in self.ws:
                request_id = None
                try:
                    msg = P.decode(data, limits=limits)
                    request_id = getattr(msg, "request_id", None)
                    await session.handle(msg)
                except LTX2StreamError as e:
                    if P.is_fatal(e.code, accepted=True):
                        session.end.request(EndReason.FAILED, e)
                        return
                    self.send_error(e, accepted=True, request_id=request_id)
        except ConnectionClosed:
            pass
        session.end.request(EndReason.GONE)

    async def _send_loop(self) -> None:
        timeout = self.app.config.slow_client_timeout_s
        while True:
            item = await self.outbox.get()
            if isinstance(item, CloseRequest):
                await self.ws.close(item.code, item.reason)
                return
            try:
                async with asyncio.timeout(timeout):
                    await self.ws.send(item.data)
            except TimeoutError:
                self._too_slow(timeout)
                continue
            except ConnectionClosed:
                if self.session is not None:
                    self.session.end.request(EndReason.GONE)
                return
            self.outbox.sent(item)
            self.app.metrics.bytes_sent.inc(len(item.data))
            if item.on_sent is not None:
                item.on_sent()

    def _too_slow(self, timeout: float) -> None:
        error = SessionError(f"a send did not complete within {timeout:g} s", code=codes.CLIENT_TOO_SLOW)
        logger.warning("connection %s: client too slow, closing", self.ws.id)
        self.outbox.close_now(int(error_spec(codes.CLIENT_TOO_SLOW).close_code), "client too slow")
        if self.session is not None:
            self.session.end.request(EndReason.FAILED, error)
