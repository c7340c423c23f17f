"""Causal video encoder: pixels [B, 3, 1+8k, H, W] -> latent means [B, 128, 1+k, H/32, W/32] (not normalised).

patchify ×4 -> conv_in (to ``latent_channels`` features) -> ``down_blocks`` from ``encoder_blocks`` -> norm ->
SiLU -> conv_out. conv_out predicts the means plus a log-variance (``uniform``/``constant``: one channel,
``per_channel``: one per mean); only the means are returned. Every temporal conv is causal, so latent frame j
depends on pixel frames <= 8j only.
"""

from __future__ import annotations

import torch
from torch import nn

from ltx2stream.models.video_vae.blocks import CausalConv3d, ResnetBlock3D, UNetMidBlock3D, make_norm
from ltx2stream.models.video_vae.config import STRIDES, BlockSpec, VideoVAEConfig
from ltx2stream.models.video_vae.sampling import SpaceToDepthDownsample, patchify


def make_encoder_block(spec: BlockSpec, cin: int, cout: int, cfg: VideoVAEConfig) -> nn.Module:
    """One ``encoder_blocks`` entry as a module (channel counts from ``VideoVAEConfig.encoder_channels``)."""
    mode, norm = cfg.encoder_padding_mode, cfg.norm_layer
    if spec.name == "res_x":
        return UNetMidBlock3D(cin, spec.num_layers, norm_layer=norm, padding_mode=mode)
    if spec.name == "res_x_y":
        return ResnetBlock3D(cin, cout, norm_layer=norm, padding_mode=mode)
    if spec.name.endswith("_res"):
        return SpaceToDepthDownsample(cin, cout, STRIDES[spec.name], padding_mode=mode)
    return CausalConv3d(cin, cout, stride=STRIDES[spec.name], padding_mode=mode)  # plain strided compress_*


class VideoEncoder(nn.Module):
    """The ``vae.encoder.*`` module."""

    def __init__(self, cfg: VideoVAEConfig) -> None:
        super().__init__()
        self.patch_size = cfg.patch_size
        self.latent_channels = cfg.latent_channels
        mode = cfg.encoder_padding_mode
        self.conv_in = CausalConv3d(
            cfg.in_channels * cfg.patch_size**2, cfg.latent_channels, padding_mode=mode
        )
        layout = cfg.encoder_channels()
        self.down_blocks = nn.ModuleList(
            make_encoder_block(spec, cin, cout, cfg) for spec, cin, cout in layout
        )
        width = layout[-1][2] if layout else cfg.latent_channels
        self.conv_norm_out = make_norm(cfg.norm_layer, width)
        self.conv_act = nn.SiLU()
        log_var = cfg.latent_channels if cfg.latent_log_var == "per_channel" else 1
        self.conv_out = CausalConv3d(width, cfg.latent_channels + log_var, padding_mode=mode)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels shape = (B, C, 1+8k, H, W) in [-1, 1] -> means shape = (B, latent_channels, 1+k, H/32, W/32)."""
        x = patchify(pixels, self.patch_size)  # [B, 3, F, H, W] -> [B, 48, F, H/4, W/4]
        x = self.conv_in(x, causal=True)
        for block in self.down_blocks:
            x = block(x, causal=True)
        x = self.conv_out(self.conv_act(self.conv_norm_out(x)), causal=True)
        return x[:, : self.latent_channels]  # [B, 128 + log-var channels, ...] -> means [B, 128, ...]
