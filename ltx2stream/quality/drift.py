"""Drift: per-segment picture and sound statistics and their least-squares slope over the segment index.

Per segment j (its shown frames and its audio): mean R, G, B and luma (0..255, luma = 0.299 R + 0.587 G +
0.114 B), saturation (mean of (max - min) / max over pixels, HSV), contrast (standard deviation of luma) and
loudness (RMS in dB full scale). For each statistic y_j over j = 0..n-1:
  slope = sum (j - jbar)(y_j - ybar) / sum (j - jbar)^2,  stderr = sqrt(sum r_j^2 / (n - 2) / sum (j - jbar)^2),
  t = slope / stderr (|t| < 2: no trend distinguishable from noise).
A steered session changes its picture on purpose at the steer: with ``step_at`` (the first segment under the new
prompt) the fit is y_j = a + slope j + c [j >= step_at], least squares over the three terms, so the wanted step
is its own term and the slope (with its standard error on n - 3 degrees of freedom) is the drift under each
prompt; without it a perfect rendering of a steered script reads |t| ~ 12 (session 15, docs/quality.md "Drift").
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


def trend(values: Sequence[float], step_at: int | None = None) -> Trend:
    """Least-squares slope of ``values`` over their index, with a step term from index ``step_at`` when it
    splits them (module docstring)."""
    y = np.asarray(values, dtype=np.float64)
    n = len(y)
    if n < 2:
        return Trend(float("nan"), float("nan"), float("nan"), tuple(y))
    j = np.arange(n, dtype=np.float64)
    cols = [np.ones(n), j]
    if step_at is not None and 2 <= step_at <= n - 2:
        cols.append((j >= step_at).astype(np.float64))
    x = np.stack(cols, axis=1)
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    slope = float(beta[1])
    dof = n - x.shape[1]
    if dof < 1:
        return Trend(slope, float("nan"), float("nan"), tuple(float(v) for v in y))
    resid = y - x @ beta
    var = float(np.linalg.inv(x.T @ x)[1, 1]) * float((resid**2).sum()) / dof
    stderr = float(np.sqrt(var))
    if stderr > 1e-12:
        t = slope / stderr
    else:  # an exact fit (rounding only): a flat series has no trend, a perfect ramp an infinite one
        t = 0.0 if abs(slope) < 1e-9 else float("inf") * float(np.sign(slope))
    return Trend(slope, stderr, float(t), tuple(float(v) for v in y))


def drift(
    video: np.ndarray,
    boundaries: Sequence[int],
    audio: np.ndarray | None = None,
    fps: float = 24.0,
    sample_rate: int = 16000,
    steer_segment: int | None = None,
) -> dict[str, Trend]:
    """Trends of STATS over the segments that ``boundaries`` (first frames of segments 1..) cut ``video`` into;
    ``steer_segment``: the first segment under a changed prompt (its step is fitted apart from the slope)."""
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
    return {k: trend(v, steer_segment) for k, v in per.items() if v}
