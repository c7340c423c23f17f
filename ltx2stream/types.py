"""Named shapes shared by every layer; the pixel <-> latent rules live only here.

Video: the causal VAE maps pixel frame 0 to latent frame 0 and every later group of 8 pixel frames to one latent
frame, so pixel frames F = 1 + 8k <-> latent frames 1 + k; space is compressed ×32.
Audio: 16 kHz mel with hop 160 and ×4 temporal compression -> 25 latent frames per second; 8 channels × 16 bins.
"""

from __future__ import annotations

from typing import NamedTuple

from ltx2stream import codes
from ltx2stream.errors import InputError

VIDEO_TIME_SCALE = 8
VIDEO_SPACE_SCALE = 32
VIDEO_LATENT_CHANNELS = 128
AUDIO_SAMPLE_RATE = 16000
AUDIO_HOP = 160
AUDIO_TIME_SCALE = 4
AUDIO_LATENTS_PER_SECOND = AUDIO_SAMPLE_RATE / AUDIO_HOP / AUDIO_TIME_SCALE  # 25.0
AUDIO_LATENT_CHANNELS = 8
AUDIO_MEL_BINS = 64
AUDIO_LATENT_BINS = 16
# Audio latents generated past a clip's end: the causal audio decoder returns 4T - 3 mel frames, and a segment's
# audio start is rounded to the latent grid, so a few extra latents keep the decoded audio covering the video.
AUDIO_MARGIN_LATENTS = 3
MAX_SEED = 2**63 - 1  # seeds are non-negative int64 everywhere (requests, sessions, the wire)


def is_frames_rule(frames: int) -> bool:
    """True when ``frames`` = 1 + 8k (k >= 0): a whole number of latent frames."""
    return frames >= 1 and (frames - 1) % VIDEO_TIME_SCALE == 0


def check_frames(frames: int) -> None:
    """Raise InputError unless frames = 1 + 8k (k >= 0)."""
    if not is_frames_rule(frames):
        raise InputError(f"frames must be 1 + 8k (1, 9, 17, ...); got {frames}", code=codes.INPUT_FRAMES_RULE)


def latent_frames_of(pixel_frames: int) -> int:
    """Latent frames covering ``pixel_frames`` = 1 + 8k pixel frames: 1 + k."""
    return (pixel_frames - 1) // VIDEO_TIME_SCALE + 1


def pixel_frames_of(latent_frames: int) -> int:
    """Pixel frames decoded from ``latent_frames``: 8(L − 1) + 1."""
    return (latent_frames - 1) * VIDEO_TIME_SCALE + 1


def latent_index_of(pixel_frame: int) -> int:
    """The latent frame holding pixel frame ``p``: ceil(p / 8) (frame 0 alone, then groups of 8)."""
    return -(-pixel_frame // VIDEO_TIME_SCALE)


def check_spatial(height: int, width: int, multiple: int = VIDEO_SPACE_SCALE) -> None:
    """Raise InputError unless height and width are positive multiples of ``multiple``."""
    if height <= 0 or width <= 0 or height % multiple or width % multiple:
        raise InputError(
            f"height and width must be positive multiples of {multiple}; got {height}x{width}",
            code=codes.INPUT_SIZE_RULE,
        )


class VideoLatentShape(NamedTuple):
    batch: int
    channels: int
    frames: int
    height: int
    width: int

    def to_pixel_frames(self) -> int:
        return pixel_frames_of(self.frames)

    @property
    def tokens(self) -> int:
        return self.frames * self.height * self.width
