"""What a clip is made of: typed, frozen descriptions of shapes, backgrounds and timed scene changes.

Units: time in seconds; positions as fractions of the frame (0..1 on each axis, y down); sizes and speeds in
frame heights (per second), so a clip looks the same at any resolution and fps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .palette import BACKGROUND_NAMES, BACKGROUND_STYLES, COLOUR_NAMES, MOTIONS, SHAPE_KINDS


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


@dataclass(frozen=True)
class ShapeSpec:
    kind: str  # one of SHAPE_KINDS
    colour: str  # one of COLOUR_NAMES
    motion: str  # one of MOTIONS: "horizontal" / "vertical" bounce between walls, "still" stays put
    x: float = 0.5  # start centre, fraction of the width
    y: float = 0.5  # start centre, fraction of the height
    radius: float = 0.12  # circumradius, in frame heights
    speed: float = 0.4  # frame heights per second (ignored when still)
    sign: int = 1  # +1 moves right/down first, -1 left/up
    spin: float = 0.0  # radians per second (visible on squares and triangles)
    angle: float = 0.0  # start rotation, radians

    def __post_init__(self) -> None:
        _check(self.kind in SHAPE_KINDS, f"shape kind {self.kind!r} not in {SHAPE_KINDS}")
        _check(self.colour in COLOUR_NAMES, f"shape colour {self.colour!r} not in {COLOUR_NAMES}")
        _check(self.motion in MOTIONS, f"motion {self.motion!r} not in {MOTIONS}")
        _check(0.02 <= self.radius <= 0.3, f"radius {self.radius} outside [0.02, 0.3] frame heights")
        _check(0.0 <= self.x <= 1.0 and 0.0 <= self.y <= 1.0, f"start ({self.x}, {self.y}) outside the frame")
        _check(self.speed >= 0.0, f"speed {self.speed} < 0")
        _check(self.sign in (-1, 1), f"sign {self.sign} not in (-1, 1)")


@dataclass(frozen=True)
class BackgroundSpec:
    colour: str = "pale blue"  # one of BACKGROUND_NAMES
    style: str = "plain"  # "plain" or "gradient" (lighter at the top)
    dark: bool = False

    def __post_init__(self) -> None:
        _check(self.colour in BACKGROUND_NAMES, f"background {self.colour!r} not in {BACKGROUND_NAMES}")
        _check(self.style in BACKGROUND_STYLES, f"background style {self.style!r} not in {BACKGROUND_STYLES}")


@dataclass(frozen=True)
class Recolour:
    """Shape ``slot`` takes ``colour`` from time ``at``."""

    at: float
    slot: int
    colour: str


@dataclass(frozen=True)
class Enter:
    """``shape`` appears at time ``at`` (its x/y are where it appears); it takes the next slot."""

    at: float
    shape: ShapeSpec


@dataclass(frozen=True)
class Darken:
    """The background darkens (``dark=True``) or lightens again (``dark=False``) at time ``at``."""

    at: float
    dark: bool = True


@dataclass(frozen=True)
class Turn:
    """Shape ``slot`` switches to ``motion`` at time ``at`` (same speed; ``sign`` for the new axis)."""

    at: float
    slot: int
    motion: str
    sign: int = 1


Event = Recolour | Enter | Darken | Turn


@dataclass(frozen=True)
class ClipSpec:
    """A scene and its timed changes. ``seed`` fixes click noise and caption wording."""

    shapes: tuple[ShapeSpec, ...]
    background: BackgroundSpec = field(default_factory=BackgroundSpec)
    events: tuple[Event, ...] = ()
    seed: int = 0

    def __post_init__(self) -> None:
        _check(len(self.shapes) >= 1, "a clip needs at least one shape at time 0")
        times = [e.at for e in self.events]
        _check(times == sorted(times), f"events must be in time order; got times {times}")
        _check(all(t >= 0.0 for t in times), f"event times must be >= 0; got {times}")
        slots = [s.colour for s in self.shapes]
        _check(len(set(slots)) == len(slots), f"shapes in a scene need distinct colours; got {slots}")
        for e in self.events:
            if isinstance(e, Enter):
                _check(e.shape.colour not in slots, f"entering shape colour {e.shape.colour!r} already shown")
                slots.append(e.shape.colour)
            elif isinstance(e, Recolour | Turn):
                _check(
                    0 <= e.slot < len(slots),
                    f"event slot {e.slot} not among the {len(slots)} shapes at {e.at}",
                )
            if isinstance(e, Recolour):
                _check(e.colour in COLOUR_NAMES, f"colour {e.colour!r} not in {COLOUR_NAMES}")
                others = slots[: e.slot] + slots[e.slot + 1 :]
                _check(e.colour not in others, f"recolour to {e.colour!r} at {e.at}: another shape has it")
                slots[e.slot] = e.colour
            if isinstance(e, Turn):
                _check(e.motion in MOTIONS, f"motion {e.motion!r} not in {MOTIONS}")
                _check(e.sign in (-1, 1), f"sign {e.sign} not in (-1, 1)")


@dataclass(frozen=True)
class ShapeState:
    """What a caption says about one shape."""

    kind: str
    colour: str
    motion: str
    spinning: bool = False


@dataclass(frozen=True)
class SceneState:
    """What a caption says about the whole scene (the prompt in force)."""

    shapes: tuple[ShapeState, ...]
    background: BackgroundSpec

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(s.kind for s in self.shapes)
