"""Conditioning items: each one is a small object that turns a LatentState into a conditioned LatentState.

Every way of steering a segment — a first image, several images at chosen latent frames, a jointly encoded video
clip, the continuation latents carried from the previous segment (stage 1 and stage 2) and audio latents — is one
more item in a tuple. Items are applied in order; later ones win where they overlap.

Denoise mask: 1 − strength on the conditioned tokens (strength 1 keeps them clean, timestep 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from ltx2stream import codes
from ltx2stream.errors import ConditioningError
from ltx2stream.pipeline.latent_state import LatentState, audio_to_tokens, video_to_tokens


class VideoGrid(Protocol):
    frames: int
    height: int
    width: int


class ConditioningItem(Protocol):
    """Something that conditions one modality of a segment."""

    @property
    def modality(self) -> str:
        """``"video"`` or ``"audio"``."""

    def apply(self, state: LatentState, grid: VideoGrid | None) -> LatentState: ...


@dataclass(frozen=True)
class VideoLatentCondition:
    """Clean video latent (B, C, n, h, w) written at latent frames ``[frame, frame + n)`` ("replace latent").

    Used for an encoded image (n = 1), a jointly encoded clip, and the continuation anchor + carried tail.
    """

    latent: torch.Tensor
    frame: int = 0
    strength: float = 1.0
    modality: str = "video"

    def apply(self, state: LatentState, grid: VideoGrid | None) -> LatentState:
        if grid is None:
            raise ConditioningError(
                "video conditioning needs the latent grid", code=codes.CONDITIONING_NO_GRID
            )
        _, _, n, h, w = self.latent.shape
        if (h, w) != (grid.height, grid.width):
            raise ConditioningError(
                f"conditioning latent is {h}x{w} but the segment grid is {grid.height}x{grid.width}",
                code=codes.CONDITIONING_SIZE,
            )
        if self.frame < 0 or self.frame + n > grid.frames:
            raise ConditioningError(
                f"conditioning latent frames [{self.frame}, {self.frame + n}) outside 0..{grid.frames - 1}",
                code=codes.CONDITIONING_OUT_OF_RANGE,
            )
        return state.with_tokens(self.frame * h * w, video_to_tokens(self.latent), self.strength)


@dataclass(frozen=True)
class AudioLatentCondition:
    """Clean audio latent (B, 8, n, 16) written at audio latent frames ``[start, start + n)`` (e.g. a carried prefix)."""

    latent: torch.Tensor
    start: int = 0
    strength: float = 1.0
    modality: str = "audio"

    def apply(self, state: LatentState, grid: VideoGrid | None) -> LatentState:
        return state.with_tokens(self.start, audio_to_tokens(self.latent), self.strength)


@dataclass(frozen=True)
class KeyframeCondition:
    """Clean video latent (B, C, n, h, w) **appended** as extra tokens with their own positions.

    The tokens keep the time position of pixel frame ``pixel_frame`` (the causal first-frame fix only when it is 0),
    so a keyframe can sit anywhere in time without occupying a latent frame of the grid. Appended tokens are removed
    after denoising.
    """

    latent: torch.Tensor
    pixel_frame: int = 0
    fps: float = 24.0
    strength: float = 1.0
    modality: str = "video"
    from_single_image: bool = (
        True  # a one-latent-frame keyframe encodes one pixel frame (not a carried latent)
    )

    def apply(self, state: LatentState, grid: VideoGrid | None) -> LatentState:
        from ltx2stream.models.transformer import video_positions

        b, _, n, h, w = self.latent.shape
        pos = video_positions(
            n,
            h,
            w,
            self.fps,
            batch=b,
            frame_offset=self.pixel_frame,
            causal_fix=self.pixel_frame == 0,
            single_pixel_frame=n == 1 and self.from_single_image,
        )
        return state.appended(video_to_tokens(self.latent), pos, self.strength)


def apply_conditioning(
    state: LatentState, items: tuple[ConditioningItem, ...], modality: str, grid: VideoGrid | None = None
) -> LatentState:
    """Apply the items of ``modality`` in order."""
    for item in items:
        if item.modality == modality:
            state = item.apply(state, grid)
    return state
