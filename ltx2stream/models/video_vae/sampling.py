"""Pixel (un)patchify and the VAE's resampling stages (space-to-depth down, depth-to-space up).

Patchify ×4 moves each 4×4 pixel block into channels with channel order (c, w-offset, h-offset), as the
official ``patchify`` does. The temporal ×2 stages keep the causal frame rule F = 1 + 8k: the encoder prepends
a copy of frame 0 before folding pairs of frames, the decoder unfolds each frame into two and drops the first.
"""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import nn

from ltx2stream.models.video_vae.blocks import CausalConv3d


def patchify(x: torch.Tensor, patch: int) -> torch.Tensor:
    """[B, C, F, H, W] -> [B, C·patch², F, H/patch, W/patch], channel order (c, w-offset, h-offset)."""
    return rearrange(x, "b c f (h q) (w r) -> b (c r q) f h w", q=patch, r=patch)


def unpatchify(x: torch.Tensor, patch: int) -> torch.Tensor:
    """[B, C·patch², F, H, W] -> [B, C, F, H·patch, W·patch] (inverse of ``patchify``)."""
    return rearrange(x, "b (c r q) f h w -> b c f (h q) (w r)", q=patch, r=patch)


def space_to_depth(x: torch.Tensor, stride: tuple[int, int, int]) -> torch.Tensor:
    """[B, C, F·p1, H·p2, W·p3] -> [B, C·p1·p2·p3, F, H, W]."""
    p1, p2, p3 = stride
    return rearrange(x, "b c (d p1) (h p2) (w p3) -> b (c p1 p2 p3) d h w", p1=p1, p2=p2, p3=p3)


def depth_to_space(x: torch.Tensor, stride: tuple[int, int, int]) -> torch.Tensor:
    """[B, C·p1·p2·p3, F, H, W] -> [B, C, F·p1, H·p2, W·p3]."""
    p1, p2, p3 = stride
    return rearrange(x, "b (c p1 p2 p3) d h w -> b c (d p1) (h p2) (w p3)", p1=p1, p2=p2, p3=p3)


class SpaceToDepthDownsample(nn.Module):
    """Encoder ``compress_*_res``: space-to-depth(conv(x)) + group-mean(space-to-depth(x)).

    conv: in -> out / prod(stride) channels (causal); the skip averages groups of prod(stride)·in/out
    channels. With a temporal stride of 2 a copy of frame 0 is prepended so 1 + 2k frames become 1 + k.
    """

    def __init__(
        self, in_channels: int, out_channels: int, stride: tuple[int, int, int], padding_mode: str = "zeros"
    ) -> None:
        super().__init__()
        self.stride = stride
        self.group_size = in_channels * math.prod(stride) // out_channels
        self.conv = CausalConv3d(in_channels, out_channels // math.prod(stride), padding_mode=padding_mode)

    def forward(self, x: torch.Tensor, causal: bool = True) -> torch.Tensor:
        if self.stride[0] == 2 and x.shape[2] == 1:
            # one frame: the copy makes two equal frames whose (replicate-padded) convolutions are equal, so the
            # convolution runs once (CausalConv3d.one_frame) and its output is repeated
            y = self.conv(x, causal)
            x, y = torch.cat([x, x], dim=2), torch.cat([y, y], dim=2)
        else:
            if self.stride[0] == 2:
                x = torch.cat([x[:, :, :1], x], dim=2)  # [B, C, F, H, W] -> [B, C, F+1, H, W]
            y = self.conv(x, causal)
        skip = space_to_depth(x, self.stride)
        skip = rearrange(skip, "b (c g) d h w -> b c g d h w", g=self.group_size).mean(dim=2)
        return space_to_depth(y, self.stride) + skip


class DepthToSpaceUpsample(nn.Module):
    """Decoder ``compress_*``: depth-to-space(conv(x)) [+ residual], first frame dropped when stride_t = 2.

    conv: in -> prod(stride)·in/multiplier channels, so the output has in/multiplier channels. The optional
    residual is depth-to-space(x) tiled prod(stride)/multiplier times along channels.
    """

    def __init__(
        self,
        in_channels: int,
        stride: tuple[int, int, int],
        *,
        residual: bool = False,
        multiplier: int = 1,
        padding_mode: str = "zeros",
    ) -> None:
        super().__init__()
        self.stride = stride
        self.residual = residual
        self.repeats = math.prod(stride) // multiplier
        self.conv = CausalConv3d(
            in_channels, math.prod(stride) * in_channels // multiplier, padding_mode=padding_mode
        )

    @property
    def drops_first_frame(self) -> bool:
        return self.stride[0] == 2

    def residual_of(self, x: torch.Tensor) -> torch.Tensor:
        """Residual before the first-frame drop: [B, C, F, H, W] -> [B, C/mult, F·p1, H·p2, W·p3]."""
        return depth_to_space(x, self.stride).repeat(1, self.repeats, 1, 1, 1)

    def forward(self, x: torch.Tensor, causal: bool = True) -> torch.Tensor:
        y = depth_to_space(self.conv(x, causal), self.stride)
        if self.residual:
            y = y + self.residual_of(x)
        return y[:, :, 1:] if self.drops_first_frame else y
