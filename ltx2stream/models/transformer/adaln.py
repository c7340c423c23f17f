"""AdaLN-single timestep conditioning (PixArt-alpha style, spec §1.4) and the modulation-table helpers.

``AdaLayerNormSingle(D, n)``: ``t`` (sigma * 1000, any shape, flattened) -> 256-channel sinusoid ([cos, sin],
``freq_k = exp(-ln(10000) k / 128)``) -> ``emb.timestep_embedder`` (Linear 256->D, SiLU, Linear D->D) = the
*embedded timestep* ``e`` -> ``linear(SiLU(e))`` = ``n`` modulation vectors of width D.

A block reads its modulation as ``table[rows] + adaln_out.view(B, T, n, D)[:, :, rows]`` (per-token when the
timesteps are per token, broadcast over tokens when they are one scalar per sample).
"""

from __future__ import annotations

import torch
from torch import nn

from ltx2stream.models.timestep import CombinedTimestepEmbedding, timestep_sinusoid


def timestep_features(scaled_sigma: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The sinusoid every AdaLN embeds: any shape -> [N, 256] in ``dtype`` (as ``CombinedTimestepEmbedding``)."""
    return timestep_sinusoid(scaled_sigma.reshape(-1)).to(dtype)


class AdaLayerNormSingle(nn.Module):
    """``n`` modulation vectors of width ``dim`` from scaled sigmas; also returns the embedded timestep."""

    def __init__(self, dim: int, coefficient: int) -> None:
        super().__init__()
        self.coefficient = coefficient
        self.emb = CombinedTimestepEmbedding(dim)
        self.silu = nn.SiLU()
        self.linear = nn.Linear(dim, coefficient * dim)

    def forward(
        self, scaled_sigma: torch.Tensor, dtype: torch.dtype, *, features: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, T] or [B] -> (modulation [B, T|1, n*D], embedded timestep [B, T|1, D]).

        ``features``: ``timestep_features(scaled_sigma, dtype)`` when the caller already has them (two AdaLNs
        of one stream read the same sigmas).
        """
        batch = scaled_sigma.shape[0]
        if features is None:
            features = timestep_features(scaled_sigma, dtype)
        embedded = self.emb.timestep_embedder(features)  # [B*T, D]
        modulation = self.linear(self.silu(embedded))  # [B*T, n*D]
        return modulation.view(batch, -1, modulation.shape[-1]), embedded.view(batch, -1, embedded.shape[-1])


def ada_rows(
    table: nn.Parameter | torch.Tensor, modulation: torch.Tensor, rows: slice
) -> tuple[torch.Tensor, ...]:
    """Rows ``rows`` of ``table`` [n, D] + the matching rows of ``modulation`` [B, T, n*D]; each [B, T, D]."""
    n, dim = table.shape
    mod = modulation.view(modulation.shape[0], modulation.shape[1], n, dim)[
        :, :, rows
    ]  # [B, T, n*D] -> [B, T, r, D]
    values = table[rows].to(device=mod.device, dtype=mod.dtype)[None, None] + mod
    return values.unbind(dim=2)


def ada_all(table: nn.Parameter | torch.Tensor, modulation: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Every row of ``table`` [n, D] + ``modulation`` [B, T, n*D] at once; n tensors [B, T, D].

    The same sums as ``ada_rows`` row by row (one add instead of one per group of rows).
    """
    n, dim = table.shape
    mod = modulation.view(modulation.shape[0], modulation.shape[1], n, dim)  # [B, T, n*D] -> [B, T, n, D]
    return (table.to(device=mod.device, dtype=mod.dtype)[None, None] + mod).unbind(dim=2)


def modulate(x_normed: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """``x * (1 + scale) + shift``."""
    return x_normed * (1 + scale) + shift


def rms(x: torch.Tensor, eps: float) -> torch.Tensor:
    """Weightless RMSNorm over the last dim (every block norm of the DiT)."""
    return torch.nn.functional.rms_norm(x, (x.shape[-1],), eps=eps)
