"""The LTX-2.5 video VAE with the diffusion decoder: conv encoder (unchanged), diffusion decoder, statistics.

Same interface as ``VideoVAE`` where the pipeline uses it: ``encode``, ``decode`` (normalised latent in,
pixels in [-1, 1] out), ``normalize`` / ``denormalize``, ``config``-independent shape rules. ``decode`` takes a
``generator`` for the stage-5 noise (the decoder is stochastic: same generator seed -> same pixels).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from ltx2stream.models.video_vae.config import VideoVAEConfig
from ltx2stream.models.video_vae.diffusion.config import DiffusionDecoderConfig, encoder_section
from ltx2stream.models.video_vae.diffusion.decoder import DiffusionVideoDecoder
from ltx2stream.models.video_vae.encoder import VideoEncoder
from ltx2stream.models.video_vae.vae import OPTIONAL_STATS, PerChannelStatistics, VideoVAE


class DiffusionVideoVAE(nn.Module):
    """Submodules ``encoder``, ``decoder``, ``per_channel_statistics`` (keys = the file's less ``vae.``)."""

    is_diffusion = True

    def __init__(
        self,
        section: dict[str, Any],
        *,
        with_encoder: bool = True,
        with_decoder: bool = True,
        optional_stats: tuple[str, ...] = OPTIONAL_STATS,
    ) -> None:
        super().__init__()
        self.section = section
        self.encoder_config = VideoVAEConfig.from_metadata(encoder_section(section))
        self.decoder_config = DiffusionDecoderConfig.from_metadata(section)
        if with_encoder:
            self.encoder = VideoEncoder(self.encoder_config)
        if with_decoder:
            self.decoder = DiffusionVideoDecoder(self.decoder_config)
        self.per_channel_statistics = PerChannelStatistics(
            self.encoder_config.latent_channels, optional_stats
        )

    @property
    def config(self) -> VideoVAEConfig:
        """The encoder-side conv config (latent channels, padding) for callers that read shape rules."""
        return self.encoder_config

    def normalize(self, latent: torch.Tensor) -> torch.Tensor:
        return self.per_channel_statistics.normalize(latent)

    def denormalize(self, latent: torch.Tensor) -> torch.Tensor:
        return self.per_channel_statistics.denormalize(latent)

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels (B, 3, 1+8k, H, W) in [-1, 1] -> normalised latent (B, 128, 1+k, H/32, W/32)."""
        VideoVAE.check_pixels(self, pixels)  # type: ignore[arg-type]
        means = self.encoder(pixels.to(self.encoder.conv_in.conv.weight.dtype))
        return self.normalize(means).to(pixels.dtype)

    def decode(
        self, latent: torch.Tensor, *, generator: torch.Generator | None = None, **_: Any
    ) -> torch.Tensor:
        """Normalised latent (B, 128, F', h, w) -> pixels (B, 3, 8(F'−1)+1, 32h, 32w) in [-1, 1]."""
        return torch.cat(list(self.decode_chunks(latent, generator=generator, chunk_frames=None)), dim=2)

    def decode_chunks(
        self, latent: torch.Tensor, *, generator: torch.Generator | None = None, chunk_frames: int | None = 16
    ) -> Iterator[torch.Tensor]:
        """Progressive decode: pixel chunks in order; their concatenation equals ``decode`` (same generator)."""
        VideoVAE.check_latent(self, latent)  # type: ignore[arg-type]
        raw = self.denormalize(latent.to(self.decoder.conv_in.weight.dtype))
        yield from self.decoder.decode_chunks(raw, generator, chunk_frames=chunk_frames)
