"""The worker-side view of one live session: what to generate next, what holds it back, where results go.

Thread boundaries: the event loop steers, pauses and applies back-pressure through the methods marked *loop*;
the worker thread asks :meth:`Job.take_turn` for the next thing to do. Both go through ``Job.lock`` (held for
microseconds), so a steer and the start of a segment are ordered and ``steer_ack.applies_at`` is exact.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ltx2stream.session.api import (
    CancelToken,
    ImageCondition,
    SegmentReport,
    SessionGenerator,
    SessionSettings,
)
from ltx2stream.session.state_machine import SegmentPlan, SteeringSchedule

if TYPE_CHECKING:
    from ltx2stream.server.streaming import SegmentStreamer

OPEN = "open"  # the turn that opens the generator (load the resume state, encode the image)
HOLD_CLIENT = "client"  # the client paused
HOLD_BACKPRESSURE = "backpressure"  # the connection's send queue is over its high-water mark
HOLD_STOPPING = "stopping"  # stop requested: finish what started, start nothing new


@dataclass(frozen=True)
class JobSpec:
    """What the worker needs to open a session's generator."""

    session_id: str
    settings: SessionSettings
    image: ImageCondition | None = None
    state: bytes | None = None


@dataclass(frozen=True)
class Fragment:
    """One fMP4 media fragment as the server sends it (absolute session time in seconds)."""

    segment: int
    data: bytes
    t0: float
    duration: float
    last: bool


@dataclass(frozen=True)
class SegmentResult:
    """A generated and encoded segment: the generator's report, the continuation state after it, wall
    times."""

    report: SegmentReport
    state: bytes
    generate_s: float
    encode_s: float


class JobEvents(Protocol):
    """What a job reports; called from the worker and encoder threads, so implementations must be thread-safe
    (the server's implementation only posts each call to the event loop)."""

    def opening(self) -> None: ...

    def segment_started(self, plan: SegmentPlan) -> None: ...

    def progress(self, index: int, stage: str, step: int, total: int) -> None: ...

    def media_init(self, mime: str, data: bytes) -> None: ...

    def media(self, fragment: Fragment) -> None: ...

    def segment_encoded(self, result: SegmentResult) -> None:
        """Every fragment of ``result.report.index`` was handed to ``media``."""

    def media_ended(self) -> None:
        """After :meth:`Job.end_media`: the encoder's tail was handed to ``media`` (the stream is complete)."""

    def cancelled(self, index: int) -> None: ...

    def failed(self, error: BaseException) -> None: ...

    def released(self) -> None:
        """The worker will not touch this job again (sent once, after removal)."""


class PostedEvents(abc.ABC):
    """JobEvents that post each call to an event loop, as ``on_<event>`` of :meth:`target` (a live session or a
    video job); the base of the server's two implementations.

    ``progress_interval_s`` > 0 throttles progress where it is reported, on the worker thread, so a fast CPU
    preset does not wake the event loop (and take the GIL from the worker) once per few-millisecond step: each
    stage's first and last step are posted at once, in between at most one per interval: the newest step, posted
    by a loop timer when the interval is over unless a step posted at once superseded it (one post arms the timer
    per interval instead of one post per step)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, progress_interval_s: float = 0.0) -> None:
        self._loop = loop
        self._progress_interval_s = progress_interval_s
        self._progress_lock = threading.Lock()
        self._progress_key: tuple[int, str] | None = None  # (segment, stage) of the last step posted
        self._progress_at = 0.0  # when it was posted (time.monotonic)
        self._progress_held: tuple[int, str, int, int] | None = None  # the newest step not posted yet
        self._progress_armed = False  # a loop timer will post the held step

    @abc.abstractmethod
    def target(self) -> object:
        """What ``on_<event>`` is called on (resolved at each post)."""

    def _post(self, name: str, *args: object) -> None:
        target = self.target()
        try:
            self._loop.call_soon_threadsafe(getattr(target, name), *args)
        except RuntimeError:  # the loop is closed: the server is gone, nobody is listening
            logging.getLogger(__name__).debug("dropped %s for %r: event loop closed", name, target)

    def opening(self) -> None:
        self._post("on_opening")

    def segment_started(self, plan: SegmentPlan) -> None:
        self._post("on_segment_started", plan)

    def progress(self, index: int, stage: str, step: int, total: int) -> None:
        interval = self._progress_interval_s
        if interval <= 0:
            self._post("on_progress", index, stage, step, total)
            return
        now = time.monotonic()
        key = (index, stage)
        with self._progress_lock:
            due = (
                step <= 1 or step >= total or key != self._progress_key or now - self._progress_at >= interval
            )
            if due:
                self._progress_key, self._progress_at, self._progress_held = key, now, None
            else:
                self._progress_held = (index, stage, step, total)
                if self._progress_armed:
                    return  # the armed timer posts this step (or a newer one)
                self._progress_armed = True
                delay = interval - (now - self._progress_at)
        if due:
            self._post("on_progress", index, stage, step, total)
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is listening
            self._loop.call_soon_threadsafe(self._loop.call_later, max(delay, 0.0), self._post_held_progress)

    def _post_held_progress(self) -> None:
        """On the loop, when the interval is over: the newest held step, unless superseded meanwhile."""
        with self._progress_lock:
            held, self._progress_held, self._progress_armed = self._progress_held, None, False
            if held is None or (held[0], held[1]) != self._progress_key:
                return
            self._progress_at = time.monotonic()
        self.target().on_progress(*held)  # type: ignore[attr-defined]

    def media_init(self, mime: str, data: bytes) -> None:
        self._post("on_media_init", mime, data)

    def media(self, fragment: Fragment) -> None:
        self._post("on_media", fragment)

    def segment_encoded(self, result: SegmentResult) -> None:
        self._post("on_segment_encoded", result)

    def media_ended(self) -> None:
        self._post("on_media_ended")

    def cancelled(self, index: int) -> None:
        self._post("on_cancelled", index)

    def failed(self, error: BaseException) -> None:
        self._post("on_failed", error)

    def released(self) -> None:
        self._post("on_released")


class Job:
    """One session as its worker sees it."""

    def __init__(self, spec: JobSpec, schedule: SteeringSchedule, events: JobEvents) -> None:
        self.spec = spec
        self.schedule = schedule  # guarded by ``lock``
        self.events = events
        self.cancel = CancelToken()
        self.lock = threading.Lock()
        self.generator: SessionGenerator | None = None  # worker thread only
        self.streamer: SegmentStreamer | None = None  # worker thread only
        self.segments_generated = 0  # worker thread writes; others read (for tests and metrics)
        self._first_index = schedule.next_index  # the first segment this job generates
        self._holds: set[str] = set()

    @property
    def session_id(self) -> str:
        return self.spec.session_id

    # ---- loop side -----------------------------------------------------------------------------------------

    def set_hold(self, reason: str, on: bool) -> bool:
        """Add or remove one reason to start nothing new; returns whether anything changed."""
        with self.lock:
            before = reason in self._holds
            (self._holds.add if on else self._holds.discard)(reason)
            return before != on

    def held(self, reason: str) -> bool:
        with self.lock:
            return reason in self._holds

    def steer(self, prompt: str, *, transition: str, blend_segments: int, seed: int | None) -> int:
        """Schedule a prompt change; returns the segment index it applies from."""
        with self.lock:
            return self.schedule.steer(
                prompt, transition=transition, blend_segments=blend_segments, seed=seed
            )

    def delivered(self, index: int) -> None:
        """Segment ``index`` reached the client: frees one lookahead slot."""
        with self.lock:
            self.schedule.delivered_through(index)

    def in_flight(self) -> int:
        """Segments started and not yet delivered."""
        with self.lock:
            return self.schedule.in_flight

    def end_media(self) -> bool:
        """After ``stop`` (no segment starts any more): the last started segment ends the stream, so the
        encoder hands out its audio tail with it and ``events.media_ended`` follows. False (and no event) when
        no segment started on this job: nothing was encoded."""
        with self.lock:
            last = self.schedule.next_index - 1
        self.cancel.finish()  # a segment not yet decoding shows the frames it would hold for a next one
        streamer = self.streamer  # set by the worker before any segment could start
        if streamer is None or last < self._first_index:
            return False
        streamer.end_after(last)
        return True

    def release(self) -> None:
        """Drop the generator and close the encoder (after its queued work); only once no turn can run."""
        streamer, self.streamer, self.generator = self.streamer, None, None
        if streamer is not None:
            streamer.close()

    # ---- worker side ---------------------------------------------------------------------------------------

    def take_turn(self) -> SegmentPlan | str | None:
        """The next thing to do for this job, committing to it: ``OPEN``, a started segment's plan, or
        None."""
        if self.cancel.cancelled:
            return None
        if self.generator is None:
            return OPEN
        with self.lock:
            if self._holds or not self.schedule.may_start():
                return None
            return self.schedule.start_next()
