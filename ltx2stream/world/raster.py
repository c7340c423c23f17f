"""Pixels: anti-aliased shapes (coverage from a signed distance) over plain or gradient backgrounds."""

from __future__ import annotations

import numpy as np

from .palette import BACKGROUND_COLOURS, DARK_FACTOR, GRADIENT, SHAPE_COLOURS
from .scene import Scene

_SHAPE_RGB = np.array(list(SHAPE_COLOURS.values()), dtype=np.float32)


def background_rows(colour: str, style: str, dark: bool, height: int) -> np.ndarray:
    """shape = (H, 3) float32 RGB per row (a background is constant along each row)."""
    base = np.array(BACKGROUND_COLOURS[colour], dtype=np.float32) * (DARK_FACTOR if dark else 1.0)
    if style == "gradient":
        ramp = 1.0 + GRADIENT * (1.0 - 2.0 * (np.arange(height, dtype=np.float32) + 0.5) / height)
    else:
        ramp = np.ones(height, dtype=np.float32)
    return np.clip(ramp[:, None] * base[None, :], 0.0, 255.0)


def polygon(kind: str, cx: float, cy: float, r: float, angle: float) -> np.ndarray | None:
    """Vertices (N, 2) in pixels, counter-clockwise on screen order irrelevant; None for a circle."""
    if kind == "circle":
        return None
    n, phase = (4, np.pi / 4) if kind == "square" else (3, -np.pi / 2)
    a = angle + phase + 2 * np.pi * np.arange(n) / n
    return np.stack([cx + r * np.cos(a), cy + r * np.sin(a)], axis=1)


def coverage(
    kind: str, cx: float, cy: float, r: float, angle: float, xs: np.ndarray, ys: np.ndarray
) -> np.ndarray:
    """Fraction of each pixel (centres ``xs`` [w], ``ys`` [h]) covered by the shape; shape = (h, w)."""
    px, py = xs[None, :], ys[:, None]
    verts = polygon(kind, cx, cy, r, angle)
    if verts is None:
        sd = np.hypot(px - cx, py - cy) - r
    else:
        sd = np.full((len(ys), len(xs)), -np.inf, dtype=np.float64)
        centre = verts.mean(axis=0)
        for k in range(len(verts)):
            a, b = verts[k], verts[(k + 1) % len(verts)]
            nx, ny = b[1] - a[1], a[0] - b[0]
            norm = np.hypot(nx, ny)
            nx, ny = nx / norm, ny / norm
            if (centre[0] - a[0]) * nx + (centre[1] - a[1]) * ny > 0:  # make the normal point outward
                nx, ny = -nx, -ny
            sd = np.maximum(sd, (px - a[0]) * nx + (py - a[1]) * ny)
    return np.clip(0.5 - sd, 0.0, 1.0).astype(np.float32)


def render_frames(scene: Scene, times: np.ndarray, height: int, width: int) -> np.ndarray:
    """shape = (F, H, W, 3) uint8 for frame times ``times`` [F] in seconds."""
    bg = scene.spec.background
    dark = scene.dark_at(times)
    rows = {d: background_rows(bg.colour, bg.style, d, height) for d in (False, True)}
    out = np.empty((len(times), height, width, 3), dtype=np.uint8)
    xs_all = np.arange(width, dtype=np.float64) + 0.5
    ys_all = np.arange(height, dtype=np.float64) + 0.5
    states = [tr.state(times) for tr in scene.trajectories]
    for f, t in enumerate(times):
        img = np.repeat(rows[bool(dark[f])][:, None, :], width, axis=1)
        for slot, tr in enumerate(scene.trajectories):
            if t < scene.appear[slot]:
                continue
            cx, cy = states[slot][0][f] * height, states[slot][1][f] * height
            r = tr.bounds[2] * height
            x0, x1 = max(int(cx - r - 2), 0), min(int(cx + r + 3), width)
            y0, y1 = max(int(cy - r - 2), 0), min(int(cy + r + 3), height)
            if x0 >= x1 or y0 >= y1:
                continue
            angle = float(scene.angle(slot, np.array(t)))
            cov = coverage(scene.shapes[slot].kind, cx, cy, r, angle, xs_all[x0:x1], ys_all[y0:y1])[..., None]
            rgb = _SHAPE_RGB[int(scene.colour_index(slot, np.array([t]))[0])]
            patch = img[y0:y1, x0:x1]
            img[y0:y1, x0:x1] = patch * (1.0 - cov) + rgb * cov
        out[f] = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return out
