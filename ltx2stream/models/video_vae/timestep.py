"""Timestep embedding for the timestep-conditioned decoder (PixArt-α style, as in the official VAE).

sinusoid(t) with 256 channels, ``[cos, sin]`` order, frequencies exp(-ln(10000) · i / 128), computed in
float32; then Linear(256 -> D) -> SiLU -> Linear(D -> D). Keys:
``<name>.timestep_embedder.linear_{1,2}.{weight,bias}``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

SINUSOID_CHANNELS = 256


def sinusoidal_embedding(
    t: torch.Tensor, channels: int = SINUSOID_CHANNELS, max_period: float = 10000.0
) -> torch.Tensor:
    """``t`` shape = (N,) -> shape = (N, channels), ``[cos | sin]`` halves, float32."""
    half = channels // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    angles = t.float()[:, None] * freqs[None, :]  # (N, half)
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)


class TimestepMLP(nn.Module):
    """Linear -> SiLU -> Linear (the ``timestep_embedder`` submodule)."""

    def __init__(self, in_channels: int, dim: int) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(in_channels, dim)
        self.act = nn.SiLU()
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_2(self.act(self.linear_1(x)))


class TimestepEmbedder(nn.Module):
    """Scaled timestep (N,) -> embedding (N, dim) in ``dtype``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.timestep_embedder = TimestepMLP(SINUSOID_CHANNELS, dim)

    def forward(self, timestep: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return self.timestep_embedder(sinusoidal_embedding(timestep.flatten()).to(dtype))
