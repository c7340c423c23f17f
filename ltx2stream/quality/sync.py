"""A/V alignment: the offset between a visible bounce and its click.

Visible bounces come from the centroid tracks (tracks.visual_bounces, sub-frame); clicks from the waveform
(audio.clicks). Each visible bounce is paired with the nearest click within ``max_offset_s``;
offset = median(click time - bounce time) over the pairs (positive: the sound is late).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .audio import clicks
from .tracks import track, visual_bounces
from .video import FrameReading


@dataclass(frozen=True)
class AvOffset:
    offset_s: float  # NaN without pairs
    offset_frames: float
    pairs: int
    visual: tuple[float, ...]  # bounce times (s)
    audio: tuple[float, ...]  # click times (s)


def bounce_times(readings: Sequence[FrameReading], fps: float, height: int) -> np.ndarray:
    """Visible bounce times in seconds for every shape colour seen in at least 5 frames; shape = (n,)."""
    seen = Counter(c for r in readings for c in r.by_colour())
    times = [visual_bounces(track(list(readings), c), fps, height) for c, n in seen.items() if n >= 5]
    return np.sort(np.concatenate(times)) / fps if times else np.zeros(0)


def av_offset(
    readings: Sequence[FrameReading],
    audio: np.ndarray,
    fps: float,
    sample_rate: int,
    height: int,
    max_offset_s: float = 0.25,
) -> AvOffset:
    vis = bounce_times(readings, fps, height)
    aud = clicks(audio, sample_rate)
    diffs = []
    for t in vis:
        if len(aud) == 0:
            break
        d = aud - t
        k = int(np.argmin(np.abs(d)))
        if abs(d[k]) <= max_offset_s:
            diffs.append(float(d[k]))
    off = float(np.median(diffs)) if diffs else float("nan")
    return AvOffset(off, off * fps, len(diffs), tuple(float(v) for v in vis), tuple(float(v) for v in aud))
