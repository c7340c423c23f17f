"""The per-connection send queue: encoded messages waiting for the sender task, counted in bytes.

Bounded by design rather than by blocking producers: producers live on the event loop and must never wait.
Media is bounded by the session's lookahead (a segment is only started while at most ``1 + lookahead`` are
undelivered); above ``high_water`` queued bytes the session is told to start nothing new
(``on_pressure(True)``) until the queue drains below half of it; droppable messages (``progress``) are dropped
while over the mark.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from ltx2stream.protocol import Message, encode


@dataclass
class Outgoing:
    """One queued message; ``on_sent`` runs on the loop right after its bytes were handed to the socket.

    A message built late (``build``, e.g. ``segment_done`` carrying the send time) is encoded when dequeued.
    """

    data: bytes
    type: str
    on_sent: Callable[[], None] | None = None
    build: Callable[[], Message] | None = None
    queued_at: float = field(default_factory=time.perf_counter)


@dataclass(frozen=True)
class CloseRequest:
    """The sender's last item: close the WebSocket with this code and reason."""

    code: int
    reason: str


class Outbox:
    """FIFO of outgoing messages plus a close request; counts queued bytes for back-pressure."""

    def __init__(self, high_water: int, on_pressure: Callable[[bool], None]) -> None:
        self.high_water = high_water
        self._on_pressure = on_pressure
        self._items: deque[Outgoing] = deque()
        self._wakeup = asyncio.Event()
        self._close: CloseRequest | None = None
        self.queued_bytes = 0
        self.peak_bytes = 0
        self.dropped = 0
        self._pressure = False
        self._sending = 0  # bytes of the item the sender took and has not reported sent yet

    @property
    def closing(self) -> bool:
        """A close was requested: nothing more is queued."""
        return self._close is not None

    def put(
        self, msg: Message, *, droppable: bool = False, on_sent: Callable[[], None] | None = None
    ) -> bool:
        """Queue ``msg``; returns False when it was dropped (closing, or droppable while over the mark)."""
        if self._close is not None or (droppable and self.queued_bytes > self.high_water):
            self.dropped += 1
            return False
        item = Outgoing(encode(msg), msg.type, on_sent)
        self._items.append(item)
        self.queued_bytes += len(item.data)
        self.peak_bytes = max(self.peak_bytes, self.queued_bytes)
        self._update_pressure()
        self._wakeup.set()
        return True

    def put_later(
        self, kind: str, build: Callable[[], Message], *, on_sent: Callable[[], None] | None = None
    ) -> bool:
        """Queue a message that is built (and encoded) only when its turn to be sent comes."""
        if self._close is not None:
            self.dropped += 1
            return False
        self._items.append(Outgoing(b"", kind, on_sent, build))
        self._wakeup.set()
        return True

    def close(self, code: int, reason: str) -> None:
        """Send what is queued, then close with ``code``; later puts are dropped. The first request wins."""
        if self._close is None:
            self._close = CloseRequest(code, reason[:120])
            self._wakeup.set()

    def discard(self) -> None:
        """Drop every queued message (the session is ending and they would arrive incomplete)."""
        self._items.clear()
        self.queued_bytes = self._sending
        self._update_pressure()

    def close_now(self, code: int, reason: str) -> None:
        """Drop what is queued and close (used when the client cannot be reached anyway)."""
        self.discard()
        self._close = CloseRequest(code, reason[:120])
        self._wakeup.set()

    async def get(self) -> Outgoing | CloseRequest:
        """The next message, or the close request once the queue is empty."""
        while not self._items:
            if self._close is not None:
                return self._close
            self._wakeup.clear()
            await self._wakeup.wait()
        item = self._items.popleft()
        if item.build is not None:
            item.data = encode(item.build())
            self.queued_bytes += len(item.data)
        self._sending = len(item.data)
        return item

    def sent(self, item: Outgoing) -> None:
        """Account for a message the sender handed to the socket."""
        self.queued_bytes -= len(item.data)
        self._sending = 0
        self._update_pressure()

    def _update_pressure(self) -> None:
        if not self._pressure and self.queued_bytes > self.high_water:
            self._pressure = True
            self._on_pressure(True)
        elif self._pressure and self.queued_bytes <= self.high_water // 2:
            self._pressure = False
            self._on_pressure(False)
