"""Load a latent upsampler from its own safetensors file (and write tiny ones in the official layout).

Upsampler files have no key prefix (``initial_conv.*``, ``res_blocks.N.*``, ``upsampler.*``,
``post_upsample_res_blocks.N.*``, ``final_conv.*``) and a flat ``metadata["config"]`` (see ``config.py``).

Spatial x2 files exist in two key layouts that compute the same function: plain (``upsampler.0.*``) and
rational with num/den = 2/1 (``upsampler.conv.*`` + ``upsampler.blur_down.kernel``). Which one a file uses is
read from its keys, so a config that says ``rational_resampler: false`` over rational keys (or the reverse)
still loads; every other mismatch is a strict key error.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import torch

from ltx2stream.models.loading import Checkpoint, build_on_meta, load_strict, open_checkpoint, save_checkpoint
from ltx2stream.models.upsampler.config import TinyKind, UpsamplerConfig, tiny_upsampler_config
from ltx2stream.models.upsampler.model import LatentUpsampler

log = logging.getLogger(__name__)

PLAIN_KEY = "upsampler.0.weight"
RATIONAL_KEY = "upsampler.conv.weight"


def upsampler_config_for(ckpt: Checkpoint) -> UpsamplerConfig:
    """The file's config, with the x2 key layout (plain or rational) taken from the keys present."""
    if not ckpt.config:
        log.warning("%s: no embedded upsampler config; using the official defaults", ckpt.path)
    cfg = UpsamplerConfig.from_metadata(ckpt.config)
    if cfg.kind != "spatial" or cfg.spatial_scale != 2.0:
        return cfg
    plain, rational = PLAIN_KEY in ckpt.keys, RATIONAL_KEY in ckpt.keys
    if plain != rational and rational != cfg.rational_resampler:
        log.info(
            "%s: config says rational_resampler=%s but the keys are the %s x2 layout; following the keys",
            ckpt.path,
            cfg.rational_resampler,
            "rational" if rational else "plain",
        )
        cfg = dataclasses.replace(cfg, rational_resampler=rational)
    return cfg


def load_upsampler(
    path: str | os.PathLike[str] | Checkpoint,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> LatentUpsampler:
    """Build the upsampler the file's config describes and load every tensor strictly (CheckpointError lists
    missing / unexpected / wrongly shaped keys)."""
    ckpt = path if isinstance(path, Checkpoint) else open_checkpoint(path)
    cfg = upsampler_config_for(ckpt)
    model = build_on_meta(lambda: LatentUpsampler(cfg))
    state = ckpt.read("", dtype=dtype)
    log.info(
        "upsampler %s x%s (%s layout): %d tensors, mid_channels=%d",
        cfg.kind,
        cfg.scale,
        "rational" if cfg.rational_resampler else "plain",
        len(state),
        cfg.mid_channels,
    )
    what = f"latent upsampler ({ckpt.path.name}, {cfg.kind} x{cfg.scale})"
    return load_strict(model, state, what=what, device=device, dtype=dtype)


def upsampler_checkpoint_tensors(model: LatentUpsampler) -> dict[str, torch.Tensor]:
    """The model's tensors under their official (unprefixed) keys, blur kernel buffer included."""
    return dict(model.state_dict())


def save_upsampler(path: str | os.PathLike[str], model: LatentUpsampler) -> Path:
    """Write ``model`` as an official-layout upsampler file with its flat config embedded."""
    return save_checkpoint(path, upsampler_checkpoint_tensors(model), config=model.config.to_metadata())


def random_upsampler(cfg: UpsamplerConfig, seed: int = 0) -> LatentUpsampler:
    """An upsampler with deterministic random weights (default PyTorch init under ``torch.manual_seed``)."""
    gen_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = LatentUpsampler(cfg)
    finally:
        torch.random.set_rng_state(gen_state)
    return model.eval()


def write_tiny_upsampler(
    path: str | os.PathLike[str], kind: TinyKind = "x2", *, seed: int = 0, mid_channels: int = 32
) -> Path:
    """Write a tiny random upsampler of ``kind`` (see ``tiny_upsampler_config``) in the official layout."""
    return save_upsampler(path, random_upsampler(tiny_upsampler_config(kind, mid_channels), seed))
