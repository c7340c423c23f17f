"""Tiny video VAE configs with the real block structure (for tests, benches and tiny full checkpoints).

Same block kinds and order as the released configs — LTX-2: ``compress_*_res`` encoder, residual ×2
``compress_all`` decoder; LTX-2.3: non-residual decoder with ``compress_time`` / ``compress_space`` stages and
a ×1 (``multiplier: 1``) ``compress_all`` on both sides — and the same total compression (×32 space, ×8 time)
and latent width (128 channels, so it matches the tiny transformer's ``in_channels``). Only the widths and the
number of res blocks shrink: decoder base 8 (conv_in 128 -> 64), one res block per ``res_x``, and channel
multipliers of 1 in the encoder's high-resolution stages (its first width is tied to ``latent_channels``).
"""

from __future__ import annotations

from typing import Any

from ltx2stream.errors import check_config_value
from ltx2stream.models.video_vae.config import VideoVAEConfig

FLAVOURS = ("ltx2", "ltx2.3")


def _res(n: int = 1) -> list[Any]:
    return ["res_x", {"num_layers": n}]


def _c(name: str, multiplier: int, **extra: Any) -> list[Any]:
    return [name, {"multiplier": multiplier, **extra}]


def tiny_video_vae_metadata(flavour: str = "ltx2") -> dict[str, Any]:
    """The ``vae`` section of a tiny checkpoint (official key names)."""
    check_config_value("tiny_video_vae_config", "flavour", flavour, FLAVOURS)
    if flavour == "ltx2":
        encoder = [_res(), _c("compress_space_res", 1), _res(), _c("compress_time_res", 1), _res(),
                   _c("compress_all_res", 1), _res(), _c("compress_all_res", 2), _res()]  # fmt: skip
        decoder = [_res(), _c("compress_all", 2, residual=True), _res(), _c("compress_all", 2, residual=True), _res(),
                   _c("compress_all", 2, residual=True), _res()]  # fmt: skip
        padding = {"encoder_spatial_padding_mode": "zeros", "decoder_spatial_padding_mode": "reflect"}
    else:
        encoder = [_res(), _c("compress_space_res", 1), _res(), _c("compress_time_res", 1), _res(),
                   _c("compress_all_res", 2), _res(), _c("compress_all_res", 1), _res()]  # fmt: skip
        decoder = [_res(), _c("compress_space", 2), _res(), _c("compress_time", 2), _res(), _c("compress_all", 1),
                   _res(), _c("compress_all", 2), _res()]  # fmt: skip
        padding = {"spatial_padding_mode": "zeros"}
    return {
        "dims": 3,
        "in_channels": 3,
        "out_channels": 3,
        "latent_channels": 128,
        "patch_size": 4,
        "norm_layer": "pixel_norm",
        "latent_log_var": "uniform",
        "encoder_blocks": encoder,
        "decoder_blocks": decoder,
        "decoder_base_channels": 8,
        "causal_decoder": False,
        "timestep_conditioning": False,
        **padding,
    }


def tiny_video_vae_config(flavour: str = "ltx2", **overrides: Any) -> VideoVAEConfig:
    """Tiny config of the given flavour; ``overrides`` replace ``vae`` section keys (e.g. timestep_conditioning)."""
    return VideoVAEConfig.from_metadata({**tiny_video_vae_metadata(flavour), **overrides})
