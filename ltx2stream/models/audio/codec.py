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
from ltx2stream.models.audio.bwe import VocoderWithBWE
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


# Mel frames a vocoder output sample reaches on either side (non-causal convolutions, anti-aliased activations,
# and in LTX-2.3 the bandwidth extension's STFT and resampler), measured by perturbation at default
# initialisation in tests/test_audio_models.py: a plain HiFi-GAN 9 (released LTX-2 rates) / 15 (tiny); with the
# BWE 40 (released LTX-2.3 rates) / 43 (tiny). A span of samples vocoded from its mel frames plus this margin on
# both sides equals the same span of the whole vocoder output.
VOCODER_MARGIN_MEL = 16
BWE_VOCODER_MARGIN_MEL = 48


def vocoder_margin_mel(vocoder: Vocoder) -> int:
    return BWE_VOCODER_MARGIN_MEL if isinstance(vocoder, VocoderWithBWE) else VOCODER_MARGIN_MEL


@torch.inference_mode()
def decode_mel(latent: torch.Tensor, vae: AudioVAE) -> torch.Tensor:
    """shape = (B, 8, T_lat, 16) -> log-mel (B, 2, 4 T_lat - 3, 64): the first half of :func:`decode_audio`."""
    param = next(vae.decoder.parameters())
    return vae.decode(latent.to(device=param.device, dtype=param.dtype))


@torch.inference_mode()
def vocode_span(mel: torch.Tensor, vocoder: Vocoder, start: int, stop: int) -> torch.Tensor:
    """Waveform samples [start, stop) of ``vocoder(mel)`` (clipped to its length), float32 [B, 2, n], computed
    from the mel frames they need plus ``vocoder_margin_mel`` on each side: equal to the same samples of the
    whole output up to float rounding, at the cost of the span. The session vocodes only a segment's new audio
    (never the carried span's), its first frames' share first."""
    hop = vocoder.hop_product
    start, stop = max(0, start), min(stop, mel.shape[2] * hop)
    if stop <= start:
        return mel.new_zeros((mel.shape[0], 2, 0), dtype=torch.float32)
    margin = vocoder_margin_mel(vocoder)
    lo, hi = max(0, start // hop - margin), min(mel.shape[2], -(-stop // hop) + margin)
    voc_param = next(vocoder.parameters())
    wave = vocoder(mel[:, :, lo:hi].to(voc_param.dtype))
    return wave[..., start - lo * hop : stop - lo * hop].float()


@torch.inference_mode()
def decode_span(latent: torch.Tensor, vae: AudioVAE, vocoder: Vocoder, start: int, stop: int) -> torch.Tensor:
    """Waveform samples [start, stop) of ``decode_audio(latent)`` from the shortest latent prefix that gives
    them: the audio decoder is causal along time (latent frame k only reaches mel rows >= 4k - 3), so the mel
    rows the vocoder needs for the span (its ``vocoder_margin_mel`` included) come from the first
    ``k`` latent frames alone. Equal to the whole decode's samples up to float rounding; the session uses it
    for the first new frames' audio, which is then ready before the whole canvas is decoded."""
    hop, cfg = vocoder.hop_product, vae.cfg
    rows = -(-max(stop, 1) // hop) + vocoder_margin_mel(vocoder)  # mel rows the span's vocoding reads
    k = latent.shape[2]
    while k > 1 and cfg.mel_frames_for_latents(k - 1) >= rows:
        k -= 1
    return vocode_span(decode_mel(latent[:, :, :k], vae), vocoder, start, stop)


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

    def decode_mel(self, latent: torch.Tensor) -> torch.Tensor:
        return decode_mel(latent, self.vae)

    def vocode_span(self, mel: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """Samples [start, stop) of the vocoder's output for ``mel``, from the mel frames they need only."""
        if self.vocoder is None:
            raise InputError("this AudioCodec has no vocoder", code=codes.INPUT_NO_VOCODER)
        return vocode_span(mel, self.vocoder, start, stop)

    def decode_span(self, latent: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """Samples [start, stop) of :meth:`decode_audio`'s waveform from the latent prefix they need only."""
        if self.vocoder is None:
            raise InputError("this AudioCodec has no vocoder", code=codes.INPUT_NO_VOCODER)
        return decode_span(latent, self.vae, self.vocoder, start, stop)


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
