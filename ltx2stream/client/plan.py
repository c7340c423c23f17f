"""A scripted client session: open, steer after given segment counts, stop after N segments, resume on loss.

``ltx2stream client`` (``ltx2stream.commands.client``) builds a :class:`Plan` from its options and runs it with
:func:`stream`; the demo does the same. See docs/clients.md.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ltx2stream import protocol as P
from ltx2stream.client.session import StreamClient

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    """What the command does: open settings, steers by delivered-segment count, and how many segments."""

    prompt: str
    settings: P.Settings
    image: P.Image | None
    lookahead: int
    resume_from: P.ResumeFrom | None
    steers: tuple[tuple[int, str], ...]  # (after N delivered segments, prompt), sorted
    transition: str
    blend_segments: int
    segments: int  # stop once this many started; 0: run until stopped (``--interactive`` /stop, Ctrl-C)


async def stream(client: StreamClient, plan: Plan, *, reconnects: int = 3) -> P.Final | None:
    """Run the plan on ``client``: open, steer after the given counts, stop once the last segment started.

    Returns the ``final`` message (None if the connection was lost and could not be resumed).
    """
    accepted = await client.open(
        plan.prompt, plan.settings, image=plan.image, lookahead=plan.lookahead, resume_from=plan.resume_from
    )
    first = 0 if accepted.resumed_from_segment is None else accepted.resumed_from_segment + 1
    last = first + plan.segments - 1 if plan.segments > 0 else None  # 0 segments: until stopped
    if client.recorder is not None and last is not None:
        client.recorder.segment_limit = last + 1
    steers, stopping, attempts = list(plan.steers), False, 0
    while True:
        async for msg in client.events():
            delivered = sum(1 for i in client.done if i >= first)
            while steers and steers[0][0] <= delivered and not stopping:
                _, prompt = steers.pop(0)
                await client.steer(prompt, transition=plan.transition, blend_segments=plan.blend_segments)
            if isinstance(msg, P.SegmentStarted) and last is not None and msg.index >= last and not stopping:
                stopping = True
                await client.stop()
            _log(msg)
        if client.final is not None or attempts >= reconnects or client.close_code in (1000, None):
            return client.final
        attempts += 1
        logger.warning(
            "connection lost (%s); resuming session %s (attempt %d)",
            client.close_code,
            client.session_id,
            attempts,
        )
        await asyncio.sleep(min(0.5 * 2**attempts, 8.0))
        accepted = await client.reconnect()
        stopping = False


def _log(msg: P.Message) -> None:
    if isinstance(msg, P.SegmentStarted):
        blend = f" ({msg.weight:.2f}, from {msg.previous_prompt!r})" if msg.previous_prompt else ""
        logger.info("segment %d started: %r%s seed %d", msg.index, msg.prompt, blend, msg.seed)
    elif isinstance(msg, P.SegmentDone):
        t = msg.timings
        logger.info(
            "segment %d done: %.2f s of media; text %.2f stage1 %.2f upsample %.2f stage2 %.2f decode %.2f "
            "encode %.2f send %.2f",
            msg.index,
            msg.media_duration,
            t.text,
            t.stage1,
            t.upsample,
            t.stage2,
            t.decode,
            t.encode,
            t.send,
        )
    elif isinstance(msg, P.SteerAck):
        logger.info("steer #%s applies at segment %d", msg.request_id, msg.applies_at)
    elif isinstance(msg, P.State):
        logger.info("state %s -> %s%s", msg.previous, msg.state, f" ({msg.reason})" if msg.reason else "")
    elif isinstance(msg, P.Queued):
        logger.info("queued at position %d", msg.position)


def summary(client: StreamClient, final: P.Final | None, output: Path) -> dict[str, Any]:
    """The JSON summary printed at the end."""
    return {
        "session_id": client.session_id,
        "output": str(output),
        "final": final.reason if final else None,
        "error_code": final.error_code if final else None,
        "resumable_session_id": final.resumable_session_id if final else None,
        "segments_recorded": client.recorder.complete_segments if client.recorder else [],
        "steers": {str(k): v.applies_at for k, v in client.acks.items()},
        "segments": [
            {
                "index": i,
                "prompt": s.prompt,
                "seed": s.seed,
                "weight": s.weight,
                "media_s": client.done[i].media_duration if i in client.done else None,
            }
            for i, s in sorted(client.started.items())
        ],
        "errors": [{"code": e.code, "message": e.message} for e in client.errors],
        "close_code": client.close_code,
    }
