"""Building blocks of the causal video VAE: CausalConv3d, PixelNorm, ResnetBlock3D, UNetMidBlock3D.

The down/up-sampling stages (SpaceToDepthDownsample, DepthToSpaceUpsample) and the pixel (un)patchify live in
``sampling.py``. Every temporal operation here is a kernel-3 convolution whose temporal padding is done by
*replicating frames* (never zeros): causal -> two copies of the first frame in front; non-causal -> one copy
of the first frame in front and one of the last frame behind. Everything else is per frame (PixelNorm, SiLU,
AdaLN), except GroupNorm which normalises over all frames (only used by ``norm_layer=group_norm`` and
``res_x_y``).

Module attribute names follow the official key names (``conv1.conv.weight``, ``norm3``, ``conv_shortcut``,
``scale_shift_table``, ``time_embedder``...).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ltx2stream.models.timestep import CombinedTimestepEmbedding as TimestepEmbedder

GROUPS = 32  # GroupNorm groups for norm_layer=group_norm (official default)

# Stride-1 convolutions with at most this many input channels run as one 2-D convolution over the frames, the
# temporal taps stacked along the channels (``CausalConv3d.frames_2d``): on CPU, torch's 3-D kernel on few
# channels is 2-5x slower than the same sums done so (the pocket decoder's 8-, 16- and 32-channel levels;
# bench/bench_vae_conv.py); from ~48 channels on (the encoders) the 3-D kernel is as fast or faster.
FRAMES_2D_MAX_CHANNELS = 32


class CausalConv3d(nn.Module):
    """3-D conv, spatial padding k//2 with ``padding_mode``, temporal padding by frame replication.

    ``forward(x, causal)``: x shape = (B, C, F, H, W) -> (B, C', F', H', W'); with stride 1, F' = F.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: tuple[int, int, int] = (1, 1, 1),
        padding_mode: str = "zeros",
    ) -> None:
        super().__init__()
        self.kernel_t = kernel_size
        pad = kernel_size // 2
        self.conv = nn.Conv3d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=(0, pad, pad),
            padding_mode=padding_mode,
        )

    def time_padding(self, causal: bool) -> tuple[int, int]:
        """Frames replicated (in front, behind)."""
        k = self.kernel_t - 1
        return (k, 0) if causal else (k // 2, k // 2)

    def forward(self, x: torch.Tensor, causal: bool = True) -> torch.Tensor:
        if x.shape[2] == 1 and self.conv.stride[0] == 1:
            return self.one_frame(x)
        front, back = self.time_padding(causal)
        parts = [x[:, :, :1]] * front + [x] + [x[:, :, -1:]] * back
        return self.padded(torch.cat(parts, dim=2))  # [B, C, front+F+back, H, W] -> [B, C', F', H', W']

    def padded(self, x: torch.Tensor) -> torch.Tensor:
        """The convolution of an input already padded in time (``forward``'s second half; the streaming decoder
        pads piece by piece): through ``frames_2d`` for a stride-1 convolution on at most
        ``FRAMES_2D_MAX_CHANNELS`` inputs, else torch's 3-D kernel."""
        if self.conv.stride == (1, 1, 1) and self.conv.in_channels <= FRAMES_2D_MAX_CHANNELS:
            return self.frames_2d(x)
        return self.conv(x)

    def frames_2d(self, x: torch.Tensor) -> torch.Tensor:
        """The stride-1 convolution of the time-padded ``x`` [B, C, F + kt - 1, H, W] as 2-D convolutions over its
        frames: the same products, summed in another order (float32 rounding apart, equal to ``self.conv``)."""
        conv = self.conv
        b, c, padded_frames, h, w = x.shape
        kt = conv.kernel_size[0]
        frames = padded_frames - kt + 1
        pad = conv.padding[1]
        flat = x.transpose(1, 2).reshape(b * padded_frames, c, h, w)
        if conv.padding_mode != "zeros" and pad:
            flat = F.pad(flat, (pad, pad, pad, pad), mode=conv.padding_mode)
            pad = 0
        grid = flat.view(b, padded_frames, c, *flat.shape[2:])
        stacked = torch.cat([grid[:, k : k + frames] for k in range(kt)], dim=2)  # [B, F, kt C, H, W]
        weight = conv.weight.transpose(1, 2).reshape(conv.out_channels, kt * c, *conv.kernel_size[1:])
        out = F.conv2d(stacked.flatten(0, 1), weight, conv.bias, padding=pad)
        out = out.view(b, frames, *out.shape[1:])
        return out.transpose(1, 2).contiguous()  # [B, F, C', H, W] -> [B, C', F, H, W]

    def one_frame(self, x: torch.Tensor) -> torch.Tensor:
        """A one-frame input: every temporal tap sees the same replicated frame (causal or not), so the kernel
        folds over time into one 2-D convolution with the summed taps: the same sums in another order, about
        ``kernel_t`` times less work (the anchor and image encodes of every segment are one frame)."""
        conv = self.conv
        weight = conv.weight.sum(dim=2)  # [C', C, kt, kh, kw] -> [C', C, kh, kw]
        frame = x[:, :, 0]
        pad = conv.padding[1]
        if conv.padding_mode != "zeros" and pad:
            frame = F.pad(frame, (pad, pad, pad, pad), mode=conv.padding_mode)
            pad = 0
        out = F.conv2d(frame, weight, conv.bias, stride=conv.stride[1:], padding=pad)
        return out[:, :, None]  # [B, C', H', W'] -> [B, C', 1, H', W']


class PixelNorm(nn.Module):
    """x / sqrt(mean(x², channels) + eps), per location (no parameters)."""

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / torch.sqrt(torch.mean(x**2, dim=1, keepdim=True) + self.eps)


def make_norm(norm_layer: str, channels: int) -> nn.Module:
    if norm_layer == "group_norm":
        return nn.GroupNorm(num_groups=GROUPS, num_channels=channels, eps=1e-6, affine=True)
    if norm_layer == "none":
        return nn.Identity()
    return PixelNorm()


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale) + shift


class ResnetBlock3D(nn.Module):
    """norm1 -> [AdaLN] -> SiLU -> conv1 -> norm2 -> [AdaLN] -> SiLU -> dropout -> conv2, + shortcut.

    The shortcut is identity, or GroupNorm(1) ``norm3`` + 1×1×1 ``conv_shortcut`` when channels change. With
    ``timestep_conditioning`` a ``scale_shift_table`` [4, C] is added to the per-sample embedding (rows:
    shift1, scale1, shift2, scale2). The pieces (``pre_conv1``, ``pre_conv2``, ``shortcut``) are public so the
    streaming decoder runs exactly the same arithmetic chunk by chunk.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int | None = None,
        *,
        norm_layer: str = "pixel_norm",
        padding_mode: str = "zeros",
        timestep_conditioning: bool = False,
    ) -> None:
        super().__init__()
        out_channels = out_channels or in_channels
        self.norm1 = make_norm(norm_layer, in_channels)
        self.non_linearity = nn.SiLU()
        self.conv1 = CausalConv3d(in_channels, out_channels, padding_mode=padding_mode)
        self.norm2 = make_norm(norm_layer, out_channels)
        self.dropout = nn.Dropout(0.0)
        self.conv2 = CausalConv3d(out_channels, out_channels, padding_mode=padding_mode)
        changes = in_channels != out_channels
        self.conv_shortcut = nn.Conv3d(in_channels, out_channels, 1) if changes else nn.Identity()
        self.norm3 = nn.GroupNorm(1, in_channels, eps=1e-6, affine=True) if changes else nn.Identity()
        self.timestep_conditioning = timestep_conditioning
        if timestep_conditioning:
            self.scale_shift_table = nn.Parameter(torch.zeros(4, in_channels))

    def ada_values(self, embed: torch.Tensor | None) -> tuple[torch.Tensor, ...] | None:
        """Per-sample embedding (B, 4·C) -> (shift1, scale1, shift2, scale2), each (B, C, 1, 1, 1)."""
        if not self.timestep_conditioning:
            return None
        assert embed is not None, "timestep-conditioned ResnetBlock3D needs a timestep embedding"
        b = embed.shape[0]
        table = self.scale_shift_table.to(embed)[None, :, :, None, None, None]  # (1, 4, C, 1, 1, 1)
        values = table + embed.reshape(b, 4, -1, 1, 1, 1)  # (B, 4·C) -> (B, 4, C, 1, 1, 1)
        return tuple(values.unbind(dim=1))

    def pre_conv1(self, x: torch.Tensor, ada: tuple[torch.Tensor, ...] | None) -> torch.Tensor:
        h = self.norm1(x)
        if ada is not None:
            h = modulate(h, ada[0], ada[1])
        return self.non_linearity(h)

    def pre_conv2(self, h: torch.Tensor, ada: tuple[torch.Tensor, ...] | None) -> torch.Tensor:
        h = self.norm2(h)
        if ada is not None:
            h = modulate(h, ada[2], ada[3])
        return self.dropout(self.non_linearity(h))

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_shortcut(self.norm3(x))

    def forward(
        self, x: torch.Tensor, causal: bool = True, embed: torch.Tensor | None = None
    ) -> torch.Tensor:
        ada = self.ada_values(embed)
        h = self.conv1(self.pre_conv1(x, ada), causal)
        h = self.conv2(self.pre_conv2(h, ada), causal)
        return self.shortcut(x) + h


class UNetMidBlock3D(nn.Module):
    """``res_x``: ``num_layers`` same-width ResnetBlock3D (+ ``time_embedder`` of width 4·C if conditioned)."""

    def __init__(
        self,
        channels: int,
        num_layers: int,
        *,
        norm_layer: str = "pixel_norm",
        padding_mode: str = "zeros",
        timestep_conditioning: bool = False,
    ) -> None:
        super().__init__()
        self.timestep_conditioning = timestep_conditioning
        if timestep_conditioning:
            self.time_embedder = TimestepEmbedder(4 * channels)
        self.res_blocks = nn.ModuleList(
            ResnetBlock3D(
                channels,
                channels,
                norm_layer=norm_layer,
                padding_mode=padding_mode,
                timestep_conditioning=timestep_conditioning,
            )
            for _ in range(num_layers)
        )

    def embed(self, scaled_timestep: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
        """Scaled timestep (B,) -> per-sample embedding (B, 4·C), or None when not conditioned."""
        if not self.timestep_conditioning:
            return None
        assert scaled_timestep is not None, "timestep-conditioned UNetMidBlock3D needs a timestep"
        return self.time_embedder(scaled_timestep, dtype)

    def forward(
        self, x: torch.Tensor, causal: bool = True, scaled_timestep: torch.Tensor | None = None
    ) -> torch.Tensor:
        embed = self.embed(scaled_timestep, x.dtype)
        for block in self.res_blocks:
            x = block(x, causal, embed)
        return x
