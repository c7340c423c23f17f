"""A procedural audio-video world: shapes moving, bouncing and turning over plain or gradient backgrounds,
with sound tied to what happens, scene changes at known times, ground truth per frame and varied captions.

numpy only, deterministic from a seed, any resolution and fps. See docs/quality.md.
"""

from .captions import VOCABULARIES, announce, describe
from .clip import DEFAULT_SAMPLE_RATE, CaptionSpan, ClipTruth, RenderedClip, first_frame_at, render_clip
from .motion import Bounce
from .palette import (
    BACKGROUND_COLOURS,
    BACKGROUND_NAMES,
    COLOUR_NAMES,
    HEADINGS,
    KIND_PITCH_HZ,
    MOTIONS,
    SHAPE_COLOURS,
    SHAPE_KINDS,
)
from .sampler import CHANGES, SPEC_VERSION, make_steered_clip, sample_clip_spec, steered_clip_spec
from .scene import Scene
from .spec import (
    BackgroundSpec,
    ClipSpec,
    Darken,
    Enter,
    Event,
    Recolour,
    SceneState,
    ShapeSpec,
    ShapeState,
    Turn,
)

__all__ = [
    "BACKGROUND_COLOURS",
    "BACKGROUND_NAMES",
    "CHANGES",
    "COLOUR_NAMES",
    "DEFAULT_SAMPLE_RATE",
    "HEADINGS",
    "KIND_PITCH_HZ",
    "MOTIONS",
    "SHAPE_COLOURS",
    "SHAPE_KINDS",
    "SPEC_VERSION",
    "VOCABULARIES",
    "BackgroundSpec",
    "Bounce",
    "CaptionSpan",
    "ClipSpec",
    "ClipTruth",
    "Darken",
    "Enter",
    "Event",
    "Recolour",
    "RenderedClip",
    "Scene",
    "SceneState",
    "ShapeSpec",
    "ShapeState",
    "Turn",
    "announce",
    "describe",
    "first_frame_at",
    "make_steered_clip",
    "render_clip",
    "sample_clip_spec",
    "steered_clip_spec",
]
