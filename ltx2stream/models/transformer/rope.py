"""Rotary position embedding of the LTX-2 DiT (spec §1.7).

Frequencies: for an embedding of width ``dim`` over ``n`` position axes, ``m = dim // (2n)`` frequencies
``w_k = (pi/2) * theta^(k/(m-1))`` (a log-spaced grid from pi/2 to pi/2*theta), computed in float64 when the
checkpoint says ``frequencies_precision: float64`` and then cast to float32.

Angles: a position ``p_i`` (the midpoint of its ``[start, end)`` bounds) normalised by ``max_pos_i`` gives
``angle = w_k * (2 * p_i / max_pos_i - 1)``; the angle vector is laid out frequency-major, axis-minor
(``[w0*t, w0*h, w0*w, w1*t, ...]``).

"split" layout (the released checkpoints): the ``dim/2`` angles (front-padded with angle 0: cos 1, sin 0)
are cut into ``heads`` consecutive slices; inside a head of size ``d`` element ``j`` rotates with element
``j + d/2``. "interleaved" (legacy): cos/sin repeated over adjacent pairs ``(2j, 2j+1)`` of the full width.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from einops import rearrange

from ltx2stream import codes
from ltx2stream.errors import InputError


class RopeTable(NamedTuple):
    """cos / sin tables: split -> [B, H, T, d/2]; interleaved -> [B, T, dim].

    ``rotation`` (split only, optional): the same values laid out at full width for the fast path of
    ``apply_rope``: ``(C, S)`` each [B, T, H*d] with, per head, ``C = [cos, cos]`` and ``S = [-sin, sin]``.
    """

    cos: torch.Tensor
    sin: torch.Tensor
    rope_type: str
    rotation: tuple[torch.Tensor, torch.Tensor] | None = None


def with_rotation(table: RopeTable) -> RopeTable:
    """``table`` with its full-width ``rotation`` layout (split tables; others are returned as they are)."""
    if table.rope_type != "split":
        return table
    full_cos = (
        torch.stack([table.cos, table.cos], dim=-2).transpose(1, 2).flatten(2)
    )  # b h t r f -> b t (h r f)
    full_sin = torch.stack([-table.sin, table.sin], dim=-2).transpose(1, 2).flatten(2)
    return table._replace(rotation=(full_cos, full_sin))


@functools.lru_cache(maxsize=16)
def freq_grid(theta: float, n_axes: int, dim: int, double_precision: bool) -> torch.Tensor:
    """The ``m = dim // (2 n_axes)`` RoPE frequencies ``(pi/2) * theta^(k/(m-1))`` as float32 [m]."""
    m = dim // (2 * n_axes)
    if double_precision:
        exponents = np.linspace(0.0, 1.0, m, dtype=np.float64)
        return torch.tensor(np.power(theta, exponents) * math.pi / 2, dtype=torch.float32)
    exponents_32 = torch.linspace(0.0, 1.0, m, dtype=torch.float32)
    return (theta**exponents_32) * (math.pi / 2)


def rope_angles(
    positions: torch.Tensor, max_pos: Sequence[int], grid: torch.Tensor, *, use_midpoints: bool = True
) -> torch.Tensor:
    """Angles [B, T, m*n] (frequency-major, axis-minor) from positions [B, n, T, 2] ([start, end) bounds)."""
    if positions.ndim != 4 or positions.shape[-1] != 2 or positions.shape[1] != len(max_pos):
        raise InputError(
            f"positions must be [B, {len(max_pos)}, T, 2] ([start, end) bounds per axis); "
            f"got {tuple(positions.shape)}",
            code=codes.INPUT_POSITIONS_SHAPE,
        )
    points = (
        (positions[..., 0] + positions[..., 1]) / 2.0 if use_midpoints else positions[..., 0]
    )  # [B, n, T]
    scale = torch.tensor([float(v) for v in max_pos], dtype=points.dtype, device=points.device)
    fractional = points / scale[None, :, None]  # [B, n, T] in [0, 1] over the trained range
    grid = grid.to(device=points.device)
    angles = grid[None, None, :, None] * (
        2.0 * fractional.transpose(1, 2)[:, :, None, :] - 1.0
    )  # [B, T, m, n]
    return angles.flatten(2)  # [B, T, m, n] -> [B, T, m*n]


def rope_table(
    positions: torch.Tensor,
    *,
    dim: int,
    heads: int,
    max_pos: Sequence[int],
    theta: float,
    rope_type: str,
    double_precision: bool,
    dtype: torch.dtype,
    use_midpoints: bool = True,
) -> RopeTable:
    """cos/sin tables for queries/keys of width ``dim`` split over ``heads`` heads, cast to ``dtype``."""
    n_axes = positions.shape[1]
    grid = freq_grid(float(theta), n_axes, dim, double_precision)
    angles = rope_angles(positions.float(), max_pos, grid, use_midpoints=use_midpoints)  # [B, T, m*n]
    cos, sin = angles.cos(), angles.sin()
    if rope_type == "split":
        pad = dim // 2 - angles.shape[-1]
        cos, sin = _front_pad(cos, pad, 1.0), _front_pad(sin, pad, 0.0)
        cos = rearrange(cos, "b t (h f) -> b h t f", h=heads)  # [B, T, dim/2] -> [B, H, T, d/2]
        sin = rearrange(sin, "b t (h f) -> b h t f", h=heads)
    else:
        pad = dim % (2 * n_axes)
        cos = _front_pad(cos.repeat_interleave(2, dim=-1), pad, 1.0)  # [B, T, 2*m*n] -> [B, T, dim]
        sin = _front_pad(sin.repeat_interleave(2, dim=-1), pad, 0.0)
    return RopeTable(cos.to(dtype), sin.to(dtype), rope_type)


def _front_pad(t: torch.Tensor, pad: int, value: float) -> torch.Tensor:
    if pad == 0:
        return t
    return torch.cat([torch.full_like(t[..., :pad], value), t], dim=-1)


def apply_rope(x: torch.Tensor, table: RopeTable) -> torch.Tensor:
    """Rotate ``x`` [B, T, H*d] with ``table``; returns the same shape and dtype."""
    if table.rotation is not None:
        return _apply_rotation(x, *table.rotation, heads=table.cos.shape[1])
    if table.rope_type == "split":
        return _apply_split(x, table.cos, table.sin)
    return _apply_interleaved(x, table.cos, table.sin)


def _apply_rotation(
    x: torch.Tensor, full_cos: torch.Tensor, full_sin: torch.Tensor, heads: int
) -> torch.Tensor:
    """The split rotation in 4 ops: ``x*C + swap(x)*S`` with swap = (lo, hi) -> (hi, lo) in each head.

    Bit-identical to ``_apply_split``: the same products, and ``addcmul`` fuses the same multiply-add
    (lo*cos + hi*(-sin) is lo*cos - hi*sin exactly: negation is exact).
    """
    swapped = x.unflatten(-1, (heads, 2, -1)).flip(-2).flatten(2)  # b t (h r f) -> b t (h r' f), r' reversed
    return torch.addcmul(x * full_cos, swapped, full_sin)


def _apply_split(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    heads = cos.shape[1]
    # Plain views instead of einops on this per-call path (same strides).
    xh = x.unflatten(-1, (heads, 2, -1)).transpose(1, 2)  # b t (h r f) -> b h t r f, [B, H, T, 2, d/2]
    lo, hi = xh[..., 0, :], xh[..., 1, :]
    out_lo = torch.addcmul(lo * cos, hi, sin, value=-1.0)  # lo*cos - hi*sin
    out_hi = torch.addcmul(hi * cos, lo, sin)  # hi*cos + lo*sin
    return torch.stack([out_lo, out_hi], dim=-2).transpose(1, 2).flatten(2)  # b h t r f -> b t (h r f)


def _apply_interleaved(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    pairs = rearrange(x, "b t (p r) -> b t p r", r=2)  # [B, T, D] -> [B, T, D/2, 2]
    rotated = torch.stack([-pairs[..., 1], pairs[..., 0]], dim=-1).flatten(2)  # (a, b) -> (-b, a); [B, T, D]
    return x * cos + rotated * sin
