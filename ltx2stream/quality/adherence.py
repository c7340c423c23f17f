"""Prompt adherence per attribute: what the scorers read in each window against the scene the prompt describes.

For each span of frames under one prompt, the span is cut into windows of ``window_s`` seconds. Per window the
shapes seen in at least half of its frames are read (colour; majority kind; motion of the centroid track), the
background (majority colour and darkness), the tones heard and the hum. Expected shapes are matched to read ones
by colour first, then greedily (same kind preferred). adherence[a] = hits[a] / trials[a] over all windows, where a
shape attribute has one trial per expected shape per window and background/sound/hum one per window.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..world.spec import SceneState
from .audio import hum, tones
from .tracks import motion_of, track
from .video import FrameReading

ATTRIBUTES = ("kind", "colour", "motion", "background", "sound", "hum")


class PromptSpan(Protocol):
    """Frames [start, end) were generated under a prompt describing ``state`` (world.CaptionSpan fits)."""

    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...
    @property
    def state(self) -> SceneState: ...


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    state: SceneState


@dataclass(frozen=True)
class WindowReading:
    shapes: dict[str, tuple[str, str | None]]  # colour -> (kind, motion)
    background: tuple[str, bool]
    tones: frozenset[str]
    hum: str | None


@dataclass(frozen=True)
class Adherence:
    scores: dict[str, float]  # attribute -> fraction of trials that matched (NaN without trials)
    hits: dict[str, int]
    trials: dict[str, int]
    windows: int


def read_window(
    readings: Sequence[FrameReading], audio: np.ndarray | None, fps: float, sample_rate: int, height: int
) -> WindowReading:
    seen = Counter(c for r in readings for c in r.by_colour())
    shapes: dict[str, tuple[str, str | None]] = {}
    for colour, n in seen.items():
        if n * 2 < len(readings):
            continue
        kinds = Counter(r.by_colour()[colour].kind for r in readings if colour in r.by_colour())
        shapes[colour] = (kinds.most_common(1)[0][0], motion_of(track(list(readings), colour), fps, height))
    bg = Counter((r.background.colour, r.background.dark) for r in readings).most_common(1)[0][0]
    if audio is None or mono_len(audio) < sample_rate // 10:
        return WindowReading(shapes, bg, frozenset(), None)
    return WindowReading(shapes, bg, tones(audio, sample_rate), hum(audio, sample_rate))


def mono_len(audio: np.ndarray) -> int:
    return int(audio.shape[-1])


def _match(
    state: SceneState, read: dict[str, tuple[str, str | None]]
) -> list[tuple[str, str, str | None] | None]:
    """Per expected shape: the (colour, kind, motion) read for it, or None."""
    free = dict(read)
    out: list[tuple[str, str, str | None] | None] = [None] * len(state.shapes)
    for i, s in enumerate(state.shapes):
        if s.colour in free:
            out[i] = (s.colour, *free.pop(s.colour))
    for i, s in enumerate(state.shapes):
        if out[i] is None and free:
            colour = next((c for c, (k, _) in free.items() if k == s.kind), next(iter(free)))
            out[i] = (colour, *free.pop(colour))
    return out


def score_window(state: SceneState, w: WindowReading, with_audio: bool) -> dict[str, tuple[int, int]]:
    """attribute -> (hits, trials) for one window."""
    res = {a: [0, 0] for a in ATTRIBUTES}
    for s, m in zip(state.shapes, _match(state, w.shapes), strict=True):
        for attr, want, idx in (("colour", s.colour, 0), ("kind", s.kind, 1), ("motion", s.motion, 2)):
            res[attr][1] += 1
            res[attr][0] += int(m is not None and m[idx] == want)
    res["background"] = [int(w.background == (state.background.colour, state.background.dark)), 1]
    if with_audio:
        res["sound"] = [int(w.tones == frozenset(state.kinds)), 1]
        res["hum"] = [int(w.hum == state.background.colour), 1]
    return {a: (h, t) for a, (h, t) in res.items()}


def prompt_adherence(
    readings: Sequence[FrameReading],
    audio: np.ndarray | None,
    spans: Sequence[PromptSpan],
    fps: float,
    sample_rate: int,
    height: int,
    window_s: float = 1.0,
) -> Adherence:
    """Adherence per attribute over ``spans`` (frames of ``readings``; audio sample 0 = frame 0's time)."""
    n = max(round(window_s * fps), 3)
    hits = dict.fromkeys(ATTRIBUTES, 0)
    trials = dict.fromkeys(ATTRIBUTES, 0)
    windows = 0
    for span in spans:
        for a in range(span.start, span.end, n):
            b = min(a + n, span.end)
            if b - a < max(n // 2, 3):
                continue
            clip = None
            if audio is not None:
                s0, s1 = round(a / fps * sample_rate), round(b / fps * sample_rate)
                clip = audio[..., s0:s1]
            w = read_window(readings[a:b], clip, fps, sample_rate, height)
            for attr, (h, t) in score_window(span.state, w, audio is not None).items():
                hits[attr] += h
                trials[attr] += t
            windows += 1
    scores = {a: hits[a] / trials[a] if trials[a] else float("nan") for a in ATTRIBUTES}
    return Adherence(scores, hits, trials, windows)
