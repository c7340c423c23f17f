"""Load the audio VAE and the vocoder from an official single-file checkpoint (and write them back).

Prefixes: ``audio_vae.{encoder,decoder,per_channel_statistics}.*`` and ``vocoder.*`` (LTX-2.3:
``vocoder.{vocoder,bwe_generator,mel_stft}.*``). Configs come from the embedded ``audio_vae`` / ``vocoder``
sections.
"""

from __future__ import annotations

import logging

import torch

from ltx2stream.models.audio.bwe import VocoderWithBWE
from ltx2stream.models.audio.config import AudioVAEConfig, VocoderConfig
from ltx2stream.models.audio.hifigan import Generator
from ltx2stream.models.audio.vae import AudioVAE
from ltx2stream.models.loading import Checkpoint, build_on_meta, load_strict, with_prefix

log = logging.getLogger(__name__)

AUDIO_VAE_PREFIX = "audio_vae."
VOCODER_PREFIX = "vocoder."

Vocoder = Generator | VocoderWithBWE


def build_vocoder(cfg: VocoderConfig) -> Vocoder:
    """HiFi-GAN generator for a flat config (LTX-2), VocoderWithBWE for a nested one (LTX-2.3)."""
    return Generator(cfg.vocoder) if cfg.bwe is None else VocoderWithBWE(cfg)


def load_audio_vae(
    ckpt: Checkpoint,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    with_encoder: bool = True,
    with_decoder: bool = True,
) -> AudioVAE:
    """Build the audio VAE from ``ckpt.section('audio_vae')`` and load ``audio_vae.*`` strictly.

    ``with_encoder=False`` / ``with_decoder=False`` skip that half (its keys are not read).
    """
    cfg = AudioVAEConfig.from_metadata(ckpt.section("audio_vae"))
    model = build_on_meta(lambda: AudioVAE(cfg, with_encoder=with_encoder, with_decoder=with_decoder))
    exclude = [
        AUDIO_VAE_PREFIX + part
        for part, keep in (("encoder.", with_encoder), ("decoder.", with_decoder))
        if not keep
    ]
    state = ckpt.read(AUDIO_VAE_PREFIX, dtype=dtype, exclude=exclude)
    log.info(
        "audio VAE: %d tensors, ch=%d, latent [%d x %d]", len(state), cfg.ch, cfg.z_channels, cfg.latent_bins
    )
    return load_strict(model, state, what="audio VAE", device=device, dtype=dtype)


def load_vocoder(
    ckpt: Checkpoint, *, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu"
) -> Vocoder:
    """Build the vocoder the ``vocoder`` section describes and load ``vocoder.*`` strictly.

    The LTX-2.3 vocoder + BWE is always kept in float32 (its whole path runs in fp32); ``dtype`` applies to
    HiFi-GAN.
    """
    cfg = VocoderConfig.from_metadata(ckpt.section("vocoder"))
    if cfg.bwe is not None:
        dtype = torch.float32
    model = build_on_meta(lambda: build_vocoder(cfg))
    state = ckpt.read(VOCODER_PREFIX, dtype=dtype)
    log.info("vocoder %s: %d tensors, %d Hz", cfg.kind, len(state), cfg.output_sampling_rate)
    return load_strict(model, state, what=f"vocoder ({cfg.kind})", device=device, dtype=dtype)


def audio_vae_checkpoint_tensors(model: AudioVAE) -> dict[str, torch.Tensor]:
    """State dict under the official ``audio_vae.`` prefix."""
    return with_prefix(AUDIO_VAE_PREFIX, model.state_dict())


def vocoder_checkpoint_tensors(model: Vocoder) -> dict[str, torch.Tensor]:
    """State dict under the official ``vocoder.`` prefix.

    LTX-2.3: ``vocoder.vocoder.*``, ``vocoder.bwe_generator.*``, ``vocoder.mel_stft.*``.
    """
    return with_prefix(VOCODER_PREFIX, model.state_dict())
