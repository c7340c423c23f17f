"""render_clip: a window of a clip as video, audio, per-frame ground truth and captions per span."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .captions import VOCABULARIES, announce, describe
from .motion import Bounce
from .palette import BACKGROUND_NAMES, HEADINGS, SHAPE_KINDS
from .raster import render_frames
from .scene import Scene
from .sound import render_audio
from .spec import ClipSpec, SceneState

DEFAULT_SAMPLE_RATE = 16000  # the LTX-2 audio VAE's mel front end runs at 16 kHz


@dataclass(frozen=True)
class ClipTruth:
    """Ground truth for every frame of a rendered window (frame indices are relative to the window).

    Per-slot arrays have one column per shape slot of the whole clip (absent slots: ``present`` False).
    Positions are shape centres in pixels (x right, y down).
    """

    fps: float
    sample_rate: int
    start_frame: int  # the window's first frame in the whole clip
    start_sample: int  # the window's first audio sample in the whole clip
    height: int
    width: int
    present: np.ndarray  # (F, N) bool
    kind: np.ndarray  # (N,) index into SHAPE_KINDS
    colour: np.ndarray  # (F, N) index into COLOUR_NAMES
    motion: np.ndarray  # (F, N) index into MOTIONS
    heading: np.ndarray  # (F, N) index into HEADINGS
    x: np.ndarray  # (F, N) pixels
    y: np.ndarray  # (F, N) pixels
    radius: np.ndarray  # (N,) circumradius in pixels
    background: int  # index into BACKGROUND_NAMES
    gradient: bool
    dark: np.ndarray  # (F,) bool
    overlap: np.ndarray  # (F,) bool: two shapes' bounding circles touch
    bounces: tuple[Bounce, ...]  # in the window; Bounce.time is clip time in seconds
    states: tuple[SceneState, ...]  # (F,) the described scene per frame

    @property
    def frames(self) -> int:
        return int(self.present.shape[0])

    def bounce_frames(self) -> np.ndarray:
        """Bounce times as fractional frame indices relative to the window; shape = (n_bounces,)."""
        return np.array([b.time * self.fps - self.start_frame for b in self.bounces])

    def click_samples(self) -> np.ndarray:
        """First sample of each bounce click, relative to the window's audio; shape = (n_bounces,)."""
        return np.array([int(np.ceil(b.time * self.sample_rate)) - self.start_sample for b in self.bounces])


@dataclass(frozen=True)
class CaptionSpan:
    start: int  # first frame (relative to the window)
    end: int  # one past the last frame
    text: str  # a full description of the scene in force (a prompt)
    state: SceneState
    announcement: str | None  # what changed at ``start`` (None for the clip's first span)


class RenderedClip(NamedTuple):
    video: np.ndarray  # (F, H, W, 3) uint8
    audio: np.ndarray  # (S,) or (C, S) float32 at truth.sample_rate
    truth: ClipTruth
    captions: tuple[CaptionSpan, ...]


def first_frame_at(t: float, fps: float) -> int:
    """The first frame whose time is >= t (frame i shows time i / fps)."""
    i = int(np.ceil(t * fps - 1e-6))
    return i + 1 if (start := i / fps) < t and not np.isclose(start, t, rtol=0, atol=0) else i


def _headings(vx: np.ndarray, vy: np.ndarray) -> np.ndarray:
    out = np.full(vx.shape, HEADINGS.index("still"))
    horiz = np.abs(vx) >= np.abs(vy)
    moving = np.hypot(vx, vy) > 1e-9
    out = np.where(moving & horiz & (vx < 0), HEADINGS.index("left"), out)
    out = np.where(moving & horiz & (vx > 0), HEADINGS.index("right"), out)
    out = np.where(moving & ~horiz & (vy < 0), HEADINGS.index("up"), out)
    return np.where(moving & ~horiz & (vy > 0), HEADINGS.index("down"), out)


def _truth(
    scene: Scene, times: np.ndarray, start_frame: int, start_sample: int, h: int, w: int, fps: float, sr: int
) -> ClipTruth:
    n = scene.slots
    present = np.stack([times >= scene.appear[i] for i in range(n)], axis=1)
    st = [tr.state(times) for tr in scene.trajectories]
    x = np.stack([s[0] for s in st], axis=1) * h
    y = np.stack([s[1] for s in st], axis=1) * h
    radius = np.array([tr.bounds[2] * h for tr in scene.trajectories])
    overlap = np.zeros(len(times), dtype=bool)
    for i in range(n):
        for j in range(i + 1, n):
            close = np.hypot(x[:, i] - x[:, j], y[:, i] - y[:, j]) < radius[i] + radius[j] + 1.0
            overlap |= close & present[:, i] & present[:, j]
    bg = scene.spec.background
    t0, t1 = times[0] if len(times) else 0.0, (start_frame + len(times)) / fps
    return ClipTruth(
        fps=fps,
        sample_rate=sr,
        start_frame=start_frame,
        start_sample=start_sample,
        height=h,
        width=w,
        present=present,
        kind=np.array([SHAPE_KINDS.index(s.kind) for s in scene.shapes]),
        colour=np.stack([scene.colour_index(i, times) for i in range(n)], axis=1),
        motion=np.stack([scene.motion_index(i, times) for i in range(n)], axis=1),
        heading=np.stack([_headings(s[2], s[3]) for s in st], axis=1),
        x=x,
        y=y,
        radius=radius,
        background=BACKGROUND_NAMES.index(bg.colour),
        gradient=bg.style == "gradient",
        dark=scene.dark_at(times),
        overlap=overlap,
        bounces=tuple(scene.bounces_between(t0 - 0.5 / fps, t1)),
        states=tuple(scene.state_at(float(t)) for t in times),
    )


def _captions(
    scene: Scene, frames: int, start_frame: int, fps: float, vocabulary: str
) -> tuple[CaptionSpan, ...]:
    changes = scene.change_times()
    spec = scene.spec
    # Span k of the whole clip starts at change k - 1; its wording depends only on (seed, k, vocabulary).
    starts = [0] + [first_frame_at(t, fps) - start_frame for t in changes]
    spans = []
    for k, s in enumerate(starts):
        e = starts[k + 1] if k + 1 < len(starts) else frames
        lo, hi = max(s, 0), min(e, frames)
        if lo >= hi:
            continue
        t = (start_frame + lo) / fps
        rng = np.random.default_rng([spec.seed & 0xFFFFFFFF, k, VOCABULARIES.index(vocabulary)])
        state = scene.state_at(t)
        note = None
        if k > 0:
            ev = [e for e in spec.events if e.at == changes[k - 1]]
            before = scene.state_at(changes[k - 1] - 1e-6)
            note = "; ".join(announce(e, before, state, rng, vocabulary) for e in ev)
        spans.append(CaptionSpan(lo, hi, describe(state, rng, vocabulary), state, note))
    return tuple(spans)


def render_clip(
    spec: ClipSpec,
    frames: int,
    height: int,
    width: int,
    fps: float,
    *,
    start_frame: int = 0,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    channels: int = 1,
    vocabulary: str = "train",
) -> RenderedClip:
    """Render frames ``start_frame .. start_frame + frames - 1`` of the clip and the audio under them.

    Any window of a long clip is an exact slice of the whole (video frame for frame; audio from sample
    ``round(start_frame / fps * sample_rate)`` on, ``round((start_frame + frames) / fps * sample_rate)`` minus that
    many samples). Deterministic from ``spec`` (which holds the seed).
    """
    if frames < 1 or height < 8 or width < 8 or fps <= 0 or sample_rate <= 0:
        raise ValueError(
            f"need frames >= 1, height/width >= 8, fps and sample_rate > 0; got {frames}, {height}x{width}, {fps}, {sample_rate}"
        )
    if vocabulary not in VOCABULARIES:
        raise ValueError(f"vocabulary {vocabulary!r} not in {VOCABULARIES}")
    scene = Scene.build(spec, width / height)
    times = (start_frame + np.arange(frames)) / fps
    s0 = round(start_frame / fps * sample_rate)
    s1 = round((start_frame + frames) / fps * sample_rate)
    video = render_frames(scene, times, height, width)
    audio = render_audio(scene, s0, s1 - s0, sample_rate, channels)
    truth = _truth(scene, times, start_frame, s0, height, width, fps, sample_rate)
    return RenderedClip(video, audio, truth, _captions(scene, frames, start_frame, fps, vocabulary))
