"""The sinusoidal timestep embedding shared by the DiT's AdaLN and the timestep-conditioned video decoder.

sinusoid(t): 256 channels, ``[cos, sin]`` order (flip_sin_to_cos), frequencies exp(-ln(10000) · i / 128)
(shift 0), computed in float32; then Linear(256 -> D) -> SiLU -> Linear(D -> D).
Keys: ``<name>.timestep_embedder.linear_{1,2}.{weight,bias}``.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import nn

TIMESTEP_CHANNELS = 256
MAX_PERIOD = 10000


@functools.lru_cache(maxsize=8)
def _frequencies(half: int, device: torch.device) -> torch.Tensor:
    """exp(-ln(10000) · i / half), float32 [half] (a constant: computed once per size and device)."""
    with torch.inference_mode(False), torch.no_grad():  # a normal tensor, usable inside and outside inference
        exponent = -math.log(MAX_PERIOD) * torch.arange(half, dtype=torch.float32, device=device) / half
        return torch.exp(exponent)


def timestep_sinusoid(t: torch.Tensor, channels: int = TIMESTEP_CHANNELS) -> torch.Tensor:
    """[N] -> [N, channels] float32, order [cos, sin] (flip_sin_to_cos), frequency shift 0."""
    half = channels // 2
    args = t.float()[:, None] * _frequencies(half, t.device)[None, :]  # [N, half]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class TimestepEmbedding(nn.Module):
    """Linear(256 -> D) -> SiLU -> Linear(D -> D); keys ``linear_1``, ``linear_2``."""

    def __init__(self, in_channels: int, dim: int) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(in_channels, dim)
        self.act = nn.SiLU()
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_2(self.act(self.linear_1(x)))


class CombinedTimestepEmbedding(nn.Module):
    """Sinusoid + MLP under the official key path ``timestep_embedder.*``; any-shape t is flattened to [N]."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.timestep_embedder = TimestepEmbedding(TIMESTEP_CHANNELS, dim)

    def forward(self, t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return self.timestep_embedder(timestep_sinusoid(t.flatten()).to(dtype))
