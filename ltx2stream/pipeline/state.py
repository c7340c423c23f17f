"""Typed, immutable state passed between pipeline stages.

``StageGrid``  – the pixel and latent sizes of one denoising stage.
``PromptContexts`` – the text contexts of a prompt (and of the negative prompt when guidance needs it).
``AVState`` – the video and audio ``LatentState`` of one stage on its grid.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from ltx2stream.pipeline.latent_state import LatentState, tokens_to_audio, tokens_to_video
from ltx2stream.types import (
    AUDIO_LATENT_BINS,
    AUDIO_LATENT_CHANNELS,
    AUDIO_LATENTS_PER_SECOND,
    VIDEO_SPACE_SCALE,
    latent_frames_of,
)


@dataclass(frozen=True)
class StageGrid:
    """Pixel size of a stage; latent sizes follow (×32 space, 1 + 8k frames, 25 audio latents per second)."""

    height: int
    width: int
    frames: int
    fps: float
    batch: int = 1
    audio_latents: int | None = None  # audio canvas length; default round(frames / fps · 25)
    audio_start_index: int = (
        0  # global audio latent index of the canvas' first audio token (session timeline)
    )
    time_origin_s: float = 0.0  # session time of this stage's pixel frame 0; positions are relative to it

    @property
    def latent_frames(self) -> int:
        return latent_frames_of(self.frames)

    @property
    def latent_height(self) -> int:
        return self.height // VIDEO_SPACE_SCALE

    @property
    def latent_width(self) -> int:
        return self.width // VIDEO_SPACE_SCALE

    @property
    def video_tokens(self) -> int:
        return self.latent_frames * self.latent_height * self.latent_width

    @property
    def audio_frames(self) -> int:
        if self.audio_latents is not None:
            return self.audio_latents
        return round(self.frames / self.fps * AUDIO_LATENTS_PER_SECOND)

    def half(self) -> StageGrid:
        """The stage-1 grid of a two-stage pipeline: half height and width, same frames and fps."""
        return replace(self, height=self.height // 2, width=self.width // 2)


@dataclass(frozen=True)
class PromptContexts:
    """Connector outputs [B, L, D] for video and audio; ``negative_*`` only when text guidance needs them."""

    video: torch.Tensor
    audio: torch.Tensor
    negative_video: torch.Tensor | None = None
    negative_audio: torch.Tensor | None = None

    def blend(self, other: PromptContexts, weight: float) -> PromptContexts:
        """(1 − w)·self + w·other, per context (negatives taken from ``other``)."""

        def mix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return (a.float() * (1.0 - weight) + b.float() * weight).to(b.dtype)

        return PromptContexts(
            mix(self.video, other.video),
            mix(self.audio, other.audio),
            other.negative_video,
            other.negative_audio,
        )


@dataclass(frozen=True)
class AVState:
    """Video and audio latent states of one stage."""

    video: LatentState
    audio: LatentState
    grid: StageGrid

    def video_latent(self) -> torch.Tensor:
        """Target video tokens as a latent [B, C, F, H, W] (appended conditioning tokens dropped)."""
        g = self.grid
        return tokens_to_video(
            self.video.target_only().latent, g.latent_frames, g.latent_height, g.latent_width
        )

    def audio_latent(self) -> torch.Tensor:
        """Target audio tokens as a latent [B, 8, T, 16]."""
        return tokens_to_audio(self.audio.target_only().latent, AUDIO_LATENT_CHANNELS, AUDIO_LATENT_BINS)
