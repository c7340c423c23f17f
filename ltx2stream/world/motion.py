"""Analytic shape trajectories: straight lines folded between the walls (exact bounce times, any fps).

World units: the frame is ``aspect`` wide and 1 high (y down). A shape's centre stays within
``[r, aspect - r] x [r, 1 - r]`` (r = circumradius), so a shape never leaves the frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .spec import ShapeSpec


@dataclass(frozen=True)
class Piece:
    """From time ``t0``: unfolded position ``(x0, y0) + (vx, vy) * (t - t0)``, folded between the walls."""

    t0: float
    x0: float
    y0: float
    vx: float
    vy: float


@dataclass(frozen=True)
class Bounce:
    time: float  # seconds
    slot: int
    axis: str  # "x" or "y"
    wall: str  # "left", "right", "top", "bottom"


def _fold(u: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Unfolded coordinate -> (folded position, +1/-1 factor on the velocity)."""
    span = hi - lo
    if span <= 0:
        return np.full_like(u, lo), np.ones_like(u)
    s = np.mod(u - lo, 2 * span)
    back = s > span
    return lo + np.where(back, 2 * span - s, s), np.where(back, -1.0, 1.0)


@dataclass(frozen=True)
class Trajectory:
    slot: int
    appear: float  # seconds; absent before
    pieces: tuple[Piece, ...]
    bounds: tuple[float, float, float, float]  # x_lo, x_hi, y_lo, y_hi
    speed: float

    def _piece_index(self, t: np.ndarray) -> np.ndarray:
        starts = np.array([p.t0 for p in self.pieces])
        return np.clip(np.searchsorted(starts, t, side="right") - 1, 0, len(self.pieces) - 1)

    def state(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Times ``t`` (any shape) -> (x, y, vx, vy) at those times (before ``appear``: the start state)."""
        t = np.asarray(t, dtype=np.float64)
        idx = self._piece_index(t)
        x_lo, x_hi, y_lo, y_hi = self.bounds
        p = self.pieces
        t0 = np.array([q.t0 for q in p])[idx]
        dt = np.maximum(t - t0, 0.0)
        vx = np.array([q.vx for q in p])[idx]
        vy = np.array([q.vy for q in p])[idx]
        x, fx = _fold(np.array([q.x0 for q in p])[idx] + vx * dt, x_lo, x_hi)
        y, fy = _fold(np.array([q.y0 for q in p])[idx] + vy * dt, y_lo, y_hi)
        return x, y, vx * fx, vy * fy

    def present(self, t: np.ndarray) -> np.ndarray:
        return np.asarray(t) >= self.appear

    def bounces(self) -> list[Bounce]:
        """Every wall contact, up to the end of the last piece's first 10 000 s (pieces run forever)."""
        return self.bounces_between(self.appear, self.appear + 1e4)

    def bounces_between(self, t_start: float, t_end: float) -> list[Bounce]:
        out: list[Bounce] = []
        x_lo, x_hi, y_lo, y_hi = self.bounds
        for i, q in enumerate(self.pieces):
            p_end = self.pieces[i + 1].t0 if i + 1 < len(self.pieces) else np.inf
            a, b = max(q.t0, t_start), min(p_end, t_end)
            if a >= b:
                continue
            for axis, u0, v, lo, hi, walls in (
                ("x", q.x0, q.vx, x_lo, x_hi, ("left", "right")),
                ("y", q.y0, q.vy, y_lo, y_hi, ("top", "bottom")),
            ):
                span = hi - lo
                if v == 0.0 or span <= 0:
                    continue
                # Walls sit at unfolded lo + n * span; even n is the low wall, odd n the high one.
                ua, ub = u0 + v * (a - q.t0), u0 + v * (b - q.t0)
                n_lo = int(np.floor((min(ua, ub) - lo) / span)) + 1
                n_hi = int(np.ceil((max(ua, ub) - lo) / span)) - 1
                for n in range(n_lo, n_hi + 1):
                    t = q.t0 + (lo + n * span - u0) / v
                    if a < t < b:
                        out.append(Bounce(float(t), self.slot, axis, walls[n % 2]))
        return sorted(out, key=lambda bb: bb.time)


def velocity_for(motion: str, speed: float, sign: int) -> tuple[float, float]:
    if motion == "horizontal":
        return sign * speed, 0.0
    if motion == "vertical":
        return 0.0, sign * speed
    return 0.0, 0.0


def start_trajectory(slot: int, shape: ShapeSpec, appear: float, aspect: float) -> Trajectory:
    r = min(shape.radius, 0.5 * min(aspect, 1.0) - 1e-3)
    bounds = (r, aspect - r, r, 1.0 - r)
    x0 = bounds[0] + shape.x * (bounds[1] - bounds[0])
    y0 = bounds[2] + shape.y * (bounds[3] - bounds[2])
    vx, vy = velocity_for(shape.motion, shape.speed, shape.sign)
    return Trajectory(slot, appear, (Piece(appear, x0, y0, vx, vy),), bounds, shape.speed)


def turned(traj: Trajectory, at: float, motion: str, sign: int) -> Trajectory:
    """The trajectory after switching to ``motion`` at time ``at`` (continuous position)."""
    x, y, _, _ = traj.state(np.array([at]))
    vx, vy = velocity_for(motion, traj.speed, sign)
    kept = tuple(p for p in traj.pieces if p.t0 < at)
    return Trajectory(
        traj.slot, traj.appear, (*kept, Piece(at, float(x[0]), float(y[0]), vx, vy)), traj.bounds, traj.speed
    )
