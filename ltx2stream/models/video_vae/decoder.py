"""Video decoder: un-normalised latent [B, 128, 1+k, h, w] -> pixels [B, 3, 1+8k, 32h, 32w] in about [-1, 1].

conv_in (to 8 · ``decoder_base_channels``) -> ``up_blocks`` (``decoder_blocks`` reversed) -> norm -> [final
AdaLN] -> SiLU -> conv_out -> unpatchify ×4. Temporal padding follows ``causal_decoder`` (False for LTX-2/2.3:
each conv sees one frame before and one after, replicated at the ends).

Timestep conditioning (off in the released configs, implemented as the official code path): the timestep
(default 0.05) is multiplied by the learned ``timestep_scale_multiplier``; every ``res_x`` block embeds it
into a 4-row AdaLN per res block, and ``last_time_embedder`` + ``last_scale_shift_table`` modulate the output
norm. The latent noising that goes with it (0.975·z + 0.025·ε in normalised space) is done by ``VideoVAE``.
"""

from __future__ import annotations

import torch
from torch import nn

from ltx2stream.models.timestep import CombinedTimestepEmbedding as TimestepEmbedder
from ltx2stream.models.video_vae.blocks import (
    CausalConv3d,
    ResnetBlock3D,
    UNetMidBlock3D,
    make_norm,
    modulate,
)
from ltx2stream.models.video_vae.config import STRIDES, BlockSpec, VideoVAEConfig
from ltx2stream.models.video_vae.sampling import DepthToSpaceUpsample, unpatchify

DECODE_TIMESTEP = 0.05
DECODE_NOISE_SCALE = 0.025


def make_decoder_block(spec: BlockSpec, cin: int, cout: int, cfg: VideoVAEConfig) -> nn.Module:
    """One ``decoder_blocks`` entry as a module (channel counts from ``VideoVAEConfig.decoder_channels``)."""
    mode, norm = cfg.decoder_padding_mode, cfg.norm_layer
    if spec.name == "res_x":
        return UNetMidBlock3D(
            cin,
            spec.num_layers,
            norm_layer=norm,
            padding_mode=mode,
            timestep_conditioning=cfg.timestep_conditioning,
        )
    if spec.name == "res_x_y":
        return ResnetBlock3D(cin, cout, norm_layer=norm, padding_mode=mode)
    return DepthToSpaceUpsample(
        cin,
        STRIDES[spec.name],
        residual=bool(spec.get("residual", False)),
        multiplier=cin // cout,
        padding_mode=mode,
    )


class VideoDecoder(nn.Module):
    """The ``vae.decoder.*`` module; ``forward`` takes an already un-normalised latent."""

    def __init__(self, cfg: VideoVAEConfig) -> None:
        super().__init__()
        self.patch_size = cfg.patch_size
        self.causal = cfg.causal_decoder
        self.timestep_conditioning = cfg.timestep_conditioning
        width = 8 * cfg.decoder_base_channels
        mode = cfg.decoder_padding_mode
        self.conv_in = CausalConv3d(cfg.latent_channels, width, padding_mode=mode)
        layout = cfg.decoder_channels()
        self.up_blocks = nn.ModuleList(make_decoder_block(spec, cin, cout, cfg) for spec, cin, cout in layout)
        width = layout[-1][2] if layout else width
        self.conv_norm_out = make_norm(cfg.norm_layer, width)
        self.conv_act = nn.SiLU()
        self.conv_out = CausalConv3d(width, cfg.out_channels * cfg.patch_size**2, padding_mode=mode)
        if cfg.timestep_conditioning:
            self.timestep_scale_multiplier = nn.Parameter(torch.tensor(1000.0))
            self.last_time_embedder = TimestepEmbedder(2 * width)
            self.last_scale_shift_table = nn.Parameter(torch.zeros(2, width))

    def scaled_timestep(
        self, timestep: torch.Tensor | float | None, batch: int, like: torch.Tensor
    ) -> torch.Tensor | None:
        """timestep (scalar or (B,)), default 0.05 -> timestep · multiplier, shape (B,); None if unconditioned."""
        if not self.timestep_conditioning:
            return None
        t = DECODE_TIMESTEP if timestep is None else timestep
        t = torch.as_tensor(t, device=like.device, dtype=like.dtype).reshape(-1).expand(batch)
        return t * self.timestep_scale_multiplier.to(like)

    def output_head(self, x: torch.Tensor, scaled_t: torch.Tensor | None) -> torch.Tensor:
        """norm -> [AdaLN from ``last_time_embedder``] -> SiLU (per frame, no temporal mixing)."""
        x = self.conv_norm_out(x)
        if scaled_t is not None:
            embed = self.last_time_embedder(scaled_t, x.dtype)  # (B, 2·C)
            table = self.last_scale_shift_table.to(x)[None, :, :, None, None, None]  # (1, 2, C, 1, 1, 1)
            shift, scale = (table + embed.reshape(x.shape[0], 2, -1, 1, 1, 1)).unbind(dim=1)
            x = modulate(x, shift, scale)
        return self.conv_act(x)

    def run_block(self, block: nn.Module, x: torch.Tensor, scaled_t: torch.Tensor | None) -> torch.Tensor:
        if isinstance(block, UNetMidBlock3D):
            return block(x, self.causal, scaled_t)
        return block(x, self.causal)

    def forward(self, z: torch.Tensor, timestep: torch.Tensor | float | None = None) -> torch.Tensor:
        """z shape = (B, 128, F', h, w), un-normalised -> pixels shape = (B, 3, 8(F'-1)+1, 32h, 32w).

        Computes in the weights' dtype and returns in ``z``'s dtype.
        """
        out_dtype = z.dtype
        x = z.to(self.conv_in.conv.weight.dtype)
        scaled_t = self.scaled_timestep(timestep, x.shape[0], x)
        x = self.conv_in(x, self.causal)
        for block in self.up_blocks:
            x = self.run_block(block, x, scaled_t)
        x = self.conv_out(self.output_head(x, scaled_t), self.causal)
        return unpatchify(x, self.patch_size).to(out_dtype)  # [B, 48, F, H/4, W/4] -> [B, 3, F, H, W]
