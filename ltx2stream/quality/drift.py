"""Drift: per-segment picture and sound statistics and their least-squares slope over the segment index.

Per segment j (its shown frames and its audio): mean R, G, B and luma (0..255, luma = 0.299 R + 0.587 G +
0.114 B), saturation (mean of (max - min) / max over pixels, HSV), contrast (standard deviation of luma) and
loudness (RMS in dB full scale). For each statistic y_j over j = 0..n-1:
  slope = sum (j - jbar)(y_j - ybar) / sum (j - jbar)^2,  stderr = sqrt(sum r_j^2 / (n - 2) / sum (j - jbar)^2),
  t = slope / stderr (|t| < 2: no trend distinguishable from noise).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .audio import loudness_db

STATS = ("mean_r", "mean_g", "mean_b", "luma", "saturation", "contrast", "loudness_db")


@dataclass(frozen=True)
class Trend:
    slope: float  # per segment
    stderr: float
    t: float
    values: tuple[float, ...]


def frame_stats(video: np.ndarray) -> dict[str, float]:
    """Statistics of a stack of frames (F, H, W, 3) uint8."""
    v = video.astype(np.float32)
    luma = 0.299 * v[..., 0] + 0.587 * v[..., 1] + 0.114 * v[..., 2]
    mx, mn = v.max(axis=-1), v.min(axis=-1)
    sat = np.where(mx > 0, (mx - mn) / np.maximum(mx, 1e-6), 0.0)
    return {
        "mean_r": float(v[..., 0].mean()),
        "mean_g": float(v[..., 1].mean()),
        "mean_b": float(v[..., 2].mean()),
        "luma": float(luma.mean()),
        "saturation": float(sat.mean()),
        "contrast": float(luma.std()),
    }


def trend(values: Sequence[float]) -> Trend:
    y = np.asarray(values, dtype=np.float64)
    n = len(y)
    if n < 2:
        return Trend(float("nan"), float("nan"), float("nan"), tuple(y))
    j = np.arange(n, dtype=np.float64)
    sxx = float(((j - j.mean()) ** 2).sum())
    slope = float(((j - j.mean()) * (y - y.mean())).sum() / sxx)
    if n < 3:
        return Trend(slope, float("nan"), float("nan"), tuple(float(v) for v in y))
    resid = y - (y.mean() + slope * (j - j.mean()))
    stderr = float(np.sqrt((resid**2).sum() / (n - 2) / sxx))
    t = slope / stderr if stderr > 0 else (0.0 if slope == 0 else float("inf") * np.sign(slope))
    return Trend(slope, stderr, float(t), tuple(float(v) for v in y))


def drift(
    video: np.ndarray,
    boundaries: Sequence[int],
    audio: np.ndarray | None = None,
    fps: float = 24.0,
    sample_rate: int = 16000,
) -> dict[str, Trend]:
    """Trends of STATS over the segments that ``boundaries`` (first frames of segments 1..) cut ``video`` into."""
    edges = [0, *sorted(set(boundaries)), len(video)]
    per: dict[str, list[float]] = {k: [] for k in STATS}
    for a, b in itertools.pairwise(edges):
        if b <= a:
            continue
        for k, v in frame_stats(video[a:b]).items():
            per[k].append(v)
        if audio is not None:
            s0, s1 = round(a / fps * sample_rate), round(b / fps * sample_rate)
            per["loudness_db"].append(loudness_db(audio[..., s0:s1]))
    return {k: trend(v) for k, v in per.items() if v}
