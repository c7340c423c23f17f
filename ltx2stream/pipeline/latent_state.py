"""Token-space latent state shared by the conditioning, denoising and upsampling stages.

A modality's state is a frozen ``LatentState``: the noisy tokens, the clean conditioning tokens, the per-token
denoise mask (1 = generate, 0 = keep the clean token), the RoPE position bounds and how many of the tokens are the
target grid (tokens past ``num_target`` are appended conditioning tokens, removed after denoising).

Video tokens follow the patchifier's (f, h, w) raster: latent frame ``f`` owns tokens ``[f·h·w, (f+1)·h·w)``.
Audio tokens follow latent time: token ``t`` is latent frame ``t``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from ltx2stream import codes
from ltx2stream.errors import ConditioningError
from ltx2stream.models.transformer.positions import (
    patchify_audio,
    patchify_video,
    unpatchify_audio,
    unpatchify_video,
)
from ltx2stream.types import VideoLatentShape


@dataclass(frozen=True)
class LatentState:
    """State of one modality, shapes: latent/clean_latent (B, T, C), denoise_mask (B, T), positions (B, n, T, 2)."""

    latent: torch.Tensor
    clean_latent: torch.Tensor
    denoise_mask: torch.Tensor
    positions: torch.Tensor
    num_target: int
    attention_mask: torch.Tensor | None = None  # (B, T, T) in [0, 1], or None
    # (B, T): 1 on tokens that get the LTX-2.5 keyframe embedding (the target canvas' first latent frame), 0 on
    # every other token, appended conditioning tokens included; None = no token marked. Models without the
    # embedding ignore it.
    keyframes_mask: torch.Tensor | None = None

    @property
    def num_tokens(self) -> int:
        return int(self.latent.shape[1])

    def with_tokens(self, start: int, tokens: torch.Tensor, strength: float) -> LatentState:
        """Write clean ``tokens`` (B, n, C) at ``[start, start+n)`` into latent and clean_latent; mask = 1 − strength."""
        n = tokens.shape[1]
        if start < 0 or start + n > self.num_target:
            raise ConditioningError(
                f"conditioning tokens [{start}, {start + n}) fall outside the {self.num_target} target tokens",
                code=codes.CONDITIONING_OUT_OF_RANGE,
            )
        if tokens.shape[0] != self.latent.shape[0] or tokens.shape[2] != self.latent.shape[2]:
            raise ConditioningError(
                f"conditioning tokens {tuple(tokens.shape)} do not match the state {tuple(self.latent.shape)}",
                code=codes.CONDITIONING_SHAPE,
            )
        latent, clean, mask = self.latent.clone(), self.clean_latent.clone(), self.denoise_mask.clone()
        tokens = tokens.to(device=latent.device, dtype=latent.dtype)
        latent[:, start : start + n] = tokens
        clean[:, start : start + n] = tokens
        mask[:, start : start + n] = 1.0 - strength
        return replace(self, latent=latent, clean_latent=clean, denoise_mask=mask)

    def appended(self, tokens: torch.Tensor, positions: torch.Tensor, strength: float) -> LatentState:
        """Append conditioning tokens (B, n, C) with their own positions (B, n_axes, n, 2); mask = 1 − strength.

        The noisy part starts equal to the clean tokens (as ``with_tokens`` does), so a stage that is not re-noised
        keeps mask-0 tokens exact; a noised stage mixes noise in by the mask.
        """
        b, n, _ = tokens.shape
        tokens = tokens.to(device=self.latent.device, dtype=self.latent.dtype)
        mask = torch.full((b, n), 1.0 - strength, dtype=self.denoise_mask.dtype, device=tokens.device)
        return replace(
            self,
            latent=torch.cat(
                [self.latent, tokens], dim=1
            ),  # like with_tokens: the noiser mixes noise in by mask
            clean_latent=torch.cat([self.clean_latent, tokens], dim=1),
            denoise_mask=torch.cat([self.denoise_mask, mask], dim=1),
            positions=torch.cat([self.positions, positions.to(self.positions)], dim=2),
            attention_mask=None if self.attention_mask is None else _grow_mask(self.attention_mask, n),
            keyframes_mask=None
            if self.keyframes_mask is None
            else torch.cat([self.keyframes_mask, self.keyframes_mask.new_zeros((b, n))], dim=1),
        )

    def target_only(self) -> LatentState:
        """Drop appended conditioning tokens (keeps the first ``num_target`` tokens)."""
        t = self.num_target
        return replace(
            self,
            latent=self.latent[:, :t],
            clean_latent=self.clean_latent[:, :t],
            denoise_mask=self.denoise_mask[:, :t],
            positions=self.positions[:, :, :t],
            attention_mask=None if self.attention_mask is None else self.attention_mask[:, :t, :t],
            keyframes_mask=None if self.keyframes_mask is None else self.keyframes_mask[:, :t],
        )


def _grow_mask(mask: torch.Tensor, n: int) -> torch.Tensor:
    b, t, _ = mask.shape
    out = torch.ones((b, t + n, t + n), dtype=mask.dtype, device=mask.device)
    out[:, :t, :t] = mask
    return out


def video_to_tokens(latent: torch.Tensor) -> torch.Tensor:
    """(B, C, F, H, W) -> (B, F·H·W, C) in the patchifier's (f, h, w) raster order."""
    return patchify_video(latent)


def tokens_to_video(tokens: torch.Tensor, frames: int, height: int, width: int) -> torch.Tensor:
    """(B, F·H·W, C) -> (B, C, F, H, W)."""
    b, _, c = tokens.shape
    return unpatchify_video(tokens, VideoLatentShape(b, c, frames, height, width))


def audio_to_tokens(latent: torch.Tensor) -> torch.Tensor:
    """(B, 8, T, 16) -> (B, T, 128) with channel-major (c m) features."""
    return patchify_audio(latent)


def tokens_to_audio(tokens: torch.Tensor, channels: int, bins: int) -> torch.Tensor:
    """(B, T, C·M) -> (B, C, T, M)."""
    return unpatchify_audio(tokens, channels, bins)
