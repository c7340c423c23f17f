"""``StreamClient``: an asyncio client of the ltx2stream WebSocket server (docs/clients.md, docs/protocol.md).

One object is one logical session across connections: ``open`` starts it (or resumes a stored one),
``reconnect`` continues it by id after a lost connection, and ``events()`` yields every server message as the
typed dataclass of ``ltx2stream.protocol`` while recording the fMP4 stream to a file::

    async with StreamClient("ws://127.0.0.1:8765/ws", output="out.mp4") as client:
        await client.open("a red fox in snow", P.Settings("ltx2-distilled", 768, 512, 24.0, 121, 2, 10))
        async for msg in client.events():
            if isinstance(msg, P.SegmentDone) and msg.index == 0:
                await client.steer("the fox looks up", transition="blend", blend_segments=2)
            if isinstance(msg, P.SegmentDone) and msg.index == 3:
                await client.stop()

The iterator ends after ``final`` (or when the connection closes without one: ``final`` stays None and
``close_code`` says why). Commands may be sent from any task while another iterates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from ltx2stream import codes
from ltx2stream import protocol as P
from ltx2stream.client.recorder import Fmp4Recorder
from ltx2stream.errors import SessionError
from ltx2stream.protocol.limits import MAX_INDEX

logger = logging.getLogger(__name__)
SUBPROTOCOL = "ltx2stream"


class StreamClient:
    """A session on an ltx2stream server.

    Args:
        url: the WebSocket endpoint, e.g. ``ws://127.0.0.1:8765/ws``.
        token: bearer token (sent as ``Authorization: Bearer``) when the server requires one.
        output: where to record the fMP4 stream (a path or a seekable binary file); None records nothing.
        segment_limit: do not record segments with ``index >= segment_limit``.
        limits: decoding limits for server messages (default ``ProtocolLimits.for_client()``).
        open_timeout: seconds to wait for the handshake and for ``accepted``.

    Attributes:
        accepted: the last ``accepted`` message (session id, effective settings, limits, MIME type).
        state: the session state as last reported (``queued`` ... ``closed``/``failed``).
        started, done: ``segment_started`` / ``segment_done`` messages by segment index.
        acks: ``steer_ack`` messages by request id; errors: every ``error`` received.
        final: the ``final`` message once received; close_code, close_reason: how the last connection closed.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        output: str | Path | BinaryIO | None = None,
        segment_limit: int | None = None,
        limits: P.ProtocolLimits | None = None,
        open_timeout: float = 30.0,
    ) -> None:
        self.url, self.token, self.open_timeout = url, token, open_timeout
        self.limits = limits or P.ProtocolLimits.for_client()
        self.recorder = Fmp4Recorder(output, segment_limit=segment_limit) if output is not None else None
        self.accepted: P.Accepted | None = None
        self.state = "idle"
        self.queue_position: int | None = None
        self.started: dict[int, P.SegmentStarted] = {}
        self.done: dict[int, P.SegmentDone] = {}
        self.acks: dict[int, P.SteerAck] = {}
        self.snapshots: dict[int, P.SnapshotResult] = {}
        self.taps: list[Callable[[P.Message], None]] = []  # see every media_init / media (``--play``)
        self.errors: list[P.Error] = []
        self.final: P.Final | None = None
        self.close_code: int | None = None
        self.close_reason = ""
        self._ws: ClientConnection | None = None
        self._pending: list[P.Message] = []  # received while waiting for ``accepted``
        self._request_ids = iter(range(1, MAX_INDEX))
        self._open_msg: P.Open | None = None
        self._prompt: str | None = None  # the prompt the session is heading to (the last acknowledged steer)
        self._steer_prompts: dict[int, str] = {}

    # ---- lifecycle -------------------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def session_id(self) -> str | None:
        return self.accepted.session_id if self.accepted else None

    async def open(
        self,
        prompt: str,
        settings: P.Settings,
        *,
        image: P.Image | None = None,
        lookahead: int = 1,
        resume_from: P.ResumeFrom | None = None,
    ) -> P.Accepted:
        """Connect, send ``open`` and wait for ``accepted``.

        Raises:
            SessionError: the server refused the session (the code is the server's, e.g. ``input.size_rule``,
                ``server.queue_full``, ``session.not_found``), or closed without answering.
            OSError, websockets.exceptions.InvalidHandshake: no connection (nothing listening, an HTTP error).
                A wrong token or origin is a refusal: ``SessionError`` ``auth.failed`` / ``origin.forbidden``.
        """
        msg = P.Open(
            protocol_version=P.PROTOCOL_VERSION,
            settings=settings,
            prompt=prompt,
            image=image,
            resume_from=resume_from,
            lookahead=lookahead,
        )
        self._open_msg, self._prompt = msg, prompt
        return await self._open(msg)

    async def reconnect(self, *, segment_index: int | None = None) -> P.Accepted:
        """Continue this session by id on a new connection (after a lost connection, ``shutdown``, or ``stop``).

        ``segment_index`` picks a stored segment to continue after (default: the latest stored). The prompt is
        the one the session was heading to; the image is not sent again.
        """
        if self._open_msg is None or self.session_id is None:
            raise SessionError(
                "reconnect() needs a session that was accepted before", code=codes.CLIENT_NO_SESSION
            )
        await self._drop_connection()
        msg = P.Open(
            protocol_version=P.PROTOCOL_VERSION,
            settings=self._open_msg.settings,
            prompt=self._prompt or self._open_msg.prompt,
            lookahead=self._open_msg.lookahead,
            resume_from=P.ResumeFrom(session_id=self.session_id, segment_index=segment_index),
        )
        return await self._open(msg)

    async def _open(self, msg: P.Open) -> P.Accepted:
        await self._drop_connection()
        self.final, self.close_code, self.close_reason, self._pending = None, None, "", []
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        self._ws = await connect(
            self.url,
            additional_headers=headers,
            subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
            compression=None,
            max_size=self.limits.max_message_bytes,
            open_timeout=self.open_timeout,
        )
        with contextlib.suppress(
            SessionError
        ):  # refused at once (token, origin): the reason is in the replies
            await self._send(msg)
        async with asyncio.timeout(self.open_timeout):
            while True:
                reply = await self._receive()
                if reply is None:
                    raise self._refusal()
                if isinstance(reply, P.Accepted):
                    break
                self._pending.append(reply)
        if self.recorder is not None:
            self.recorder.begin_connection(reply.resumed_from_segment)
        logger.info(
            "session %s accepted (%s)",
            reply.session_id,
            f"resumed after segment {reply.resumed_from_segment}"
            if reply.resumed_from_segment is not None
            else "new",
        )
        return reply

    def _refusal(self) -> SessionError:
        err = self.errors[-1] if self.errors else None
        if err is not None:
            return SessionError(err.message, code=err.code)
        return SessionError(
            f"the server closed the connection ({self.close_code}) before accepting the session",
            code=codes.CLIENT_CLOSED,
        )

    async def close(self) -> None:
        """Close the connection (without ``stop``: a stored session stays resumable) and the output file."""
        await self._drop_connection()
        if self.recorder is not None:
            self.recorder.close()

    async def _drop_connection(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()
            self._note_close(ws)

    # ---- commands --------------------------------------------------------------------------------------------

    async def steer(
        self, prompt: str, *, transition: str = "cut", blend_segments: int = 1, seed: int | None = None
    ) -> int:
        """Send ``steer``; returns its request id (``acks[id]`` holds the ``steer_ack`` once it arrives)."""
        request_id = next(self._request_ids)
        self._steer_prompts[request_id] = prompt
        await self._send(
            P.Steer(
                prompt=prompt,
                transition=transition,
                blend_segments=blend_segments,
                seed=seed,
                request_id=request_id,
            )
        )
        return request_id

    async def pause(self) -> None:
        await self._send(P.Pause())

    async def resume(self) -> None:
        await self._send(P.Resume())

    async def snapshot(self, *, store: bool = False) -> int:
        """Send ``snapshot``; returns its request id (``snapshots[id]`` once the result arrives)."""
        request_id = next(self._request_ids)
        await self._send(P.Snapshot(store=store, request_id=request_id))
        return request_id

    async def stop(self) -> None:
        """Ask the server to finish the segments in flight, send ``final`` and close."""
        await self._send(P.Stop())

    async def _send(self, msg: P.Message) -> None:
        if self._ws is None:
            raise SessionError(f"cannot send {msg.type!r}: not connected", code=codes.CLIENT_NOT_CONNECTED)
        try:
            await self._ws.send(P.encode(msg))
        except ConnectionClosed as e:
            raise SessionError(
                f"cannot send {msg.type!r}: the connection closed ({e})", code=codes.CLIENT_NOT_CONNECTED
            ) from e

    # ---- events ----------------------------------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[P.Message]:
        return self.events()

    async def events(self) -> AsyncIterator[P.Message]:
        """Every server message in order, each applied to the bookkeeping and the recorder before it is yielded.

        Ends after ``final`` or when the connection closes.

        Raises:
            ProtocolError: a server message that does not decode (the connection is closed).
        """
        while self._pending:
            yield self._pending.pop(0)
        while self.final is None:
            msg = await self._receive()
            if msg is None:
                return
            yield msg

    async def _receive(self) -> P.Message | None:
        """The next decoded, applied message; None once the connection closed."""
        ws = self._ws
        if ws is None:
            return None
        try:
            data = await ws.recv()
        except ConnectionClosed:
            self._note_close(ws)
            return None
        try:
            msg = P.decode(data, limits=self.limits)  # a text frame is refused there
        except Exception:
            with contextlib.suppress(Exception):
                await ws.close(int(P.CloseCode.BAD_REQUEST), "undecodable server message")
            raise
        self._apply(msg)
        return msg

    def _note_close(self, ws: ClientConnection) -> None:
        self.close_code = ws.close_code
        self.close_reason = ws.close_reason or ""

    def _apply(self, msg: P.Message) -> None:
        """Update the bookkeeping (and the file) for one message."""
        if isinstance(msg, P.Accepted):
            self.accepted, self.state = msg, "queued"
        elif isinstance(msg, P.Queued):
            self.queue_position = msg.position
        elif isinstance(msg, P.State):
            self.state = msg.state
        elif isinstance(msg, P.SegmentStarted):
            self.started[msg.index] = msg
        elif isinstance(msg, P.SegmentDone):
            self.done[msg.index] = msg
        elif isinstance(msg, P.SteerAck) and msg.request_id is not None:
            self.acks[msg.request_id] = msg
            self._prompt = self._steer_prompts.get(msg.request_id, self._prompt)
        elif isinstance(msg, P.SnapshotResult) and msg.request_id is not None:
            self.snapshots[msg.request_id] = msg
        elif isinstance(msg, P.Error):
            self.errors.append(msg)
            logger.warning("server error %s%s: %s", msg.code, " (fatal)" if msg.fatal else "", msg.message)
        elif isinstance(msg, P.Final):
            self.final = msg
        self._record(msg)

    def _record(self, msg: P.Message) -> None:
        for tap in self.taps:
            tap(msg)
        if self.recorder is None:
            return
        if isinstance(msg, P.MediaInit):
            self.recorder.write_init(msg)
        elif isinstance(msg, P.Media):
            self.recorder.write_media(msg)
