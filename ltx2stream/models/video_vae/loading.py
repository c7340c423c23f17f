"""Load the video VAE from an official single-file checkpoint (and write it back in that layout).

Keys: ``vae.encoder.*``, ``vae.decoder.*``, ``vae.per_channel_statistics.*``; the architecture comes from the
embedded ``vae`` config section. Loading is strict (zero missing, zero unexpected, equal shapes).
"""

from __future__ import annotations

import logging

import torch

from ltx2stream.models.loading import Checkpoint, build_on_meta, load_strict, with_prefix
from ltx2stream.models.video_vae.config import VideoVAEConfig
from ltx2stream.models.video_vae.diffusion.config import is_diffusion_vae
from ltx2stream.models.video_vae.vae import OPTIONAL_STATS, VideoVAE

log = logging.getLogger(__name__)

VAE_PREFIX = "vae."


def load_video_vae(
    ckpt: Checkpoint,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    with_encoder: bool = True,
    with_decoder: bool = True,
) -> VideoVAE:
    """Build the VAE from ``ckpt.section('vae')`` and load ``vae.*`` strictly.

    ``with_encoder=False`` / ``with_decoder=False`` skip that half (its keys are not read).
    """
    stats = present_optional_stats(ckpt)
    if is_diffusion_vae(ckpt.section("vae")):  # LTX-2.5 diffusion decoder (vae._class_name)
        from ltx2stream.models.video_vae.diffusion.loading import load_diffusion_vae

        return load_diffusion_vae(  # type: ignore[return-value]
            ckpt, dtype=dtype, device=device, with_encoder=with_encoder, with_decoder=with_decoder,
            optional_stats=stats,
        )  # fmt: skip
    cfg = VideoVAEConfig.from_metadata(ckpt.section("vae"))
    model = build_on_meta(
        lambda: VideoVAE(cfg, with_encoder=with_encoder, with_decoder=with_decoder, optional_stats=stats)
    )
    exclude = [
        VAE_PREFIX + part
        for part, keep in (("encoder.", with_encoder), ("decoder.", with_decoder))
        if not keep
    ]
    state = ckpt.read(VAE_PREFIX, dtype=dtype, exclude=exclude)
    log.info(
        "video VAE: %d tensors, %d encoder / %d decoder blocks, timestep_conditioning=%s",
        len(state), len(cfg.encoder_blocks), len(cfg.decoder_blocks), cfg.timestep_conditioning,
    )  # fmt: skip
    return load_strict(model, state, what="video VAE", device=device, dtype=dtype)


def present_optional_stats(ckpt: Checkpoint) -> tuple[str, ...]:
    """The optional per-channel statistics the file carries (the model then expects exactly those)."""
    return tuple(n for n in OPTIONAL_STATS if f"{VAE_PREFIX}per_channel_statistics.{n}" in ckpt.keys)


def video_vae_checkpoint_tensors(vae: VideoVAE) -> dict[str, torch.Tensor]:
    """State dict under the official ``vae.`` prefix."""
    return with_prefix(VAE_PREFIX, vae.state_dict())
