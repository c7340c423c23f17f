"""BigVGAN-v2 pieces: SnakeBeta, anti-aliased Activation1d (Kaiser-windowed sinc x2 up / x2 down), AMPBlock1.

Key names follow the official state dict: ``acts1.K.act.{alpha,beta}``, ``acts1.K.upsample.filter``,
``acts1.K.downsample.lowpass.filter`` (persistent buffers, stored in the LTX-2.3 checkpoint; computed here at
construction so freshly built models are usable too).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

SNAKE_EPS = 1e-9


def kaiser_beta(half_size: int, transition: float) -> float:
    """Kaiser window beta for ``half_size`` taps per side and normalised transition width ``transition``
    (Kaiser's empirical attenuation formula A = 2.285 (N - 1) pi 4 dw + 7.95)."""
    atten = 2.285 * (half_size - 1) * math.pi * 4 * transition + 7.95
    if atten > 50.0:
        return 0.1102 * (atten - 8.7)
    if atten >= 21.0:
        return 0.5842 * (atten - 21.0) ** 0.4 + 0.07886 * (atten - 21.0)
    return 0.0


def kaiser_sinc_filter(cutoff: float, half_width: float, kernel_size: int) -> torch.Tensor:
    """Unit-DC-gain low-pass FIR, cutoff in cycles/sample, shape = (1, 1, kernel_size)."""
    half = kernel_size // 2
    window = torch.kaiser_window(
        kernel_size, periodic=False, beta=kaiser_beta(half, half_width), dtype=torch.float64
    )
    if kernel_size % 2 == 0:
        t = torch.arange(-half, half, dtype=torch.float64) + 0.5
    else:
        t = torch.arange(kernel_size, dtype=torch.float64) - half
    if cutoff == 0:
        return torch.zeros(1, 1, kernel_size)
    taps = 2 * cutoff * window * torch.special.sinc(2 * cutoff * t)
    return (taps / taps.sum()).to(torch.float32).view(1, 1, kernel_size)


class SnakeBeta(torch.nn.Module):
    """x + 1/(exp(beta) + eps) * sin(exp(alpha) * x)^2 per channel; log-scale alpha, beta; x (B, C, T)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.alpha = torch.nn.Parameter(torch.zeros(channels))
        self.beta = torch.nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha = torch.exp(self.alpha)[None, :, None]  # (1, C, 1)
        beta = torch.exp(self.beta)[None, :, None]
        return x + torch.sin(x * alpha).pow(2) / (beta + SNAKE_EPS)


class UpSample1d(torch.nn.Module):
    """x2 (``ratio``) band-limited upsampling: replicate pad, transposed depthwise conv, crop."""

    def __init__(self, ratio: int = 2, kernel_size: int = 12) -> None:
        super().__init__()
        self.ratio = ratio
        self.pad = kernel_size // ratio - 1
        self.crop_left = self.pad * ratio + (kernel_size - ratio) // 2
        self.crop_right = self.pad * ratio + (kernel_size - ratio + 1) // 2
        self.register_buffer("filter", kaiser_sinc_filter(0.5 / ratio, 0.6 / ratio, kernel_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """shape = (B, C, T) -> (B, C, ratio*T)."""
        c = x.shape[1]
        x = F.pad(x, (self.pad, self.pad), mode="replicate")
        w = self.filter.to(x.dtype).expand(c, -1, -1)  # (C, 1, K)
        y = self.ratio * F.conv_transpose1d(x, w, stride=self.ratio, groups=c)
        return y[..., self.crop_left : y.shape[-1] - self.crop_right]


class LowPassFilter1d(torch.nn.Module):
    """Depthwise FIR low-pass with replicate padding and ``stride`` (key ``filter``)."""

    def __init__(self, cutoff: float, half_width: float, stride: int, kernel_size: int) -> None:
        super().__init__()
        self.stride = stride
        self.pad_left = kernel_size // 2 - int(kernel_size % 2 == 0)
        self.pad_right = kernel_size // 2
        self.register_buffer("filter", kaiser_sinc_filter(cutoff, half_width, kernel_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        x = F.pad(x, (self.pad_left, self.pad_right), mode="replicate")
        return F.conv1d(x, self.filter.to(x.dtype).expand(c, -1, -1), stride=self.stride, groups=c)


class DownSample1d(torch.nn.Module):
    """x1/2 band-limited decimation: (B, C, T) -> (B, C, ceil(T/2))."""

    def __init__(self, ratio: int = 2, kernel_size: int = 12) -> None:
        super().__init__()
        self.lowpass = LowPassFilter1d(0.5 / ratio, 0.6 / ratio, ratio, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lowpass(x)


class Activation1d(torch.nn.Module):
    """Anti-aliased activation: upsample x2 -> SnakeBeta -> low-pass + decimate x2 (length preserved)."""

    def __init__(self, channels: int, ratio: int = 2, kernel_size: int = 12) -> None:
        super().__init__()
        self.act = SnakeBeta(channels)
        self.upsample = UpSample1d(ratio, kernel_size)
        self.downsample = DownSample1d(ratio, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(self.act(self.upsample(x)))


def same_padding(kernel_size: int, dilation: int) -> int:
    return (kernel_size * dilation - dilation) // 2


class AMPBlock1(torch.nn.Module):
    """Three residual units x += conv2(act2(conv1_dilated(act1(x)))), dilations (d1, d2, d3), same length."""

    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        self.convs1 = torch.nn.ModuleList(
            torch.nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=same_padding(kernel_size, d))
            for d in dilations
        )
        self.convs2 = torch.nn.ModuleList(
            torch.nn.Conv1d(channels, channels, kernel_size, padding=same_padding(kernel_size, 1))
            for _ in dilations
        )
        self.acts1 = torch.nn.ModuleList(Activation1d(channels) for _ in dilations)
        self.acts2 = torch.nn.ModuleList(Activation1d(channels) for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c1, c2, a1, a2 in zip(self.convs1, self.convs2, self.acts1, self.acts2, strict=True):
            x = x + c2(a2(c1(a1(x))))
        return x
