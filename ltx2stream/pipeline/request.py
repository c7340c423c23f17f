"""A generation request and its validation, done before any compute.

Everything a caller can get wrong (frame rule, size rule, strengths, latent frame indices, image paths, seeds) is
checked here and answered with an InputError whose code names the rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ltx2stream import codes
from ltx2stream.errors import InputError
from ltx2stream.types import (
    MAX_SEED,
    check_frames,
    check_spatial,
    is_frames_rule,
    latent_frames_of,
)


@dataclass(frozen=True)
class ImageInput:
    """One conditioning image placed at a latent frame.

    ``path`` or ``pixels`` (uint8 [H, W, 3]) gives the picture; ``latent_frame`` is the latent frame index it
    conditions; ``strength`` in [0, 1] (denoise mask = 1 − strength, 1 keeps it clean).
    """

    path: str | None = None
    pixels: np.ndarray | None = field(default=None, compare=False, repr=False)
    latent_frame: int = 0
    strength: float = 1.0


@dataclass(frozen=True)
class VideoClipInput:
    """A multi-frame clip (paths or uint8 [F, H, W, 3] with F = 1 + 8k) encoded jointly by the VAE at a latent frame."""

    paths: tuple[str, ...] = ()
    pixels: np.ndarray | None = field(default=None, compare=False, repr=False)
    latent_frame: int = 0
    strength: float = 1.0


@dataclass(frozen=True)
class GenerationRequest:
    """What to generate. Sizes are the final (stage-2) output size."""

    prompt: str
    height: int = 512
    width: int = 768
    frames: int = 121
    fps: float = 24.0
    seed: int = 10
    negative_prompt: str = ""
    images: tuple[ImageInput, ...] = ()
    video_clips: tuple[VideoClipInput, ...] = ()
    image_crf: int = 33  # H.264 CRF applied to conditioning images; 0 disables the compression step

    @property
    def latent_frames(self) -> int:
        return latent_frames_of(self.frames)

    @property
    def duration_s(self) -> float:
        return self.frames / self.fps


def validate_request(req: GenerationRequest, *, two_stage: bool, max_prompt_chars: int = 20000) -> None:
    """Raise InputError for any invalid field; checks only, no compute and no model access."""
    if not isinstance(req.prompt, str) or len(req.prompt) > max_prompt_chars:
        raise InputError(
            f"prompt must be a string of at most {max_prompt_chars} characters", code=codes.INPUT_PROMPT
        )
    check_frames(req.frames)
    check_spatial(req.height, req.width, 64 if two_stage else 32)
    if not (math.isfinite(req.fps) and 1.0 <= req.fps <= 120.0):
        raise InputError(f"fps must be in [1, 120]; got {req.fps}", code=codes.INPUT_FPS)
    if not (0 <= req.seed <= MAX_SEED):
        raise InputError(f"seed must be in [0, 2^63-1]; got {req.seed}", code=codes.INPUT_SEED)
    if not (0 <= req.image_crf <= 51):
        raise InputError(f"image_crf must be in [0, 51]; got {req.image_crf}", code=codes.INPUT_IMAGE_CRF)
    for i, img in enumerate(req.images):
        _check_item(f"images[{i}]", img.latent_frame, 1, img.strength, req.latent_frames)
        _check_source(f"images[{i}]", (img.path,) if img.path else (), img.pixels)
    for i, clip in enumerate(req.video_clips):
        n = _clip_frames(f"video_clips[{i}]", clip)
        _check_item(
            f"video_clips[{i}]",
            clip.latent_frame,
            latent_frames_of(n),
            clip.strength,
            req.latent_frames,
        )


def _check_item(name: str, latent_frame: int, span: int, strength: float, latent_frames: int) -> None:
    if not (0.0 <= strength <= 1.0) or not math.isfinite(strength):
        raise InputError(f"{name}: strength must be in [0, 1]; got {strength}", code=codes.INPUT_STRENGTH)
    if latent_frame < 0 or latent_frame + span > latent_frames:
        raise InputError(
            f"{name}: latent frame {latent_frame} (+{span} frames) is outside the {latent_frames} latent frames "
            f"of the request",
            code=codes.INPUT_LATENT_FRAME_RANGE,
        )


def _check_source(name: str, paths: tuple[str, ...], pixels: np.ndarray | None) -> None:
    if pixels is None and not paths:
        raise InputError(f"{name}: give a path or pixels", code=codes.INPUT_IMAGE_MISSING)
    for p in paths:
        if not Path(p).is_file():
            raise InputError(f"{name}: image file not found: {p}", code=codes.INPUT_IMAGE_NOT_FOUND)
    if pixels is not None and (
        pixels.dtype != np.uint8 or pixels.ndim not in (3, 4) or pixels.shape[-1] != 3
    ):
        raise InputError(
            f"{name}: pixels must be uint8 [..., H, W, 3]; got {pixels.dtype} {pixels.shape}",
            code=codes.INPUT_IMAGE_PIXELS,
        )


def _clip_frames(name: str, clip: VideoClipInput) -> int:
    _check_source(name, clip.paths, clip.pixels)
    n = len(clip.paths) if clip.pixels is None else int(clip.pixels.shape[0])
    if not is_frames_rule(n):
        raise InputError(f"{name}: a clip must have 1 + 8k frames; got {n}", code=codes.INPUT_FRAMES_RULE)
    return n
