"""Reading a frame from its pixels: the background (colour, dark, gradient) and the shapes (colour, kind, where).

No model weights: the background is the per-row median (the world's backgrounds are constant along rows), a
shape is a set of pixels close to one of the world's shape colours, its kind follows from how far its farthest
pixel lies from its centroid compared with the radius of a disc of the same area (circle 1.0, square 1.25,
triangle 1.55).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..world.palette import BACKGROUND_NAMES, COLOUR_NAMES, SHAPE_COLOURS
from ..world.raster import background_rows

FOREGROUND_DISTANCE = 40.0  # max |RGB - background| for a pixel to count as foreground
COLOUR_DISTANCE = 90.0  # a foreground pixel belongs to the nearest shape colour within this RGB distance
CORE_DISTANCE = 55.0  # a shape has pixels this close to its colour (edge blends of other shapes do not)
MIN_AREA_FRACTION = 0.003  # a shape covers at least this fraction of the frame
KIND_THRESHOLDS = (1.12, 1.36)  # circle < 1.12 <= square < 1.36 <= triangle

_SHAPE_RGB = np.array(list(SHAPE_COLOURS.values()), dtype=np.float32)


@dataclass(frozen=True)
class ShapeReading:
    colour: str
    kind: str
    x: float  # centroid, pixels
    y: float
    area: float  # pixels
    spread: float  # (max distance + 0.5) / sqrt(area / pi)


@dataclass(frozen=True)
class BackgroundReading:
    colour: str
    dark: bool
    gradient: bool
    mean_rgb: tuple[float, float, float]


@dataclass(frozen=True)
class FrameReading:
    shapes: tuple[ShapeReading, ...]
    background: BackgroundReading

    def by_colour(self) -> dict[str, ShapeReading]:
        return {s.colour: s for s in self.shapes}


def _background_table(height: int) -> tuple[list[tuple[str, bool, bool]], np.ndarray]:
    keys, rows = [], []
    for name in BACKGROUND_NAMES:
        for dark in (False, True):
            for style in ("plain", "gradient"):
                keys.append((name, dark, style == "gradient"))
                rows.append(background_rows(name, style, dark, height))
    return keys, np.stack(rows)  # (K, H, 3)


_TABLES: dict[int, tuple[list[tuple[str, bool, bool]], np.ndarray]] = {}


def read_background(frame: np.ndarray) -> tuple[BackgroundReading, np.ndarray]:
    """frame (H, W, 3) uint8 -> (reading, per-row background estimate (H, 3) float32)."""
    rows = np.median(frame.astype(np.float32), axis=1)
    h = frame.shape[0]
    if h not in _TABLES:
        _TABLES[h] = _background_table(h)
    keys, table = _TABLES[h]
    k = int(np.argmin(np.abs(table - rows[None]).mean(axis=(1, 2))))
    name, dark, gradient = keys[k]
    mean = rows.mean(axis=0)
    return BackgroundReading(name, dark, gradient, (float(mean[0]), float(mean[1]), float(mean[2]))), rows


def classify_kind(spread: float) -> str:
    lo, hi = KIND_THRESHOLDS
    return "circle" if spread < lo else "square" if spread < hi else "triangle"


def read_shapes(frame: np.ndarray, bg_rows: np.ndarray) -> tuple[ShapeReading, ...]:
    """Shapes in ``frame`` (H, W, 3), one per shape colour that covers enough pixels."""
    img = frame.astype(np.float32)
    h, w, _ = img.shape
    fg = np.abs(img - bg_rows[:, None, :]).max(axis=2) > FOREGROUND_DISTANCE
    if not fg.any():
        return ()
    ys, xs = np.nonzero(fg)
    px = img[ys, xs]  # (P, 3)
    dist = np.linalg.norm(px[:, None, :] - _SHAPE_RGB[None], axis=2)  # (P, C)
    nearest = dist.argmin(axis=1)
    ok = dist[np.arange(len(px)), nearest] < COLOUR_DISTANCE
    best = dist[np.arange(len(px)), nearest]
    min_area = max(MIN_AREA_FRACTION * h * w, 6.0)
    out = []
    for c in np.unique(nearest[ok]):
        # A shape needs a core of pixels close to its colour; edge blends of other shapes have none.
        core = (nearest == c) & (best < CORE_DISTANCE)
        if core.sum() < 0.5 * min_area:
            continue
        mx, my = np.median(xs[core]), np.median(ys[core])
        reach = 2.5 * np.sqrt(core.sum() / np.pi) + 2.0
        sel = ok & (nearest == c) & ((xs - mx) ** 2 + (ys - my) ** 2 <= reach**2)
        area = float(sel.sum())
        if area < min_area:
            continue
        cx, cy = xs[sel].mean(), ys[sel].mean()
        far = float(np.sqrt(((xs[sel] - cx) ** 2 + (ys[sel] - cy) ** 2).max()))
        spread = (far + 0.5) / float(np.sqrt(area / np.pi))
        out.append(
            ShapeReading(COLOUR_NAMES[int(c)], classify_kind(spread), float(cx), float(cy), area, spread)
        )
    return tuple(out)


def read_frame(frame: np.ndarray) -> FrameReading:
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"a frame is (H, W, 3); got {frame.shape}")
    bg, rows = read_background(frame)
    return FrameReading(read_shapes(frame, rows), bg)


def read_video(video: np.ndarray) -> tuple[FrameReading, ...]:
    """video (F, H, W, 3) uint8 -> one reading per frame."""
    if video.ndim != 4 or video.shape[3] != 3:
        raise ValueError(f"a video is (F, H, W, 3); got {video.shape}")
    return tuple(read_frame(f) for f in video)
