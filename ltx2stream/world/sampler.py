"""Random clip specs from a seed, and steered clips (one announced scene change at a chosen frame)."""

from __future__ import annotations

import numpy as np

from .clip import DEFAULT_SAMPLE_RATE, RenderedClip, render_clip
from .palette import BACKGROUND_NAMES, BACKGROUND_STYLES, COLOUR_NAMES, SHAPE_KINDS
from .scene import Scene
from .spec import BackgroundSpec, ClipSpec, Darken, Enter, Event, Recolour, ShapeSpec, Turn

CHANGES = ("recolour", "enter", "darken", "turn")
# what a seed draws: bump when the specs the samplers return for a seed change (shape sizes, lanes, ...), so that
# caches of clips rendered from seeds (the pocket trainer's latent cache) see that their entries are stale.
# 2: shapes of 0.17-0.23 frame heights (were 0.09-0.14), at most two, two shapes in the two wall lanes (docs/quality.md)
SPEC_VERSION = 2
MAX_SHAPES = 2
RADII = (0.17, 0.23)  # circumradius range, frame heights: a shape spans more than one 32-px latent cell
# lanes as fractions of a centre's range [r, 1 - r]: the two walls and the middle. Two shapes take the two walls,
# so parallel movers of the largest radius stay apart (1 - 4 * 0.23 > 0).
_LANES = (0.0, 0.5, 1.0)


def _motion(rng: np.random.Generator) -> str:
    return str(rng.choice(["horizontal", "vertical", "still"], p=[0.4, 0.4, 0.2]))


def random_shape(rng: np.random.Generator, colour: str, lane: int) -> ShapeSpec:
    """A shape in ``lane`` (0..2): horizontal movers keep their row, vertical movers their column."""
    motion = _motion(rng)
    along = float(rng.uniform(0.1, 0.9))
    x, y = (along, _LANES[lane]) if motion == "horizontal" else (_LANES[lane], along)
    spin = 0.0 if rng.random() < 0.5 else float(rng.choice([-1, 1]) * rng.uniform(0.6, 2.0))
    return ShapeSpec(
        kind=str(rng.choice(SHAPE_KINDS)),
        colour=colour,
        motion=motion,
        x=x,
        y=y,
        radius=float(rng.uniform(*RADII)),
        speed=float(rng.uniform(0.25, 0.55)),
        sign=int(rng.choice([-1, 1])),
        spin=spin,
        angle=float(rng.uniform(0, 2 * np.pi)),
    )


def _free_colour(rng: np.random.Generator, used: list[str]) -> str:
    return str(rng.choice([c for c in COLOUR_NAMES if c not in used]))


def _event(
    kind: str, at: float, rng: np.random.Generator, colours: list[str], motions: list[str], dark: bool
) -> Event:
    if kind == "recolour":
        slot = int(rng.integers(len(colours)))
        return Recolour(at, slot, _free_colour(rng, colours))
    if kind == "enter":
        return Enter(at, random_shape(rng, _free_colour(rng, colours), int(rng.integers(3))))
    if kind == "darken":
        return Darken(at, not dark)
    slot = int(rng.integers(len(motions)))
    new = str(rng.choice([m for m in ("horizontal", "vertical", "still") if m != motions[slot]]))
    return Turn(at, slot, new, int(rng.choice([-1, 1])))


def _clearance(shapes: tuple[ShapeSpec, ...], events: tuple[Event, ...], entering: Enter) -> float:
    """Smallest gap (frame heights) between the entering shape and the others over its first second."""
    scene = Scene.build(ClipSpec(shapes, BackgroundSpec(), (*events, entering)), 1.0)
    t = entering.at + np.linspace(0.0, 1.0, 9)
    new = scene.trajectories[-1]
    nx, ny, _, _ = new.state(t)
    gaps = [
        np.min(np.hypot(nx - ox, ny - oy)) - new.bounds[2] - tr.bounds[2]
        for tr in scene.trajectories[:-1]
        for ox, oy, _, _ in [tr.state(t)]
    ]
    return float(min(gaps))


def place_entering(
    rng: np.random.Generator, shapes: tuple[ShapeSpec, ...], events: tuple[Event, ...], ev: Enter
) -> Enter:
    """Among a few random placements of the entering shape, the one farthest from the others."""
    best, best_gap = ev, _clearance(shapes, events, ev)
    for _ in range(8):
        cand = Enter(ev.at, random_shape(rng, ev.shape.colour, int(rng.integers(3))))
        gap = _clearance(shapes, events, cand)
        if gap > best_gap:
            best, best_gap = cand, gap
    return best


def sample_clip_spec(
    seed: int,
    duration_s: float = 10.0,
    max_events: int = 3,
    changes: tuple[str, ...] = CHANGES,
    max_shapes: int = 2,
) -> ClipSpec:
    """A random scene of 1..max_shapes shapes with 0..max_events changes at least 1 s apart inside the clip."""
    bad = [c for c in changes if c not in CHANGES]
    if bad:
        raise ValueError(f"unknown change kinds {bad}; known: {CHANGES}")
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, min(max_shapes, MAX_SHAPES) + 1))
    lanes = [int(v) for v in rng.permutation([0, 2])] if n == 2 else [int(rng.integers(3))]
    colours = [str(c) for c in rng.choice(COLOUR_NAMES, size=n, replace=False)]
    shapes = [random_shape(rng, c, lane) for c, lane in zip(colours, lanes, strict=True)]
    bg = BackgroundSpec(
        str(rng.choice(BACKGROUND_NAMES)), str(rng.choice(BACKGROUND_STYLES)), bool(rng.random() < 0.15)
    )
    n_events = int(rng.integers(0, max_events + 1)) if duration_s > 2.5 else 0
    slots = max(int((0.85 - 0.15) * duration_s), 1)
    times = sorted(
        0.15 * duration_s + rng.choice(slots, size=min(n_events, slots), replace=False).astype(float)
    )
    events: list[Event] = []
    motions = [s.motion for s in shapes]
    dark = bg.dark
    for at in times:
        options = [c for c in changes if c != "enter" or len(colours) < MAX_SHAPES]
        if not options:  # only entries asked for and the scene is full
            break
        ev = _event(str(rng.choice(options)), float(at), rng, colours, motions, dark)
        if isinstance(ev, Enter):
            ev = place_entering(rng, tuple(shapes), tuple(events), ev)
        events.append(ev)
        if isinstance(ev, Recolour):
            colours[ev.slot] = ev.colour
        elif isinstance(ev, Enter):
            colours.append(ev.shape.colour)
            motions.append(ev.shape.motion)
        elif isinstance(ev, Darken):
            dark = ev.dark
        elif isinstance(ev, Turn):
            motions[ev.slot] = ev.motion
    return ClipSpec(tuple(shapes), bg, tuple(events), seed)


def steered_clip_spec(seed: int, change_at_s: float, change: str | None = None) -> ClipSpec:
    """A random scene with exactly one change (``change`` or a random kind) at ``change_at_s`` seconds."""
    rng = np.random.default_rng([seed, 1])
    kind = change if change is not None else str(rng.choice(CHANGES))
    if kind not in CHANGES:
        raise ValueError(f"unknown change {kind!r}; known: {CHANGES}")
    # a shape enters only where there is room for it (at most MAX_SHAPES)
    base = sample_clip_spec(seed, duration_s=2.0, max_events=0, max_shapes=MAX_SHAPES - (kind == "enter"))
    colours = [s.colour for s in base.shapes]
    ev = _event(kind, change_at_s, rng, colours, [s.motion for s in base.shapes], base.background.dark)
    if isinstance(ev, Enter):
        ev = place_entering(rng, base.shapes, (), ev)
    return ClipSpec(base.shapes, base.background, (ev,), seed)


def make_steered_clip(
    seed: int,
    frames: int,
    height: int,
    width: int,
    fps: float,
    change_frame: int,
    change: str | None = None,
    *,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    channels: int = 1,
    vocabulary: str = "train",
) -> RenderedClip:
    """A clip whose scene changes exactly at ``change_frame``; ``captions[-1]`` starts there and announces it."""
    if not 0 < change_frame < frames:
        raise ValueError(f"change_frame {change_frame} must be inside 1..{frames - 1}")
    spec = steered_clip_spec(seed, change_frame / fps, change)
    return render_clip(
        spec, frames, height, width, fps, sample_rate=sample_rate, channels=channels, vocabulary=vocabulary
    )
