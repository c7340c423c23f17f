"""The latent upsampler (``LatentUpsampler``) and its application in un-normalised latent space.

Forward: ``initial_conv`` -> GroupNorm(32) -> SiLU -> ``res_blocks`` -> ``upsampler`` ->
``post_upsample_res_blocks`` -> ``final_conv``; latents are [B, 128, F, H, W] in and out.

``upsampler`` is, by config:

* plain spatial x2: ``Sequential(Conv2d(C, 4C), PixelShuffle 2)`` per frame (keys ``upsampler.0.*``);
* rational spatial num/den: ``SpatialRationalResampler`` (keys ``upsampler.conv.*``,
  ``upsampler.blur_down.kernel``); x2 = (2, 1), x1.5 = (3, 2);
* temporal x2: ``Sequential(Conv3d(C, 2C), PixelShuffle in time)``, then the first frame is dropped
  (F -> 2F - 1);
* spatio-temporal x2: ``Sequential(Conv3d(C, 8C), 3-D PixelShuffle)``, first frame dropped likewise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
from einops import rearrange
from torch import nn

from ltx2stream import codes
from ltx2stream.errors import InputError
from ltx2stream.models.upsampler.blocks import PixelShuffleND, ResBlock, SpatialRationalResampler, conv_nd
from ltx2stream.models.upsampler.config import GROUPS, UpsamplerConfig


def build_resampler(cfg: UpsamplerConfig) -> nn.Module:
    """The ``upsampler`` submodule for ``cfg`` (see the module docstring for the variants and their keys)."""
    c = cfg.mid_channels
    if cfg.kind == "spatiotemporal":
        return nn.Sequential(nn.Conv3d(c, 8 * c, kernel_size=3, padding=1), PixelShuffleND(3))
    if cfg.kind == "temporal":
        return nn.Sequential(nn.Conv3d(c, 2 * c, kernel_size=3, padding=1), PixelShuffleND(1))
    if cfg.rational_resampler:
        num, den = cfg.rational
        return SpatialRationalResampler(c, num, den)
    return nn.Sequential(nn.Conv2d(c, 4 * c, kernel_size=3, padding=1), PixelShuffleND(2))


class LatentUpsampler(nn.Module):
    """Upsample video latents in space (x2, x1.5 ...) and/or time (x2), official module tree."""

    def __init__(self, config: UpsamplerConfig) -> None:
        super().__init__()
        self.config = config
        dims, c = config.dims, config.mid_channels
        self.initial_conv = conv_nd(dims, config.in_channels, c)
        self.initial_norm = nn.GroupNorm(GROUPS, c)
        self.initial_activation = nn.SiLU()
        self.res_blocks = nn.ModuleList(ResBlock(c, dims) for _ in range(config.num_blocks_per_stage))
        self.upsampler = build_resampler(config)
        self.post_upsample_res_blocks = nn.ModuleList(
            ResBlock(c, dims) for _ in range(config.num_blocks_per_stage)
        )
        self.final_conv = conv_nd(dims, c, config.in_channels)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        """shape [B, C, F, H, W] -> [B, C, F', H', W'] with (F', H', W') = ``config.output_size(F, H, W)``."""
        self._check_input(latent)
        b = latent.shape[0]
        if self.config.dims == 2:  # per-frame 2-D trunk
            x = rearrange(latent, "b c f h w -> (b f) c h w")
            x = self.final_conv(self._post(self.upsampler(self._pre(x))))
            out: torch.Tensor = rearrange(x, "(b f) c h w -> b c f h w", b=b)
            return out
        x = self._resample(self._pre(latent))
        out = self.final_conv(self._post(x))
        return out

    def _pre(self, x: torch.Tensor) -> torch.Tensor:
        x = self.initial_activation(self.initial_norm(self.initial_conv(x)))
        for block in self.res_blocks:
            x = block(x)
        return x

    def _post(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.post_upsample_res_blocks:
            x = block(x)
        return x

    def _resample(self, x: torch.Tensor) -> torch.Tensor:
        """3-D trunk: [B, C, F, H, W] -> resampled [B, C, F', H', W']."""
        if self.config.temporal_upsample:
            # the first latent frame stands for a single pixel frame: its doubled copy is dropped
            doubled: torch.Tensor = self.upsampler(x)  # [B, C, 2F, H', W']
            return doubled[:, :, 1:]  # -> [B, C, 2F - 1, H', W']
        if isinstance(self.upsampler, SpatialRationalResampler):
            resampled: torch.Tensor = self.upsampler(x)
            return resampled
        b = x.shape[0]
        x = rearrange(x, "b c f h w -> (b f) c h w")  # plain x2 resampler runs per frame
        x = self.upsampler(x)  # [(B F), C, 2H, 2W]
        out: torch.Tensor = rearrange(x, "(b f) c h w -> b c f h w", b=b)
        return out

    def _check_input(self, latent: torch.Tensor) -> None:
        if latent.ndim != 5 or latent.shape[1] != self.config.in_channels:
            raise InputError(
                f"upsampler expects [B, {self.config.in_channels}, F, H, W]; got {tuple(latent.shape)}",
                code=codes.INPUT_BAD_LATENT_SHAPE,
            )
        if min(latent.shape[2:]) < 1:
            raise InputError(
                f"latent upsampler: empty latent {tuple(latent.shape)}", code=codes.INPUT_BAD_LATENT_SHAPE
            )


class LatentNormalizer(Protocol):
    """The video VAE's per-channel latent statistics (``vae.normalize`` / ``vae.denormalize``)."""

    def normalize(self, latent: torch.Tensor) -> torch.Tensor: ...

    def denormalize(self, latent: torch.Tensor) -> torch.Tensor: ...


@dataclass(frozen=True)
class NormalizerFns:
    """A ``LatentNormalizer`` made of two callables."""

    normalize_fn: Callable[[torch.Tensor], torch.Tensor]
    denormalize_fn: Callable[[torch.Tensor], torch.Tensor]

    def normalize(self, latent: torch.Tensor) -> torch.Tensor:
        return self.normalize_fn(latent)

    def denormalize(self, latent: torch.Tensor) -> torch.Tensor:
        return self.denormalize_fn(latent)


def upsample_video(latent: torch.Tensor, upsampler: LatentUpsampler, stats: LatentNormalizer) -> torch.Tensor:
    """Upsample a normalised video latent: un-normalise -> upsampler -> re-normalise.

    The upsampler was trained on raw encoder means, while the diffusion model and conditioning work on
    latents normalised by the video VAE's per-channel statistics; ``stats`` is that VAE (or anything with its
    ``normalize`` / ``denormalize``). The latent is cast to the upsampler's dtype and device and the result
    is returned in the input's dtype. shape [B, 128, F, H, W] -> [B, 128, F', H', W'].
    """
    weight = upsampler.final_conv.weight
    raw = stats.denormalize(latent).to(device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        up = upsampler(raw)
    return stats.normalize(up).to(latent.dtype)
