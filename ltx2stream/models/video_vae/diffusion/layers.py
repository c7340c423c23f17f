"""Layers of the LTX-2.5 diffusion video decoder (spec §1.5): 3-D neighbourhood attention with absolute RoPE,
SwiGLU, the pre-norm ``NABlock``, the AdaLN ``DiffusionNABlock``, the linear pixel-shuffle upsampler.

Tensors are channels-last ``(B, T, H, W, C)``. Attribute names are the module keys of the official decoder after
its load-time renames (fused ``qkv`` split into ``attn.qkv.to_q/to_k/to_v``, gates folded).

Neighbourhood attention (NATTEN ``na3d`` semantics, kernel (K_t, K_h, K_w), every axis at least its kernel):
query i along an axis attends to keys ``[s, s + K)`` with ``s = clamp(i − K//2, 0, L − K)`` (the window is
shifted inward at borders, never zero-padded). The portable path gathers each query's K_t·K_h·K_w keys and
runs a dense softmax over them in float32; it is exact NA (no mask approximation) and runs on any device.
``natten.na3d`` is used instead when installed and the tensors are on CUDA (same math, its own kernels).
"""

from __future__ import annotations

import importlib.util
import math

import torch
from einops import rearrange
from torch import nn

ROPE_BASE = 10000.0
NUM_MODULATION_CHUNKS = 7  # scale_msa, shift_msa, gate_msa, scale_mlp, shift_mlp, gate_mlp, gate_ctx
_NATTEN = importlib.util.find_spec("natten") is not None
GATHER_BUDGET = 1 << 24  # elements of gathered keys per NA call of the portable path


def default_rope_split(head_dim: int) -> tuple[int, int, int]:
    """Split of head_dim over (t, h, w): d_t = (hd/4 rounded down to even), the rest evenly (64 -> 16, 24, 24)."""
    d_t = (head_dim // 4) // 2 * 2
    d_hw = (head_dim - d_t) // 2
    if d_hw % 2:
        d_t -= 2
        d_hw = (head_dim - d_t) // 2
    return d_t, d_hw, d_hw


def rope_inv_freqs(dim: int) -> torch.Tensor:
    """1 / 10000^(i/dim) for i = 0, 2, ..., dim−2, computed in float64 then float32."""
    exponents = torch.arange(0, dim, 2, dtype=torch.float64) / dim
    return (1.0 / torch.pow(torch.tensor(ROPE_BASE, dtype=torch.float64), exponents)).float()


def rotate_axis(x: torch.Tensor, axis: int, inv: torch.Tensor) -> torch.Tensor:
    """Absolute RoPE along ``axis`` (1 = t, 2 = h, 3 = w) of x [B, T, H, W, heads, d]: adjacent (even, odd)
    pairs rotated by position · inv_freq, positions 0..L−1, in float32; result in x's dtype."""
    length = x.shape[axis]
    pos = torch.arange(length, dtype=torch.float32, device=x.device)
    shape = [1, 1, 1, 1, 1, inv.shape[0]]
    shape[axis] = length
    ang = (pos[:, None] * inv.to(x.device)[None, :]).reshape(shape)
    cos, sin = ang.cos(), ang.sin()
    pairs = x.float().reshape(*x.shape[:-1], x.shape[-1] // 2, 2)
    even, odd = pairs[..., 0], pairs[..., 1]
    out = torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1)
    return out.reshape(x.shape).to(x.dtype)


def window_starts(length: int, kernel: int, device: torch.device) -> torch.Tensor:
    """[L] first key index of each query's window along one axis (shifted inward at the borders)."""
    i = torch.arange(length, device=device)
    return (i - kernel // 2).clamp(0, length - kernel)


def neighbourhood_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kernel: tuple[int, int, int]
) -> torch.Tensor:
    """q, k, v [B, T, H, W, heads, d] (q already scaled) -> [B, T, H, W, heads, d]; softmax in float32."""
    if _NATTEN and q.is_cuda:  # optional fast kernels, same window rule
        import natten

        return natten.na3d(q, k, v, kernel_size=kernel, scale=1.0)
    b, t, h, w, heads, d = q.shape
    kt, kh, kw = kernel
    if t < kt or h < kh or w < kw:
        raise ValueError(f"neighbourhood attention needs (T, H, W) >= kernel {kernel}; got {(t, h, w)}")
    it = window_starts(t, kt, q.device)[:, None] + torch.arange(kt, device=q.device)  # [T, kt]
    ih = window_starts(h, kh, q.device)[:, None] + torch.arange(kh, device=q.device)  # [H, kh]
    iw = window_starts(w, kw, q.device)[:, None] + torch.arange(kw, device=q.device)  # [W, kw]
    per_frame = b * h * w * kt * kh * kw * heads * d  # gathered key elements of one query frame
    step = max(1, GATHER_BUDGET // max(per_frame, 1))
    out = torch.empty_like(q)
    for f0 in range(0, t, step):  # query frames in groups: the gathered keys stay under GATHER_BUDGET
        f1 = min(t, f0 + step)
        kf, vf = k[:, it[f0:f1]], v[:, it[f0:f1]]  # [B, f, kt, H, W, heads, d]
        kg = kf[:, :, :, ih][:, :, :, :, :, iw]  # [B, f, kt, H, kh, W, kw, heads, d]
        vg = vf[:, :, :, ih][:, :, :, :, :, iw]
        kg = rearrange(kg, "b f kt h kh w kw n d -> b f h w n (kt kh kw) d")
        vg = rearrange(vg, "b f kt h kh w kw n d -> b f h w n (kt kh kw) d")
        scores = torch.einsum("bfhwnd,bfhwnkd->bfhwnk", q[:, f0:f1].float(), kg.float())
        probs = scores.softmax(dim=-1)  # over the K_t·K_h·K_w neighbours
        out[:, f0:f1] = torch.einsum("bfhwnk,bfhwnkd->bfhwnd", probs, vg.float()).to(q.dtype)
    return out


class QKV(nn.Module):
    """Separate q/k/v projections (the file stores one fused ``qkv``; split into thirds at load)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.to_q = nn.Linear(dim, dim)
        self.to_k = nn.Linear(dim, dim)
        self.to_v = nn.Linear(dim, dim)


class NeighbourhoodAttention3D(nn.Module):
    """q/k/v -> per-head RMSNorm on q, k -> q·head_dim^-0.5 -> absolute 3-axis RoPE -> NA -> ``proj``."""

    def __init__(self, dim: int, kernel: tuple[int, int, int], head_dim: int) -> None:
        super().__init__()
        self.dim, self.head_dim, self.heads = dim, head_dim, dim // head_dim
        self.kernel = tuple(kernel)
        self.rope_split = default_rope_split(head_dim)
        self.qkv = QKV(dim)
        self.proj = nn.Linear(dim, dim)
        self.q_norm = nn.RMSNorm(head_dim, eps=1e-6)
        self.k_norm = nn.RMSNorm(head_dim, eps=1e-6)

    def _rope(self, x: torch.Tensor) -> torch.Tensor:
        d_t, d_h, d_w = self.rope_split
        parts = torch.split(x, [d_t, d_h, d_w], dim=-1)
        return torch.cat(
            [rotate_axis(p, axis, rope_inv_freqs(p.shape[-1])) for axis, p in enumerate(parts, start=1)],
            dim=-1,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, T, H, W, C] -> [B, T, H, W, C]."""
        split = "b t h w (n d) -> b t h w n d"
        q = rearrange(self.qkv.to_q(x), split, d=self.head_dim)
        k = rearrange(self.qkv.to_k(x), split, d=self.head_dim)
        v = rearrange(self.qkv.to_v(x), split, d=self.head_dim)
        q = self._rope(self.q_norm(q) * self.head_dim**-0.5)
        k = self._rope(self.k_norm(k))
        out = neighbourhood_attention(q, k, v, self.kernel)
        return self.proj(rearrange(out, "b t h w n d -> b t h w (n d)"))


class SwiGLU(nn.Module):
    """``w_down(silu(w_gate x) ⊙ w_up x)``, no biases; hidden = ceil16(4·C)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        hidden = (int(dim * 4.0) + 15) // 16 * 16
        self.w_up = nn.Linear(dim, hidden, bias=False)
        self.w_gate = nn.Linear(dim, hidden, bias=False)
        self.w_down = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w_down(nn.functional.silu(self.w_gate(x)) * self.w_up(x))


class NABlock(nn.Module):
    """Deterministic-stage block: ``x += attn(norm1 x)``; ``x += mlp(norm2 x)`` (RMSNorm eps 1e-6, with weight)."""

    def __init__(self, dim: int, kernel: tuple[int, int, int], head_dim: int) -> None:
        super().__init__()
        self.norm1 = nn.RMSNorm(dim, eps=1e-6)
        self.attn = NeighbourhoodAttention3D(dim, kernel, head_dim)
        self.norm2 = nn.RMSNorm(dim, eps=1e-6)
        self.mlp = SwiGLU(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class DiffusionNABlock(nn.Module):
    """Stage-5 block: ``x += context_proj(ctx)``; AdaLN-modulated attention and SwiGLU, no runtime gates
    (the file's gate vectors are folded into ``attn.proj``, ``mlp.w_down`` and ``context_proj`` at load)."""

    def __init__(self, dim: int, kernel: tuple[int, int, int], context_channels: int, head_dim: int) -> None:
        super().__init__()
        self.context_proj = nn.Linear(context_channels, dim)
        self.scale_shift_table = nn.Parameter(torch.zeros(NUM_MODULATION_CHUNKS, dim))
        self.norm1 = nn.RMSNorm(dim, eps=1e-6)
        self.attn = NeighbourhoodAttention3D(dim, kernel, head_dim)
        self.norm2 = nn.RMSNorm(dim, eps=1e-6)
        self.mlp = SwiGLU(dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor, modulation: torch.Tensor) -> torch.Tensor:
        """x [B, T, H, W, C], context [B, T, H, W, C_ctx], modulation [B, 7, C] (shared AdaLN output)."""
        mod = modulation + self.scale_shift_table.to(modulation.dtype)[None]  # [B, 7, C]
        scale_msa, shift_msa, _, scale_mlp, shift_mlp, _, _ = (
            m[:, None, None, None, :] for m in mod.unbind(dim=1)
        )  # each [B, 1, 1, 1, C]
        x = x + self.context_proj(context)
        x = x + self.attn(self.norm1(x) * (1.0 + scale_msa) + shift_msa)
        return x + self.mlp(self.norm2(x) * (1.0 + scale_mlp) + shift_mlp)


class LinearPixelShuffleUpsample(nn.Module):
    """Linear C -> prod(stride)·C/red, channels laid out (c, p_t, p_h, p_w); drops the first output frame
    when stride_t = 2 and the tensor holds the time origin (T -> 2T − 1)."""

    def __init__(self, channels: int, stride: tuple[int, int, int], reduction: int) -> None:
        super().__init__()
        self.stride = tuple(stride)
        self.proj = nn.Linear(channels, math.prod(stride) * channels // reduction)

    def forward(self, x: torch.Tensor, drop_leading_frame: bool = True) -> torch.Tensor:
        pt, ph, pw = self.stride
        x = rearrange(self.proj(x), "b t h w (c p1 p2 p3) -> b (t p1) (h p2) (w p3) c", p1=pt, p2=ph, p3=pw)
        return x[:, 1:] if pt == 2 and drop_leading_frame else x


class AdaLNZero(nn.Module):
    """``proj(silu(t_emb))`` -> 7 chunks [B, 7, C]."""

    def __init__(self, dim: int, t_emb_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(t_emb_dim, NUM_MODULATION_CHUNKS * dim)

    def forward(self, t_emb: torch.Tensor) -> torch.Tensor:
        out = self.proj(nn.functional.silu(t_emb))  # [B, 7·C]
        return out.view(out.shape[0], NUM_MODULATION_CHUNKS, -1)
