"""Image / clip conditioning: images and clips of a request -> encoded conditioning items at a stage's size.

Each image goes through the CRF round trip, a cover-resize + centre crop to the stage size, and a one-frame VAE
encode (a clip: a joint multi-frame encode). Stage 2 re-encodes at full resolution. The items are applied by
``apply_conditioning``; continuation latents from the session controller are just more items.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

import numpy as np
import torch

from ltx2stream.pipeline.conditioning import ConditioningItem, VideoLatentCondition, apply_conditioning
from ltx2stream.pipeline.images import crf_round_trip, load_image, to_model_pixels
from ltx2stream.pipeline.request import GenerationRequest, ImageInput, VideoClipInput
from ltx2stream.pipeline.state import AVState, StageGrid


class VideoEncoder(Protocol):
    def encode(self, pixels: torch.Tensor) -> torch.Tensor: ...


def _image_pixels(img: ImageInput) -> np.ndarray:
    return img.pixels if img.pixels is not None else load_image(img.path or "")


def _clip_pixels(clip: VideoClipInput) -> np.ndarray:
    if clip.pixels is not None:
        return clip.pixels
    return np.stack([load_image(p) for p in clip.paths])  # F x [H, W, 3] -> [F, H, W, 3]


class LTX2ImageConditioningStage:
    """Encodes a request's images and clips with the video VAE at a given stage grid."""

    def __init__(self, vae: VideoEncoder) -> None:
        self.vae = vae

    def items(self, request: GenerationRequest, grid: StageGrid) -> tuple[ConditioningItem, ...]:
        out: list[ConditioningItem] = []
        for img in request.images:
            pixels = crf_round_trip(_image_pixels(img), request.image_crf)
            out.append(VideoLatentCondition(self._encode(pixels, grid), img.latent_frame, img.strength))
        for clip in request.video_clips:
            frames = np.stack([crf_round_trip(f, request.image_crf) for f in _clip_pixels(clip)])
            out.append(VideoLatentCondition(self._encode(frames, grid), clip.latent_frame, clip.strength))
        return tuple(out)

    def _encode(self, pixels: np.ndarray, grid: StageGrid) -> torch.Tensor:
        latent = self.encode_frames(pixels, grid.height, grid.width)
        return latent.expand(grid.batch, *latent.shape[1:])

    @torch.inference_mode()
    def encode_frames(self, pixels: np.ndarray, height: int, width: int) -> torch.Tensor:
        """uint8 [H, W, 3] or [F, H, W, 3] -> latent [1, 128, 1 + (F-1)/8, height/32, width/32] (no CRF step)."""
        x = to_model_pixels(pixels, height, width)[None]  # [3, F, H, W] -> [1, 3, F, H, W]
        param = next(self.vae.parameters())  # type: ignore[attr-defined]
        return self.vae.encode(x.to(device=param.device, dtype=param.dtype)).float()


def condition(state: AVState, items: tuple[ConditioningItem, ...]) -> AVState:
    """Apply video and audio items to a stage state (later items win where they overlap)."""
    grid = _Grid(state.grid.latent_frames, state.grid.latent_height, state.grid.latent_width)
    return replace(
        state,
        video=apply_conditioning(state.video, items, "video", grid),
        audio=apply_conditioning(state.audio, items, "audio", None),
    )


class _Grid:
    def __init__(self, frames: int, height: int, width: int) -> None:
        self.frames, self.height, self.width = frames, height, width
