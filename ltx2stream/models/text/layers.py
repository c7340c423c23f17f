"""Building blocks of the embeddings connector: 1-D split RoPE, attention with q/k RMSNorm (+ optional
per-head gate), GELU-tanh feed-forward. Parameter names follow the official checkpoints
(``attn1.{to_q,to_k,to_v,to_out.0,q_norm,k_norm,to_gate_logits}``, ``ff.net.0.proj``, ``ff.net.2``).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


def rms_norm(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Weightless RMSNorm over the last dimension (the connector's block and final norms)."""
    return F.rms_norm(x, (x.shape[-1],), eps=eps)


def rope_frequencies(dim: int, *, theta: float = 10000.0, double_precision: bool = True) -> torch.Tensor:
    """Frequency grid of a 1-D RoPE over ``dim`` channels: ``(pi/2) * theta ** linspace(0, 1, dim // 2)``.

    Computed in float64 (numpy) when ``double_precision`` (the checkpoints' ``frequencies_precision:
    float64``), else in float32 as the official torch path does; returned as float32.
    """
    count = dim // 2
    if double_precision:
        grid = np.power(theta, np.linspace(0.0, 1.0, count, dtype=np.float64)) * (math.pi / 2)
        return torch.tensor(grid, dtype=torch.float32)
    grid32 = theta ** torch.linspace(0.0, 1.0, count, dtype=torch.float32)
    return grid32 * (math.pi / 2)


def rope_1d(
    length: int,
    *,
    dim: int,
    heads: int,
    max_pos: int,
    theta: float = 10000.0,
    double_precision: bool = True,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos / sin of the connector's split RoPE, each [1, heads, length, dim / (2 * heads)].

    Position of token i is ``i / max_pos`` (no midpoint), angle_k = omega_k * (2 * i / max_pos - 1). With one
    axis the grid fills dim / 2 exactly (no cos=1 padding); heads take consecutive slices of it.
    """
    omega = rope_frequencies(dim, theta=theta, double_precision=double_precision).to(device)
    pos = torch.arange(length, dtype=torch.float32, device=device) / max_pos
    angles = (pos[:, None] * 2 - 1) * omega[None, :]  # [T, dim/2]
    angles = rearrange(angles, "t (h f) -> 1 h t f", h=heads)  # [T, dim/2] -> [1, H, T, dim/(2H)]
    return angles.cos().to(dtype), angles.sin().to(dtype)


def apply_split_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each head's element j with element j + d/2 ("split" / rotate-half); x is [B, H, T, d]."""
    lo, hi = x.chunk(2, dim=-1)  # [B, H, T, d] -> 2 x [B, H, T, d/2]
    # x*cos rounded first, then one fused multiply-add: the official op order, so bf16 results agree bit for bit
    return torch.cat((torch.addcmul(lo * cos, hi, sin, value=-1), torch.addcmul(hi * cos, lo, sin)), dim=-1)


class Attention(nn.Module):
    """Self-attention with biased projections, RMSNorm of q and k across all heads (learnable weight), split
    RoPE on q and k and, for LTX-2.3, a per-head gate ``2 * sigmoid(to_gate_logits(x))`` before ``to_out``."""

    def __init__(
        self, dim: int, heads: int, head_dim: int, *, gated: bool = False, eps: float = 1e-6
    ) -> None:
        super().__init__()
        inner = heads * head_dim
        self.heads = heads
        self.to_q = nn.Linear(dim, inner)
        self.to_k = nn.Linear(dim, inner)
        self.to_v = nn.Linear(dim, inner)
        self.q_norm = nn.RMSNorm(inner, eps=eps)
        self.k_norm = nn.RMSNorm(inner, eps=eps)
        self.to_gate_logits = nn.Linear(dim, heads) if gated else None
        self.to_out = nn.Sequential(nn.Linear(inner, dim), nn.Identity())

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        q = self.q_norm(self.to_q(x))
        k = self.k_norm(self.to_k(x))
        v = self.to_v(x)
        q, k, v = (
            rearrange(t, "b t (h d) -> b h t d", h=self.heads) for t in (q, k, v)
        )  # [B,T,HD]->[B,H,T,D]
        q, k = apply_split_rope(q, *rope), apply_split_rope(k, *rope)
        out = F.scaled_dot_product_attention(q, k, v)  # bidirectional, no mask (pads became registers)
        if self.to_gate_logits is not None:
            gate = 2.0 * torch.sigmoid(self.to_gate_logits(x))  # [B, T, H]
            out = out * rearrange(gate, "b t h -> b h t 1")
        return self.to_out(rearrange(out, "b h t d -> b t (h d)"))  # [B, H, T, D] -> [B, T, H*D]


class GELUProj(nn.Module):
    """``Linear`` then GELU (tanh approximation); the ``ff.net.0`` of the official FeedForward."""

    def __init__(self, dim_in: int, dim_out: int, *, bias: bool = True) -> None:
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.proj(x), approximate="tanh")


class FeedForward(nn.Module):
    """``net = [GELUProj(dim -> 4 dim), Identity, Linear(4 dim -> dim)]``."""

    def __init__(self, dim: int, *, mult: int = 4, bias: bool = True) -> None:
        super().__init__()
        self.net = nn.Sequential(
            GELUProj(dim, dim * mult, bias=bias), nn.Identity(), nn.Linear(dim * mult, dim, bias=bias)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
