"""Latent upsampler building blocks: residual block, N-D pixel shuffle, binomial blur, rational resampler.

Attribute names follow the official module tree so official files load by their own keys
(``conv1``/``norm1``/``conv2``/``norm2``; ``conv`` + ``blur_down.kernel`` for the rational resampler).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from ltx2stream import codes
from ltx2stream.errors import ConfigError
from ltx2stream.models.upsampler.config import GROUPS


def conv_nd(dims: int, cin: int, cout: int) -> nn.Conv2d | nn.Conv3d:
    """3x3(x3) convolution with 'same' zero padding."""
    cls = nn.Conv2d if dims == 2 else nn.Conv3d
    return cls(cin, cout, kernel_size=3, padding=1)


class ResBlock(nn.Module):
    """conv1 -> GN -> SiLU -> conv2 -> GN -> SiLU(x + residual); channel count unchanged."""

    def __init__(self, channels: int, dims: int = 3) -> None:
        super().__init__()
        self.conv1 = conv_nd(dims, channels, channels)
        self.norm1 = nn.GroupNorm(GROUPS, channels)
        self.conv2 = conv_nd(dims, channels, channels)
        self.norm2 = nn.GroupNorm(GROUPS, channels)
        self.activation = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.activation(self.norm1(self.conv1(x)))
        h = self.norm2(self.conv2(h))
        out: torch.Tensor = self.activation(h + x)
        return out


class PixelShuffleND(nn.Module):
    """Move channel sub-blocks into space and/or time (no parameters).

    ``dims=1``: time, ``[B, C*p, F, H, W] -> [B, C, F*p, H, W]``; ``dims=2``: space,
    ``[N, C*p*q, H, W] -> [N, C, H*p, W*q]``; ``dims=3``: both,
    ``[B, C*p*q*r, F, H, W] -> [B, C, F*p, H*q, W*r]``.
    The channel index is ``c*(p*q*r) + i*(q*r) + j*r + k`` (same order as ``torch.nn.PixelShuffle``).
    """

    def __init__(self, dims: int, factor: int = 2) -> None:
        super().__init__()
        if dims not in (1, 2, 3):
            raise ConfigError(
                f"PixelShuffleND: dims={dims} must be 1, 2 or 3", code=codes.CONFIG_UNSUPPORTED_VALUE
            )
        self.dims = dims
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.factor
        if self.dims == 1:
            return rearrange(x, "b (c p) f h w -> b c (f p) h w", p=p)
        if self.dims == 2:
            return rearrange(x, "n (c p q) h w -> n c (h p) (w q)", p=p, q=p)
        return rearrange(x, "b (c p q r) f h w -> b c (f p) (h q) (w r)", p=p, q=p, r=p)


def binomial_kernel(size: int = 5) -> torch.Tensor:
    """Normalised separable binomial kernel (Pascal's triangle row ``size-1``), shape [1, 1, size, size]."""
    row = torch.tensor([math.comb(size - 1, i) for i in range(size)], dtype=torch.float64)
    k2d = torch.outer(row, row)
    return (k2d / k2d.sum()).to(torch.float32)[None, None]


class BlurDownsample(nn.Module):
    """Anti-aliased downsampling of H and W by an integer stride (depthwise 5x5 binomial blur, padding 2).

    The kernel is a persistent buffer (official key ``...blur_down.kernel`` [1, 1, 5, 5]); stride 1 is the
    identity. Output size ``floor((H - 1) / stride) + 1``.
    """

    kernel: torch.Tensor

    def __init__(self, stride: int, kernel_size: int = 5) -> None:
        super().__init__()
        self.stride = stride
        self.kernel_size = kernel_size
        self.register_buffer("kernel", binomial_kernel(kernel_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """shape [N, C, H, W] -> [N, C, ceil(H / stride), ceil(W / stride)]."""
        if self.stride == 1:
            return x
        c = x.shape[1]
        weight = self.kernel.to(x.dtype).expand(c, 1, self.kernel_size, self.kernel_size)  # [C, 1, k, k]
        return F.conv2d(x, weight, stride=self.stride, padding=self.kernel_size // 2, groups=c)


class SpatialRationalResampler(nn.Module):
    """Per-frame spatial scaling by num/den: Conv2d to num^2*C channels, shuffle by num, blur stride den."""

    def __init__(self, channels: int, num: int, den: int) -> None:
        super().__init__()
        self.num, self.den = num, den
        self.conv = nn.Conv2d(channels, num * num * channels, kernel_size=3, padding=1)
        self.pixel_shuffle = PixelShuffleND(2, num)
        self.blur_down = BlurDownsample(den)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """shape [B, C, F, H, W] -> [B, C, F, ceil(H*num/den), ceil(W*num/den)]."""
        b = x.shape[0]
        x = rearrange(x, "b c f h w -> (b f) c h w")  # frames folded into the batch
        x = self.blur_down(self.pixel_shuffle(self.conv(x)))  # [(B F), C, H', W']
        return rearrange(x, "(b f) c h w -> b c f h w", b=b)
