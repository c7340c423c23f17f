"""The narrow, typed interface between a session's generator and whoever drives it (server worker, renderer).

The generator (``SessionController``) runs in a worker thread. It pushes what it produces into a
``SegmentSink`` as soon as each piece exists (progress between denoising steps, decoded frame chunks as
the progressive decoder yields them, the segment's audio), and honours a ``CancelToken`` between denoising steps
and between decoded chunks.
Nothing here does I/O.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from ltx2stream import codes
from ltx2stream.errors import SessionError

Transition = Literal["cut", "blend"]


class SegmentCancelled(SessionError):
    """Raised by the generator when its cancel token fired (checked between steps and between decoded chunks)."""

    def __init__(self, index: int) -> None:
        super().__init__(f"segment {index} was cancelled", code=codes.SESSION_CANCELLED)
        self.index = index


class CancelToken:
    """Thread-safe flags the driver sets: ``cancel`` (the generator polls it between denoising steps) and
    ``finish`` (the session ends after the segment in flight: one whose frames are not decoded yet shows what it
    would otherwise hold, as if its request were ``final``)."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._finish = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def finish(self) -> None:
        self._finish.set()

    @property
    def finishing(self) -> bool:
        return self._finish.is_set()


@dataclass(frozen=True)
class SegmentRequest:
    """What one segment should show. ``blend_from``/``blend_weight`` interpolate text contexts (transition
    ``blend``): context = (1 - w) * ctx(blend_from) + w * ctx(prompt). ``final``: the session ends with this
    segment, so it shows the frames a carrying session otherwise holds for the next one (offline renders set it
    on their last segment; a live session that simply stops never shows them)."""

    index: int
    prompt: str
    seed: int
    transition: Transition = "cut"
    blend_from: str | None = None
    blend_weight: float = 1.0
    final: bool = False


class SegmentSink(Protocol):
    """Receives a segment's products in order; called from the generator's thread."""

    def progress(self, stage: str, step: int, total: int) -> None: ...

    def video(self, frames: np.ndarray) -> None:
        """A chunk of new frames, uint8 [f, H, W, 3], in display order (overlap already trimmed)."""

    def audio(self, samples: np.ndarray) -> None:
        """New audio, float32 [channels, n] in [-1, 1], at the generator's sample rate."""

    def media_complete(self) -> None:
        """Every frame and sample of the segment was pushed (its continuation carry may still be running)."""


@dataclass(frozen=True)
class SegmentReport:
    """Summary of a finished segment: counts of what went to the sink, and stage timings in seconds."""

    index: int
    prompt: str
    seed: int
    frames: int
    audio_samples: int
    timings: Mapping[str, float] = field(default_factory=dict)


class NullSink:
    """A sink that keeps everything in memory (used by offline rendering and tests)."""

    def __init__(self) -> None:
        self.frames: list[np.ndarray] = []
        self.samples: list[np.ndarray] = []
        self.events: list[tuple[str, int, int]] = []

    def progress(self, stage: str, step: int, total: int) -> None:
        self.events.append((stage, step, total))

    def video(self, frames: np.ndarray) -> None:
        self.frames.append(frames)

    def audio(self, samples: np.ndarray) -> None:
        self.samples.append(samples)

    def media_complete(self) -> None:
        """Nothing to flush: everything is kept as it arrives."""


@dataclass(frozen=True)
class SessionSettings:
    """Per-session generation settings (the wire ``open.settings`` maps onto this one to one).

    ``frames`` are pixel frames per generated segment (1 + 8k); ``overlap`` is the number of latent frames
    carried into the next segment (k of the continuation scheme, 0 = independent segments).
    """

    preset: str
    width: int
    height: int
    fps: float
    frames: int
    overlap: int = 1
    seed: int = 0


@dataclass(frozen=True)
class ImageCondition:
    """An encoded image file conditioning the first segment at a pixel frame with a strength."""

    data: bytes
    strength: float = 1.0
    frame: int = 0


class SessionGenerator(Protocol):
    """One session's generator on a worker: runs its segments in order; owns the continuation state."""

    settings: SessionSettings
    sample_rate: int

    @property
    def next_index(self) -> int:
        """Index of the segment ``run_segment`` will produce next."""

    def run_segment(
        self, request: SegmentRequest, sink: SegmentSink, cancel: CancelToken | None = None
    ) -> SegmentReport:
        """Generate segment ``request.index`` (must equal ``next_index``); on cancel raise SegmentCancelled and
        leave the state as it was before the call."""

    def snapshot(self) -> bytes:
        """The continuation state after the last finished segment (SerializedState bytes)."""


class ModelHost(Protocol):
    """The model loaded once per device, shared by every session on that worker."""

    presets: tuple[str, ...]

    def warm_up(self) -> None:
        """Load weights and run one tiny forward so /readyz can turn green."""

    def open_session(
        self, settings: SessionSettings, *, image: ImageCondition | None = None, state: bytes | None = None
    ) -> SessionGenerator:
        """A generator for a new session, or one resumed from a state blob (checked for compatibility)."""
