"""Audio VAE building blocks: causal 2-D convs over (time, mel), PixelNorm, ResnetBlock, down/up sampling.

Tensors are [B, C, T, F] (time is the "height" axis). Causal along time: a k x k conv sees k-1 past rows and
no future rows; frequency is padded symmetrically. Key names follow the official state dict (``conv.weight``,
``nin_shortcut.conv.weight``, ``downsample.conv.weight``, ``upsample.conv.conv.weight``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class CausalConv2d(torch.nn.Module):
    """Conv2d with (k-1) zero rows of padding before the time axis and symmetric frequency padding."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        p = kernel_size - 1
        self.padding = (p // 2, p - p // 2, p, 0)  # (f_left, f_right, t_top, t_bottom)
        self.conv = torch.nn.Conv2d(in_channels, out_channels, kernel_size, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """shape = (B, C_in, T, F) -> (B, C_out, T, F)."""
        return self.conv(F.pad(x, self.padding))


class PixelNorm(torch.nn.Module):
    """x / sqrt(mean_c(x^2) + eps): RMS over channels at every (t, f) position; no parameters."""

    def __init__(self, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(torch.mean(x * x, dim=1, keepdim=True) + self.eps)


class ResnetBlock(torch.nn.Module):
    """norm1 -> SiLU -> conv1 -> norm2 -> SiLU -> conv2, plus a 1x1 ``nin_shortcut`` when channels change."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.norm1 = PixelNorm()
        self.conv1 = CausalConv2d(in_channels, out_channels, 3)
        self.norm2 = PixelNorm()
        self.conv2 = CausalConv2d(out_channels, out_channels, 3)
        if in_channels != out_channels:
            self.nin_shortcut = CausalConv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        skip = self.nin_shortcut(x) if hasattr(self, "nin_shortcut") else x
        return skip + h


class Downsample(torch.nn.Module):
    """Stride-2 3x3 conv after padding 2 rows before time and 1 column after frequency: T -> (T-1)//2 + 1."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(channels, channels, kernel_size=3, stride=2, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 2, 0)))


class Upsample(torch.nn.Module):
    """Nearest x2 on both axes, causal 3x3 conv, drop the first time row: T -> 2T - 1 (1 + 2n lengths)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = CausalConv2d(channels, channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return self.conv(x)[:, :, 1:, :]


class MidBlock(torch.nn.Module):
    """Two ResnetBlocks (the official ``attn_1`` is Identity for the released configs)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.block_1 = ResnetBlock(channels, channels)
        self.block_2 = ResnetBlock(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block_2(self.block_1(x))


class Level(torch.nn.Module):
    """One resolution level: ``block`` (ResnetBlocks) and an optional ``downsample``/``upsample``."""

    def __init__(self, blocks: list[ResnetBlock], resample: torch.nn.Module | None, name: str) -> None:
        super().__init__()
        self.block = torch.nn.ModuleList(blocks)
        self.resample_name = name
        if resample is not None:
            self.add_module(name, resample)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for blk in self.block:
            x = blk(x)
        resample = getattr(self, self.resample_name, None)
        return resample(x) if resample is not None else x
