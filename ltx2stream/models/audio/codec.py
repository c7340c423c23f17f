"""Waveform <-> audio latent, as the pipeline uses it.

``encode_audio``: stereo waveform at any rate -> resample to 16 kHz -> log-mel -> normalised latent
[B, 8, T_lat, 16] with T_lat = (N16 // 160) // 4 + 1 (one more than round(seconds * 25) for whole seconds);
pass ``frames`` to crop / zero-pad to the pipeline's length, as the official pipelines do.
``decode_audio``: latent -> log-mel [B, 2, 4 T_lat - 3, 64] -> vocoder -> waveform [B, 2, T_mel * hop_product]
at the vocoder's output rate (24 kHz LTX-2, 48 kHz LTX-2.3).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from ltx2stream import codes
from ltx2stream.errors import InputError
from ltx2stream.models.audio.loading import Vocoder, load_audio_vae, load_vocoder
from ltx2stream.models.audio.mel import MelFrontEnd
from ltx2stream.models.audio.vae import AudioVAE
from ltx2stream.models.loading import Checkpoint


class DecodedAudio(NamedTuple):
    """Decoded stereo audio: waveform float32 [B, 2, N] in [-1, 1] and its sample rate (unpacks as a pair)."""

    waveform: torch.Tensor
    sample_rate: int


def conform_latent_frames(latent: torch.Tensor, frames: int) -> torch.Tensor:
    """Crop or zero-pad the time axis of [B, C, T, F] to ``frames``."""
    latent = latent[:, :, :frames]
    return F.pad(latent, (0, 0, 0, frames - latent.shape[2]))


@torch.inference_mode()
def encode_audio(
    waveform: torch.Tensor,
    sample_rate: int,
    vae: AudioVAE,
    *,
    frames: int | None = None,
    front_end: MelFrontEnd | None = None,
) -> torch.Tensor:
    """shape = (B, 2, N) at ``sample_rate`` -> normalised latent (B, 8, T_lat, 16) in the VAE's dtype."""
    if waveform.dim() == 2:
        waveform = waveform[None]
    if waveform.dim() != 3 or waveform.shape[1] not in (1, 2):
        raise InputError(
            f"waveform must be [B, 2, N] (or [B, 1, N] mono); got {tuple(waveform.shape)}",
            code=codes.INPUT_AUDIO_SHAPE,
        )
    if waveform.shape[1] == 1:
        waveform = waveform.expand(-1, 2, -1)
    param = next(vae.encoder.parameters())
    front_end = front_end or MelFrontEnd(vae.cfg).to(param.device)
    mel = front_end(waveform.to(param.device), sample_rate)
    latent = vae.encode(mel.to(param.dtype))
    return latent if frames is None else conform_latent_frames(latent, frames)


@torch.inference_mode()
def decode_audio(latent: torch.Tensor, vae: AudioVAE, vocoder: Vocoder) -> DecodedAudio:
    """shape = (B, 8, T_lat, 16) -> DecodedAudio(waveform (B, 2, (4 T_lat - 3) * hop_product), rate)."""
    param = next(vae.decoder.parameters())
    mel = vae.decode(latent.to(device=param.device, dtype=param.dtype))
    voc_param = next(vocoder.parameters())
    wave = vocoder(mel.to(voc_param.dtype))
    return DecodedAudio(waveform=wave.float(), sample_rate=vocoder.output_sampling_rate)


class AudioCodec:
    """Resident audio VAE + vocoder + mel front end: the pipeline's audio decode / conditioning stage."""

    def __init__(self, vae: AudioVAE, vocoder: Vocoder | None) -> None:
        self.vae = vae
        self.vocoder = vocoder
        device = next(vae.parameters()).device
        self.front_end = MelFrontEnd(vae.cfg).to(device) if hasattr(vae, "encoder") else None

    @property
    def sample_rate(self) -> int:
        """Output sample rate of :meth:`decode_audio`."""
        if self.vocoder is None:
            raise InputError("this AudioCodec has no vocoder", code=codes.INPUT_NO_VOCODER)
        return self.vocoder.output_sampling_rate

    def encode_audio(
        self, waveform: torch.Tensor, sample_rate: int, *, frames: int | None = None
    ) -> torch.Tensor:
        return encode_audio(waveform, sample_rate, self.vae, frames=frames, front_end=self.front_end)

    def decode_audio(self, latent: torch.Tensor) -> DecodedAudio:
        if self.vocoder is None:
            raise InputError("this AudioCodec has no vocoder", code=codes.INPUT_NO_VOCODER)
        return decode_audio(latent, self.vae, self.vocoder)


def load_audio_codec(
    ckpt: Checkpoint,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    with_encoder: bool = True,
) -> AudioCodec:
    """Audio VAE (decoder, and encoder unless ``with_encoder=False``) + vocoder from one checkpoint."""
    vae = load_audio_vae(ckpt, dtype=dtype, device=device, with_encoder=with_encoder)
    return AudioCodec(vae, load_vocoder(ckpt, dtype=dtype, device=device))
