"""A ClipSpec resolved against an aspect ratio: per-slot trajectories and attribute timelines."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .motion import Bounce, Trajectory, start_trajectory, turned
from .palette import COLOUR_NAMES, MOTIONS
from .spec import BackgroundSpec, ClipSpec, Darken, Enter, Recolour, SceneState, ShapeSpec, ShapeState, Turn

SPIN_VISIBLE = 0.2  # rad/s; slower spin is not called "spinning" in captions


def _value_at(changes: tuple[tuple[float, int], ...], t: np.ndarray) -> np.ndarray:
    """A step function given as ((time, value), ...) sorted by time, evaluated at ``t``."""
    times = np.array([c[0] for c in changes])
    values = np.array([c[1] for c in changes])
    idx = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(changes) - 1)
    return values[idx]


@dataclass(frozen=True)
class Scene:
    spec: ClipSpec
    aspect: float
    shapes: tuple[ShapeSpec, ...]  # per slot, as first shown
    appear: tuple[float, ...]  # per slot
    trajectories: tuple[Trajectory, ...]
    colours: tuple[tuple[tuple[float, int], ...], ...]  # per slot: (time, colour index) steps
    motions: tuple[tuple[tuple[float, int], ...], ...]  # per slot: (time, motion index) steps
    dark: tuple[tuple[float, int], ...]  # (time, 0/1) steps

    @classmethod
    def build(cls, spec: ClipSpec, aspect: float) -> Scene:
        shapes = list(spec.shapes)
        appear = [0.0] * len(shapes)
        trajs = [start_trajectory(i, s, 0.0, aspect) for i, s in enumerate(shapes)]
        colours = [[(0.0, COLOUR_NAMES.index(s.colour))] for s in shapes]
        motions = [[(0.0, MOTIONS.index(s.motion))] for s in shapes]
        dark = [(0.0, int(spec.background.dark))]
        for e in spec.events:
            if isinstance(e, Enter):
                slot = len(shapes)
                shapes.append(e.shape)
                appear.append(e.at)
                trajs.append(start_trajectory(slot, e.shape, e.at, aspect))
                colours.append([(0.0, COLOUR_NAMES.index(e.shape.colour))])
                motions.append([(0.0, MOTIONS.index(e.shape.motion))])
            elif isinstance(e, Recolour):
                colours[e.slot].append((e.at, COLOUR_NAMES.index(e.colour)))
            elif isinstance(e, Turn):
                trajs[e.slot] = turned(trajs[e.slot], e.at, e.motion, e.sign)
                motions[e.slot].append((e.at, MOTIONS.index(e.motion)))
            elif isinstance(e, Darken):
                dark.append((e.at, int(e.dark)))
        return cls(
            spec,
            aspect,
            tuple(shapes),
            tuple(appear),
            tuple(trajs),
            tuple(tuple(c) for c in colours),
            tuple(tuple(m) for m in motions),
            tuple(dark),
        )

    @property
    def slots(self) -> int:
        return len(self.shapes)

    def colour_index(self, slot: int, t: np.ndarray) -> np.ndarray:
        return _value_at(self.colours[slot], t)

    def motion_index(self, slot: int, t: np.ndarray) -> np.ndarray:
        return _value_at(self.motions[slot], t)

    def dark_at(self, t: np.ndarray) -> np.ndarray:
        return _value_at(self.dark, t).astype(bool)

    def angle(self, slot: int, t: np.ndarray) -> np.ndarray:
        s = self.shapes[slot]
        return s.angle + s.spin * (np.asarray(t) - self.appear[slot])

    def bounces_between(self, t_start: float, t_end: float) -> list[Bounce]:
        out = [b for tr in self.trajectories for b in tr.bounces_between(t_start, t_end)]
        return sorted(out, key=lambda b: (b.time, b.slot))

    def change_times(self) -> tuple[float, ...]:
        """Times at which the described scene changes (the caption in force changes)."""
        return tuple(sorted({e.at for e in self.spec.events}))

    def state_at(self, t: float) -> SceneState:
        ta = np.array([t])
        shapes = tuple(
            ShapeState(
                kind=self.shapes[i].kind,
                colour=COLOUR_NAMES[int(self.colour_index(i, ta)[0])],
                motion=MOTIONS[int(self.motion_index(i, ta)[0])],
                spinning=abs(self.shapes[i].spin) >= SPIN_VISIBLE and self.shapes[i].kind != "circle",
            )
            for i in range(self.slots)
            if t >= self.appear[i]
        )
        bg = self.spec.background
        return SceneState(shapes, BackgroundSpec(bg.colour, bg.style, bool(self.dark_at(ta)[0])))
