"""Motion from pixels: a centroid track per shape colour, the direction of travel per frame, the captioned motion
per span, and the times at which a shape visibly bounces (sub-frame, from the two straight pieces around it)."""

from __future__ import annotations

import numpy as np

from .video import FrameReading

STILL_SPEED = 0.08  # frame heights per second; slower is "still"
AXIS_RATIO = 2.0  # travel along one axis at least this many times the other names the motion


def track(readings: tuple[FrameReading, ...] | list[FrameReading], colour: str) -> np.ndarray:
    """Centroid (x, y) per frame for shapes of ``colour`` (NaN where absent); shape = (F, 2)."""
    out = np.full((len(readings), 2), np.nan)
    for f, r in enumerate(readings):
        s = r.by_colour().get(colour)
        if s is not None:
            out[f] = (s.x, s.y)
    return out


def motion_of(xy: np.ndarray, fps: float, height: int) -> str | None:
    """The captioned motion of a track (F, 2): "horizontal", "vertical", "still"; None if too few points."""
    d = np.diff(xy, axis=0)
    d = d[~np.isnan(d).any(axis=1)]
    if len(d) < 2:
        return None
    travel = np.abs(d).sum(axis=0)  # pixels along x and y
    speed = float(np.hypot(*travel)) / len(d) * fps / height
    if speed < STILL_SPEED:
        return "still"
    if travel[0] >= AXIS_RATIO * travel[1]:
        return "horizontal"
    if travel[1] >= AXIS_RATIO * travel[0]:
        return "vertical"
    return "diagonal"


def headings(xy: np.ndarray, fps: float, height: int) -> list[str | None]:
    """Direction of travel per frame (left/right/up/down/still; None where unknown), from frames f-1 .. f+1
    (f .. f+1 or f-1 .. f where the shape is absent on one side)."""
    out: list[str | None] = []
    valid = ~np.isnan(xy).any(axis=1)
    for f in range(len(xy)):
        lo = f - 1 if f > 0 and valid[f - 1] else f
        hi = f + 1 if f + 1 < len(xy) and valid[f + 1] else f
        steps = hi - lo
        if steps == 0 or not valid[lo] or not valid[hi]:
            out.append(None)
            continue
        a, b = xy[lo], xy[hi]
        dx, dy = (b - a) / steps
        if np.hypot(dx, dy) * fps / height < STILL_SPEED:
            out.append("still")
        elif abs(dx) >= abs(dy):
            out.append("right" if dx > 0 else "left")
        else:
            out.append("down" if dy > 0 else "up")
    return out


def visual_bounces(xy: np.ndarray, fps: float, height: int) -> np.ndarray:
    """Fractional frame indices at which the track reverses along an axis; shape = (n,).

    For a reversal inside (f-1, f+1) with speed v on both sides, the straight pieces through f-1 and f+1 meet at
    f + s (p[f+1] - p[f-1]) / (2 v) (p the position along the axis, s the sign of the motion before, v the mean
    of the clean steps |p[f-1] - p[f-2]| and |p[f+2] - p[f+1]|).
    """
    times: list[float] = []
    min_step = STILL_SPEED * height / fps
    for axis in (0, 1):
        p = xy[:, axis]
        for f in range(2, len(p) - 2):
            w = p[f - 2 : f + 3]
            if np.isnan(w).any():
                continue
            before, after = p[f - 1] - p[f - 2], p[f + 2] - p[f + 1]  # clean steps on each side
            v = 0.5 * (abs(before) + abs(after))
            if v < min_step or np.sign(before) != -np.sign(after) or min(abs(before), abs(after)) < 0.8 * v:
                continue
            tb = f + np.sign(before) * (p[f + 1] - p[f - 1]) / (2 * v)
            if f - 1 <= tb <= f + 1:
                times.append(float(tb))
    return _merge(sorted(times))


def _merge(times: list[float]) -> np.ndarray:
    """One estimate per bounce: estimates less than a frame apart are averaged."""
    groups: list[list[float]] = []
    for t in times:
        if groups and t - groups[-1][-1] < 1.0:
            groups[-1].append(t)
        else:
            groups.append([t])
    return np.array([float(np.mean(g)) for g in groups])
