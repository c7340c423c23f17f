"""Audio VAE (mel <-> latent), mel front end and vocoders (HiFi-GAN 24 kHz; BigVGAN-v2 + BWE 48 kHz)."""

from ltx2stream.models.audio.bwe import VocoderWithBWE
from ltx2stream.models.audio.codec import (
    AudioCodec,
    DecodedAudio,
    decode_audio,
    encode_audio,
    load_audio_codec,
)
from ltx2stream.models.audio.config import (
    AudioVAEConfig,
    BWEConfig,
    GeneratorConfig,
    VocoderConfig,
    tiny_audio_vae_config,
    tiny_vocoder_config,
)
from ltx2stream.models.audio.hifigan import Generator
from ltx2stream.models.audio.loading import (
    audio_vae_checkpoint_tensors,
    build_vocoder,
    load_audio_vae,
    load_vocoder,
    vocoder_checkpoint_tensors,
)
from ltx2stream.models.audio.mel import MelFrontEnd, mel_filterbank, resample
from ltx2stream.models.audio.vae import AudioVAE

__all__ = [
    "AudioCodec",
    "AudioVAE",
    "AudioVAEConfig",
    "BWEConfig",
    "DecodedAudio",
    "Generator",
    "GeneratorConfig",
    "MelFrontEnd",
    "VocoderConfig",
    "VocoderWithBWE",
    "audio_vae_checkpoint_tensors",
    "build_vocoder",
    "decode_audio",
    "encode_audio",
    "load_audio_codec",
    "load_audio_vae",
    "load_vocoder",
    "mel_filterbank",
    "resample",
    "tiny_audio_vae_config",
    "tiny_vocoder_config",
    "vocoder_checkpoint_tensors",
]
