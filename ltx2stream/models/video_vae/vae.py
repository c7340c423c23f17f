"""The video VAE as one module: ``encoder``, ``decoder``, ``per_channel_statistics`` (keys match ``vae.*``).

Latent space convention: ``encode`` returns *normalised* latents, z = (μ − mean-of-means) / std-of-means,
which is the space the diffusion transformer, conditioning latents and the latent upsampler's callers work in;
``decode`` un-normalises first. Only ``mean-of-means`` and ``std-of-means`` are used; the other three
statistics buffers of the LTX-2 / 2.3 files (``mean-of-stds``, ``mean-of-stds_over_std-of-means``,
``channel``) are optional: built when the file has them (zero unexpected keys), absent otherwise (released 2.5
VAE files and VAEs saved from the official modules carry only the two that are read).
"""

from __future__ import annotations

import torch
from torch import nn

from ltx2stream import codes
from ltx2stream.errors import InputError
from ltx2stream.models.video_vae.config import VideoVAEConfig
from ltx2stream.models.video_vae.decoder import DECODE_NOISE_SCALE, VideoDecoder
from ltx2stream.models.video_vae.encoder import VideoEncoder
from ltx2stream.types import VIDEO_SPACE_SCALE, check_frames, check_spatial, pixel_frames_of

REQUIRED_STATS = ("mean-of-means", "std-of-means")
OPTIONAL_STATS = ("mean-of-stds", "mean-of-stds_over_std-of-means", "channel")
STAT_NAMES = REQUIRED_STATS + OPTIONAL_STATS


class PerChannelStatistics(nn.Module):
    """Dataset statistics of the latent means, one value per latent channel."""

    def __init__(self, channels: int, optional: tuple[str, ...] = OPTIONAL_STATS) -> None:
        super().__init__()
        for name in REQUIRED_STATS + tuple(n for n in OPTIONAL_STATS if n in optional):
            init = torch.ones(channels) if name.startswith("std") else torch.zeros(channels)
            self.register_buffer(name, init)

    def _stat(self, name: str, like: torch.Tensor) -> torch.Tensor:
        return self.get_buffer(name).to(like)[None, :, None, None, None]  # (C,) -> (1, C, 1, 1, 1)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self._stat("mean-of-means", x)) / self._stat("std-of-means", x)

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        return x * self._stat("std-of-means", x) + self._stat("mean-of-means", x)


class VideoVAE(nn.Module):
    """LTX-2 / LTX-2.3 causal video VAE. Either half may be left out (its keys are then not expected)."""

    def __init__(
        self,
        config: VideoVAEConfig,
        *,
        with_encoder: bool = True,
        with_decoder: bool = True,
        optional_stats: tuple[str, ...] = OPTIONAL_STATS,
    ) -> None:
        super().__init__()
        self.config = config
        if with_encoder:
            self.encoder = VideoEncoder(config)
        if with_decoder:
            self.decoder = VideoDecoder(config)
        self.per_channel_statistics = PerChannelStatistics(config.latent_channels, optional_stats)

    # ------------------------------------------------------------------ statistics
    def normalize(self, latent: torch.Tensor) -> torch.Tensor:
        """Raw latent means -> normalised latent, shape = (B, C, F, H, W) unchanged."""
        return self.per_channel_statistics.normalize(latent)

    def denormalize(self, latent: torch.Tensor) -> torch.Tensor:
        """Normalised latent -> raw latent means, shape = (B, C, F, H, W) unchanged."""
        return self.per_channel_statistics.denormalize(latent)

    # ------------------------------------------------------------------ encode / decode
    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels shape = (B, 3, 1+8k, H, W) in [-1, 1] -> normalised latent (B, 128, 1+k, H/32, W/32)."""
        self.check_pixels(pixels)
        dtype = self.encoder.conv_in.conv.weight.dtype
        means = self.encoder(pixels.to(dtype))
        return self.normalize(means).to(pixels.dtype)

    def prepare_latent(self, latent: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Normalised latent -> the decoder's input: [0.975·z + 0.025·ε if timestep-conditioned], un-normalised.

        Done once for a whole latent so tiled and progressive decodes see the same noise as a one-shot decode.
        """
        self.check_latent(latent)
        z = latent.to(self.decoder.conv_in.conv.weight.dtype)
        if self.config.timestep_conditioning:
            noise = torch.randn(z.shape, generator=generator, dtype=z.dtype, device=z.device)
            z = noise * DECODE_NOISE_SCALE + (1.0 - DECODE_NOISE_SCALE) * z
        return self.denormalize(z)

    def decode(
        self,
        latent: torch.Tensor,
        *,
        timestep: torch.Tensor | float | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Normalised latent (B, 128, F', h, w) -> pixels (B, 3, 8(F'-1)+1, 32h, 32w), in ``latent``'s dtype.

        ``timestep`` / ``generator`` only matter for a timestep-conditioned decoder (default timestep 0.05).
        """
        return self.decoder(self.prepare_latent(latent, generator), timestep).to(latent.dtype)

    # ------------------------------------------------------------------ shape rules
    def check_pixels(self, pixels: torch.Tensor) -> None:
        if pixels.dim() != 5 or pixels.shape[1] != self.config.in_channels:
            raise InputError(
                f"video must be [B, {self.config.in_channels}, F, H, W]; got {list(pixels.shape)}",
                code=codes.INPUT_VIDEO_SHAPE,
            )
        check_frames(pixels.shape[2])
        check_spatial(pixels.shape[3], pixels.shape[4])

    def check_latent(self, latent: torch.Tensor) -> None:
        c = self.config.latent_channels
        if latent.dim() != 5 or latent.shape[1] != c or min(latent.shape[2:]) < 1:
            raise InputError(
                f"video latent must be [B, {c}, F', h, w] with F', h, w >= 1; got {list(latent.shape)}",
                code=codes.INPUT_LATENT_SHAPE,
            )
        if self.config.decoder_padding_mode == "reflect" and min(latent.shape[3:]) < 2:
            raise InputError(
                f"reflect padding needs latent height and width >= 2 (>= {2 * VIDEO_SPACE_SCALE} px); "
                f"got {list(latent.shape[3:])}",
                code=codes.INPUT_SIZE_RULE,
            )

    @staticmethod
    def pixel_frames(latent_frames: int) -> int:
        """Pixel frames decoded from ``latent_frames``: 8(F'-1)+1."""
        return pixel_frames_of(latent_frames)
