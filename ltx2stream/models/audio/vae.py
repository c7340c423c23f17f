"""Audio VAE: causal 2-D conv encoder/decoder, stereo log-mel [B, 2, T_mel, 64] <-> latent [B, 8, T_lat, 16].

Encoder: conv_in -> down levels (ResnetBlocks, Downsample except the last) -> mid -> PixelNorm/SiLU ->
conv_out (2*z channels with double_z; the first z are the mean) -> per-channel normalisation over the (c f)
token features.
T_lat = (T_mel - 1) // 4 + 1.
Decoder: un-normalise -> conv_in -> mid -> up levels (num_res_blocks+1 ResnetBlocks, Upsample except level 0)
-> PixelNorm/SiLU -> conv_out -> crop/zero-pad to T_mel = max(4*T_lat - 3, 1) and mel_bins.

Module layout == official keys under ``audio_vae.``: ``encoder.*``, ``decoder.*``,
``per_channel_statistics.*``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange

from ltx2stream import codes
from ltx2stream.errors import InputError
from ltx2stream.models.audio.config import AudioVAEConfig
from ltx2stream.models.audio.layers import (
    CausalConv2d,
    Downsample,
    Level,
    MidBlock,
    PixelNorm,
    ResnetBlock,
    Upsample,
)


class PerChannelStatistics(torch.nn.Module):
    """``mean-of-means`` / ``std-of-means`` over the (c f) features of an audio token (128 when released)."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.register_buffer("std-of-means", torch.ones(features))
        self.register_buffer("mean-of-means", torch.zeros(features))

    def _stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.get_buffer("mean-of-means").to(x), self.get_buffer("std-of-means").to(x)

    def normalize(self, latent: torch.Tensor) -> torch.Tensor:
        """shape = (B, C, T, F) -> same; (x - mean) / std on tokens (B, T, C*F)."""
        c = latent.shape[1]
        tokens = rearrange(latent, "b c t f -> b t (c f)")
        mean, std = self._stats(tokens)
        return rearrange((tokens - mean) / std, "b t (c f) -> b c t f", c=c)

    def un_normalize(self, latent: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`normalize`."""
        c = latent.shape[1]
        tokens = rearrange(latent, "b c t f -> b t (c f)")
        mean, std = self._stats(tokens)
        return rearrange(tokens * std + mean, "b t (c f) -> b c t f", c=c)


class AudioEncoder(torch.nn.Module):
    """Log-mel (B, 2, T_mel, F) -> raw latent moments (B, 2*z or z, (T_mel-1)//4+1, F/4)."""

    def __init__(self, cfg: AudioVAEConfig) -> None:
        super().__init__()
        self.conv_in = CausalConv2d(cfg.in_channels, cfg.ch, 3)
        mults = (1, *cfg.ch_mult)
        levels = []
        for i, mult in enumerate(cfg.ch_mult):
            c_in, c_out = cfg.ch * mults[i], cfg.ch * mult
            blocks = [ResnetBlock(c_in if j == 0 else c_out, c_out) for j in range(cfg.num_res_blocks)]
            last = i == len(cfg.ch_mult) - 1
            levels.append(Level(blocks, None if last else Downsample(c_out), "downsample"))
        self.down = torch.nn.ModuleList(levels)
        top = cfg.ch * cfg.ch_mult[-1]
        self.mid = MidBlock(top)
        self.norm_out = PixelNorm()
        self.conv_out = CausalConv2d(top, 2 * cfg.z_channels if cfg.double_z else cfg.z_channels, 3)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(mel)
        for level in self.down:
            h = level(h)
        h = self.mid(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class AudioDecoderNet(torch.nn.Module):
    """Un-normalised latent (B, z, T_lat, F/4) -> log-mel before the final crop (B, 2, 4*T_lat-3, F)."""

    def __init__(self, cfg: AudioVAEConfig) -> None:
        super().__init__()
        top = cfg.ch * cfg.ch_mult[-1]
        self.conv_in = CausalConv2d(cfg.z_channels, top, 3)
        self.mid = MidBlock(top)
        levels: list[Level] = []
        block_in = top
        for i in reversed(range(len(cfg.ch_mult))):
            c_out = cfg.ch * cfg.ch_mult[i]
            blocks = [
                ResnetBlock(block_in if j == 0 else c_out, c_out) for j in range(cfg.num_res_blocks + 1)
            ]
            block_in = c_out
            levels.insert(0, Level(blocks, None if i == 0 else Upsample(c_out), "upsample"))
        self.up = torch.nn.ModuleList(levels)  # up[0] is the full-resolution level, run last
        self.norm_out = PixelNorm()
        self.conv_out = CausalConv2d(block_in, cfg.out_ch, 3)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.conv_in(z))
        for level in reversed(self.up):
            h = level(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class AudioVAE(torch.nn.Module):
    """Encoder + decoder + shared statistics (``encoder.*``, ``decoder.*``, ``per_channel_statistics.*``)."""

    def __init__(self, cfg: AudioVAEConfig, *, with_encoder: bool = True, with_decoder: bool = True) -> None:
        super().__init__()
        self.cfg = cfg
        if with_encoder:
            self.encoder = AudioEncoder(cfg)
        if with_decoder:
            self.decoder = AudioDecoderNet(cfg)
        self.per_channel_statistics = PerChannelStatistics(cfg.latent_features)

    def latent_frames(self, mel_frames: int) -> int:
        """T_lat for an encoder input of ``mel_frames`` rows: each Downsample maps T -> (T-1)//2 + 1."""
        t = mel_frames
        for _ in range(len(self.cfg.ch_mult) - 1):
            t = (t - 1) // 2 + 1
        return t

    def encode(self, mel: torch.Tensor) -> torch.Tensor:
        """Normalised latent: shape = (B, 2, T_mel, mel_bins) -> (B, z_channels, T_lat, latent_bins)."""
        c = self.cfg
        if mel.dim() != 4 or mel.shape[1] != c.in_channels or mel.shape[3] != c.mel_bins:
            raise InputError(
                f"mel must be [B, {c.in_channels}, T, {c.mel_bins}]; got {tuple(mel.shape)}",
                code=codes.INPUT_MEL_SHAPE,
            )
        moments = self.encoder(mel)
        mean = moments[:, : c.z_channels]  # (B, z, T_lat, F_lat): first half = mean when double_z
        return self.per_channel_statistics.normalize(mean)

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Log-mel: shape = (B, z_channels, T_lat, latent_bins) -> (B, out_ch, max(4*T_lat-3, 1),
        mel_bins)."""
        c = self.cfg
        if latent.dim() != 4 or latent.shape[1] != c.z_channels or latent.shape[3] != c.latent_bins:
            raise InputError(
                f"audio latent must be [B, {c.z_channels}, T, {c.latent_bins}]; got {tuple(latent.shape)}",
                code=codes.INPUT_AUDIO_LATENT_SHAPE,
            )
        h = self.decoder(self.per_channel_statistics.un_normalize(latent))
        return _fit(h, c.mel_frames_for_latents(latent.shape[2]), c.mel_bins)


def _fit(x: torch.Tensor, frames: int, bins: int) -> torch.Tensor:
    """Crop, then zero-pad at the end, to (B, C, frames, bins)."""
    x = x[:, :, :frames, :bins]
    return F.pad(x, (0, bins - x.shape[3], 0, frames - x.shape[2]))
