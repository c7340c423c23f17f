"""Steering latency: shown frames from the first frame of the steered segment until the scorers read what the new
prompt changed, for ``hold`` consecutive frames.

What is checked is what differs between the old and the new scene: each shape of the new scene that the old one
did not have exactly (its colour present, its kind, its direction of travel consistent with its motion), the
shape count when it changed, the background (colour and darkness) when it changed.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..world.spec import SceneState, ShapeState
from .tracks import headings, track
from .video import FrameReading

_HEADINGS_FOR = {"horizontal": {"left", "right"}, "vertical": {"up", "down"}, "still": {"still"}}


def _shape_ok(s: ShapeState, reading: FrameReading, heading: str | None) -> bool:
    got = reading.by_colour().get(s.colour)
    return got is not None and got.kind == s.kind and heading in _HEADINGS_FOR[s.motion]


def frames_matching(
    readings: Sequence[FrameReading], new: SceneState, old: SceneState, fps: float, height: int
) -> list[bool]:
    """Per frame: does it show what the change from ``old`` to ``new`` asks for?"""
    changed = [s for s in new.shapes if s not in old.shapes]
    heads = {s.colour: headings(track(list(readings), s.colour), fps, height) for s in changed}
    out = []
    for f, r in enumerate(readings):
        ok = all(_shape_ok(s, r, heads[s.colour][f]) for s in changed)
        if len(new.shapes) != len(old.shapes):
            ok &= len(r.shapes) == len(new.shapes)
        if (new.background.colour, new.background.dark) != (old.background.colour, old.background.dark):
            ok &= (r.background.colour, r.background.dark) == (new.background.colour, new.background.dark)
        out.append(ok)
    return out


def steering_latency(
    readings: Sequence[FrameReading],
    start: int,
    new: SceneState,
    old: SceneState,
    fps: float,
    height: int,
    hold: int = 3,
) -> int | None:
    """Frames from ``start`` (first shown frame under the new prompt) until the change holds for ``hold``
    frames; None if it never does within ``readings``."""
    ok = frames_matching(readings, new, old, fps, height)
    run = 0
    for f in range(start, len(ok)):
        run = run + 1 if ok[f] else 0
        if run >= hold:
            return f - hold + 1 - start
    return None
