"""One accepted session on the event loop: client commands in, worker events in, protocol messages out.

All methods run on the event loop. The rules (lifecycle, steering, rate limit) come from the Sans-I/O classes
in ``ltx2stream.session.state_machine``; this class only wires them to the job (worker side) and the outbox.
Worker and encoder threads reach it through :class:`LoopEvents`, which posts each call to the loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

from ltx2stream import codes
from ltx2stream import protocol as P
from ltx2stream.errors import LTX2StreamError, ProtocolError, SessionError
from ltx2stream.server.ending import Checkpoint, EndReason, SessionEnd
from ltx2stream.server.job import (
    HOLD_BACKPRESSURE,
    HOLD_CLIENT,
    HOLD_STOPPING,
    Fragment,
    Job,
    PostedEvents,
    SegmentResult,
)
from ltx2stream.server.messages import segment_started, state_message
from ltx2stream.server.metrics import ServerMetrics
from ltx2stream.server.outbox import Outbox
from ltx2stream.server.scheduler import Scheduler
from ltx2stream.session.state_machine import (
    RateLimiter,
    SegmentPlan,
    SessionState,
    SessionStateMachine,
)
from ltx2stream.session.store import StateStore

logger = logging.getLogger(__name__)
TIMING_KEYS = ("text", "stage1", "upsample", "stage2", "decode", "carry")
FOLDED_INTO_DECODE = ("audio",)  # the generator's audio decode (audio VAE + vocoder) counts as ``decode``


@dataclass(frozen=True)
class Services:
    """What every session shares: the store, the metrics and the protocol limits."""

    store: StateStore
    metrics: ServerMetrics
    limits: P.ProtocolLimits
    persist_every_segment: bool = True  # save each delivered segment's state at once (kill -9 loses nothing)


class LiveSession:
    """A session from ``accepted`` to ``final``; its :class:`SessionEnd` (``end``) owns how it ends.

    ``checkpoint`` is the state after the last delivered segment (``resumed``: the state it started from).
    """

    def __init__(
        self,
        job: Job,
        scheduler: Scheduler,
        outbox: Outbox,
        services: Services,
        resumed: Checkpoint | None = None,
    ) -> None:
        self.job, self.scheduler, self.outbox, self.services = job, scheduler, outbox, services
        self.session_id = job.session_id
        self.machine = SessionStateMachine(job.session_id)
        self.rate = RateLimiter(services.limits.steer_per_minute, services.limits.steer_burst)
        self.delivered = 0  # segments delivered on this connection
        self.checkpoint: Checkpoint | None = resumed
        self.released = asyncio.Event()  # the worker will not touch the job again
        self.end = SessionEnd(self)
        # the per-segment save in flight (persist_every_segment); one at a time, always of the newest checkpoint
        self.persisting: asyncio.Task[None] | None = None
        self.store_lock = (
            asyncio.Lock()
        )  # one store write of this session at a time (an older never lands last)
        self.media_seconds = 0.0
        self.queue_position: int | None = None  # position in the worker's waiting queue, None once active
        self._seq = 0
        self._segment_first_queued: dict[int, float] = {}
        self._done_through = -1  # the newest segment done (progress of it or before it is stale)

    # ---- helpers -------------------------------------------------------------------------------------------

    def send(self, msg: P.Message, *, droppable: bool = False) -> None:
        self.outbox.put(msg, droppable=droppable)

    def _transition_by(self, command: str) -> None:
        """Apply pause/resume/stop to the state machine and report the change."""
        change = self.machine.command(command)
        assert change is not None, command  # pause/resume/stop always transition (or raise)
        self.send(state_message(change))

    def change(self, target: SessionState, reason: str | None = None) -> None:
        """Transition and report it (no-op when already there)."""
        if self.machine.state != target:
            self.send(state_message(self.machine.transition(target, reason)))

    def on_pressure(self, on: bool) -> None:
        """The outbox crossed its high-water mark (True) or drained below half of it (False)."""
        if self.job.set_hold(HOLD_BACKPRESSURE, on):
            self.services.metrics.backpressured.inc(1 if on else -1)
            logger.info(
                "session %s: client %s", self.session_id, "falls behind, holding" if on else "caught up"
            )
            if not on:
                self.scheduler.poke()

    # ---- client commands -----------------------------------------------------------------------------------

    async def handle(self, msg: P.Message) -> None:
        """Apply one client message after ``open``; raises LTX2StreamError for the connection to report."""
        if isinstance(msg, P.Steer):
            self.machine.command("steer")
            self.rate.check(time.monotonic())
            at = self.job.steer(
                msg.prompt, transition=msg.transition, blend_segments=msg.blend_segments, seed=msg.seed
            )
            self.send(P.SteerAck(applies_at=at, request_id=msg.request_id))
        elif isinstance(msg, P.Pause):
            self._transition_by("pause")
            self.job.set_hold(HOLD_CLIENT, True)
        elif isinstance(msg, P.Resume):
            self._transition_by("resume")
            self.job.set_hold(HOLD_CLIENT, False)
            self.scheduler.poke()
        elif isinstance(msg, P.Snapshot):
            await self._snapshot(msg)
        elif isinstance(msg, P.Stop):
            self._transition_by("stop")
            self.job.set_hold(HOLD_STOPPING, True)
            self.end.drain(tail_coming=self.job.end_media())
        else:
            raise ProtocolError(
                f"{msg.type!r} is only allowed as the first message of a connection",
                code=codes.PROTOCOL_UNEXPECTED,
            )

    async def _snapshot(self, msg: P.Snapshot) -> None:
        self.machine.command("snapshot")
        checkpoint = self.checkpoint
        if checkpoint is None:
            raise SessionError(
                "snapshot: no segment was delivered yet", code=codes.SESSION_COMMAND_NOT_ALLOWED
            )
        index, state = checkpoint.segment_index, checkpoint.state
        if msg.store:
            async with self.store_lock:
                await asyncio.to_thread(self.services.store.save, self.session_id, index, state)
            if self.checkpoint is checkpoint:  # no newer segment was delivered meanwhile
                self.checkpoint = dataclasses.replace(checkpoint, stored=True)
            self.services.metrics.states_saved.inc()
        self.send(
            P.SnapshotResult(
                session_id=self.session_id,
                segment_index=index,
                stored=msg.store,
                data=None if msg.store else state,
                request_id=msg.request_id,
            )
        )

    # ---- worker events (posted to the loop by LoopEvents) --------------------------------------------------

    def on_opening(self) -> None:
        if self.machine.state == SessionState.QUEUED:
            self.change(SessionState.STARTING, "generator assigned")

    def on_queued(self, position: int) -> None:
        self.send(P.Queued(position=position))

    def on_segment_started(self, plan: SegmentPlan) -> None:
        if not self.end.accepting:
            return
        if self.machine.state == SessionState.STARTING:
            self.change(SessionState.RUNNING, "first segment")
        self.send(segment_started(plan))

    def on_progress(self, index: int, stage: str, step: int, total: int) -> None:
        """One step done, as the worker posted it (``LoopEvents`` throttles progress on the worker's side:
        ``ServerConfig.progress_interval_s``): sent, unless the session is ending or the segment is already done
        (a step the worker's throttle held and posted late is stale by then)."""
        if not self.end.accepting or stage not in P.STAGES or total < 1 or index <= self._done_through:
            return
        self.send(P.Progress(segment=index, stage=stage, step=min(step, total), total=total), droppable=True)

    def on_media_init(self, mime: str, data: bytes) -> None:
        if not self.end.accepting:
            return
        self.send(P.MediaInit(mime=mime, data=data))

    def on_media(self, fragment: Fragment) -> None:
        if not self.end.accepting:
            return
        self._segment_first_queued.setdefault(fragment.segment, time.perf_counter())
        self.send(
            P.Media(
                segment=fragment.segment,
                seq=self._seq,
                t0=fragment.t0,
                duration=fragment.duration,
                data=fragment.data,
                last=fragment.last,
            )
        )
        self._seq += 1
        self.media_seconds += fragment.duration

    def on_segment_encoded(self, result: SegmentResult) -> None:
        if not self.end.accepting:
            return
        index = result.report.index
        self._done_through = max(self._done_through, index)
        first = self._segment_first_queued.pop(index, time.perf_counter())
        timings = wire_timings(result.report.timings)
        duration = result.report.frames / self.job.spec.settings.fps

        def build() -> P.SegmentDone:
            # Every piece of the segment has been handed to the socket: it is delivered. Record it before the
            # client can read segment_done, so a snapshot or resume it sends next sees this segment.
            send_s = time.perf_counter() - first
            self._delivered(result, duration)
            return P.SegmentDone(
                index=index,
                media_duration=duration,
                timings=P.SegmentTimings(**timings, encode=result.encode_s, send=send_s),
            )

        self.outbox.put_later("segment_done", build)

    def on_media_ended(self) -> None:
        self.end.tail_queued()

    def on_cancelled(self, index: int) -> None:
        self.services.metrics.cancelled.inc()

    def on_failed(self, error: BaseException) -> None:
        self.end.request(EndReason.FAILED, error)

    def on_released(self) -> None:
        self.released.set()

    def _persist_soon(self) -> None:
        """Start storing the newest checkpoint unless a save is running (that one stores it when done)."""
        if self.persisting is None or self.persisting.done():
            self.persisting = asyncio.create_task(self._persist_latest(), name=f"persist-{self.session_id}")

    async def _persist_latest(self) -> None:
        """Store the newest delivered checkpoint, in a thread (never the worker's), one write at a time.

        Saves are serialised so an older state can never land after a newer one (the store drops indices above
        the one saved); a segment delivered during a write is saved right after it (intermediate ones are
        skipped: only the newest is the resume point). A failed write is logged; the ending's checkpoint
        retries it.
        """
        while (checkpoint := self.checkpoint) is not None and not checkpoint.stored:
            index = checkpoint.segment_index
            try:
                async with self.store_lock:
                    await asyncio.to_thread(
                        self.services.store.save, self.session_id, index, checkpoint.state
                    )
            except (LTX2StreamError, OSError, ValueError):
                logger.exception("session %s: storing segment %d failed", self.session_id, index)
                return
            self.services.metrics.states_saved.inc()
            if self.checkpoint is checkpoint:  # no newer segment was delivered meanwhile
                self.checkpoint = dataclasses.replace(checkpoint, stored=True)

    def _delivered(self, result: SegmentResult, duration: float) -> None:
        if not self.end.accepting:  # the checkpoint is being taken; this segment does not count
            return
        index = result.report.index
        self.job.delivered(index)
        self.scheduler.poke()
        self.checkpoint = Checkpoint(index, result.state)
        self.delivered += 1
        if self.services.persist_every_segment:
            self._persist_soon()
        m = self.services.metrics
        m.segments.inc()
        m.media_seconds.inc(duration)
        m.generate_seconds.inc(result.generate_s)
        m.realtime_factor.set(duration / result.generate_s if result.generate_s > 0 else 0.0)
        for stage, seconds in wire_timings(result.report.timings).items():
            m.stage_seconds.observe(seconds, stage=stage)
        m.stage_seconds.observe(result.encode_s, stage="encode")
        self.end.check_drained()


def wire_timings(reported: Mapping[str, float]) -> dict[str, float]:
    """The generator's stage timings as the ``segment_done.timings`` stages (missing stages are 0)."""
    out = {k: float(reported.get(k, 0.0)) for k in TIMING_KEYS}
    out["decode"] += sum(float(reported.get(k, 0.0)) for k in FOLDED_INTO_DECODE)
    return out


class LoopEvents(PostedEvents):
    """The thread-safe JobEvents of a LiveSession: each call is posted to the event loop."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        session: LiveSession | None = None,
        progress_interval_s: float = 0.0,
    ) -> None:
        super().__init__(loop, progress_interval_s)
        self.session = session  # set right after the session is built (it needs the job, the job needs us)

    def target(self) -> object:
        assert self.session is not None
        return self.session
