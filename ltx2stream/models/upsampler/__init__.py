"""Latent upsamplers: spatial x2 (plain and rational key layouts), rational x1.5, temporal x2."""

from ltx2stream.models.upsampler.config import TINY_KINDS, UpsamplerConfig, tiny_upsampler_config
from ltx2stream.models.upsampler.loading import (
    load_upsampler,
    random_upsampler,
    save_upsampler,
    upsampler_checkpoint_tensors,
    upsampler_config_for,
    write_tiny_upsampler,
)
from ltx2stream.models.upsampler.model import LatentNormalizer, LatentUpsampler, NormalizerFns, upsample_video

__all__ = [
    "TINY_KINDS",
    "LatentNormalizer",
    "LatentUpsampler",
    "NormalizerFns",
    "UpsamplerConfig",
    "load_upsampler",
    "random_upsampler",
    "save_upsampler",
    "tiny_upsampler_config",
    "upsample_video",
    "upsampler_checkpoint_tensors",
    "upsampler_config_for",
    "write_tiny_upsampler",
]
