"""What one segment of a preset may cost, and the check that refuses a request beyond it before any compute.

The wire limits (``ProtocolLimits``) bound each field on its own; a request can pass all of them and still ask
for far more than a worker can do (3840 x 3840 x 481 frames on the tiny preset: about 85 GB of decoded pixels).
Each preset therefore declares a :class:`Capacity` — the largest frame side and area, frames and latent tokens
per segment, and an estimated peak working memory — and :func:`check_cost` refuses a segment beyond any of them
with a code that names the limit (``cost.resolution``, ``cost.frames``, ``cost.tokens``, ``cost.memory``).

The cost of a segment (:func:`segment_cost`) is counted at the final stage's grid:

* tokens: video latent tokens ``latent_frames x (H / 32) x (W / 32)`` plus the audio latents of the segment's
  duration (``25 / s`` plus the decoder margin);
* memory (an upper bound, bytes): the whole segment decoded as float32 pixels ``F x H x W x 3 x 4`` (what the
  decode path handles at most, progressive or not) plus ``tokens x bytes_per_token`` (the preset's declared
  transformer working memory per token).

Functions here are pure and cheap: the server calls them on the event loop for every ``open``, and the HTTP
video API (``/v1/videos``) calls the same :func:`check_cost`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ltx2stream import codes
from ltx2stream.errors import InputError
from ltx2stream.types import (
    AUDIO_LATENTS_PER_SECOND,
    AUDIO_MARGIN_LATENTS,
    VIDEO_SPACE_SCALE,
    latent_frames_of,
)

GiB = 1 << 30
MiB = 1 << 20


@dataclass(frozen=True)
class Capacity:
    """What one segment of a preset may ask for (every bound inclusive).

    Attributes:
        max_side: pixels of the longer frame side.
        max_pixels: ``width x height`` of one frame.
        max_frames: pixel frames per segment (1 + 8k).
        max_tokens: video + audio latent tokens of one segment at the final stage.
        max_memory_bytes: the estimated peak working memory of one segment (see :func:`segment_cost`).
        bytes_per_token: transformer working memory per latent token, used by the estimate.
    """

    max_side: int
    max_pixels: int
    max_frames: int
    max_tokens: int
    max_memory_bytes: int
    bytes_per_token: int

    def __post_init__(self) -> None:
        for name in (
            "max_side",
            "max_pixels",
            "max_frames",
            "max_tokens",
            "max_memory_bytes",
            "bytes_per_token",
        ):
            if getattr(self, name) <= 0:
                raise InputError(
                    f"Capacity.{name} must be > 0; got {getattr(self, name)}", code=codes.CONFIG_OUT_OF_RANGE
                )


# The 19B / 22B models on one 80 GB+ GPU: 4K-class frames (either orientation), up to 20 s at 24 fps.
FULL_MODEL = Capacity(
    max_side=3840,
    max_pixels=3840 * 2176,
    max_frames=481,
    max_tokens=160_000,
    max_memory_bytes=64 * GiB,
    bytes_per_token=96 * 1024,
)
# The embedded tiny random-weight models on a CPU: small frames, up to 121 frames per segment.
TINY_MODEL = Capacity(
    max_side=512,
    max_pixels=512 * 512,
    max_frames=121,
    max_tokens=8192,
    max_memory_bytes=1 * GiB,
    bytes_per_token=16 * 1024,
)

# The pocket model on a CPU (trained at 256 x 256, 25 frames): up to twice its side and 49 frames per segment.
POCKET_MODEL = Capacity(
    max_side=512,
    max_pixels=512 * 512,
    max_frames=49,
    max_tokens=4096,
    max_memory_bytes=1 * GiB,
    bytes_per_token=16 * 1024,
)


@dataclass(frozen=True)
class SegmentCost:
    """What one segment of given settings costs (see the module docstring for how it is counted)."""

    width: int
    height: int
    frames: int
    video_tokens: int
    audio_tokens: int
    memory_bytes: int

    @property
    def tokens(self) -> int:
        return self.video_tokens + self.audio_tokens


def segment_cost(capacity: Capacity, width: int, height: int, frames: int, fps: float) -> SegmentCost:
    """The cost of one ``frames``-frame segment at ``width x height`` and ``fps`` (no validation of the rules)."""
    latent_frames = latent_frames_of(frames) if frames >= 1 else 0
    video = latent_frames * math.ceil(height / VIDEO_SPACE_SCALE) * math.ceil(width / VIDEO_SPACE_SCALE)
    audio = math.ceil(frames / fps * AUDIO_LATENTS_PER_SECOND) + AUDIO_MARGIN_LATENTS if fps > 0 else 0
    memory = frames * height * width * 3 * 4 + (video + audio) * capacity.bytes_per_token
    return SegmentCost(width, height, frames, video, audio, memory)


def check_cost(capacity: Capacity, width: int, height: int, frames: int, fps: float) -> SegmentCost:
    """Return the segment's cost if ``capacity`` can serve it.

    Raises:
        InputError: ``cost.resolution`` / ``cost.frames`` / ``cost.tokens`` / ``cost.memory``: the first limit
            the request is over, named in the message with the requested value and the limit.
    """
    side, pixels = max(width, height), width * height
    if side > capacity.max_side or pixels > capacity.max_pixels:
        raise InputError(
            f"{width}x{height} is over this preset's frame limit (longer side <= {capacity.max_side}, "
            f"width x height <= {capacity.max_pixels})",
            code=codes.COST_RESOLUTION,
        )
    if frames > capacity.max_frames:
        raise InputError(
            f"{frames} frames per segment is over this preset's limit of {capacity.max_frames}",
            code=codes.COST_FRAMES,
        )
    cost = segment_cost(capacity, width, height, frames, fps)
    if cost.tokens > capacity.max_tokens:
        raise InputError(
            f"a {width}x{height}x{frames} segment at {fps:g} fps has {cost.tokens} latent tokens "
            f"({cost.video_tokens} video + {cost.audio_tokens} audio); this preset's limit is {capacity.max_tokens}",
            code=codes.COST_TOKENS,
        )
    if cost.memory_bytes > capacity.max_memory_bytes:
        raise InputError(
            f"a {width}x{height}x{frames} segment needs an estimated {cost.memory_bytes / GiB:.2f} GiB; "
            f"this preset's limit is {capacity.max_memory_bytes / GiB:.2f} GiB",
            code=codes.COST_MEMORY,
        )
    return cost
