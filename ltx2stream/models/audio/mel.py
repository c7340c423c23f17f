"""Mel front end of the audio VAE (the official ``AudioProcessor``), written without torchaudio.

16 kHz stereo waveform -> |STFT| (n_fft 1024, Hann 1024, hop 160, center=True with reflect padding, power 1)
-> slaney-normalised slaney-scale mel filterbank (64 bins, 0 .. sr/2) -> log(clamp(mel, 1e-5)) -> [B, 2,
T_mel, 64], T_mel = samples // hop + 1. Other input rates go through a windowed-sinc resampler first.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange

from ltx2stream import codes
from ltx2stream.errors import InputError
from ltx2stream.models.audio.config import AudioVAEConfig

LOG_CLAMP = 1e-5

# Slaney mel scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above with step log(6.4)/27.
_F_SP = 200.0 / 3.0
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = math.log(6.4) / 27.0


def hz_to_mel(freq: torch.Tensor) -> torch.Tensor:
    """Slaney mel scale (elementwise)."""
    linear = freq / _F_SP
    log = _MIN_LOG_MEL + torch.log(torch.clamp(freq, min=_MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP
    return torch.where(freq >= _MIN_LOG_HZ, log, linear)


def mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`hz_to_mel`."""
    linear = mel * _F_SP
    log = _MIN_LOG_HZ * torch.exp(_LOGSTEP * (mel - _MIN_LOG_MEL))
    return torch.where(mel >= _MIN_LOG_MEL, log, linear)


def mel_filterbank(n_freqs: int, f_min: float, f_max: float, n_mels: int, sample_rate: int) -> torch.Tensor:
    """Triangular slaney filters with slaney area normalisation, shape = (n_freqs, n_mels).

    Filter m rises from mel point m to m+1 and falls to m+2 (n_mels + 2 points evenly spaced in mel);
    each filter is scaled by 2 / (f[m+2] - f[m]) so that all filters have the same area.
    """
    cpu = {"dtype": torch.float64, "device": "cpu"}  # built on CPU even under a meta device context
    all_freqs = torch.linspace(0, sample_rate // 2, n_freqs, **cpu)
    m_lo, m_hi = hz_to_mel(torch.tensor([f_min, f_max], **cpu)).tolist()
    m_pts = torch.linspace(m_lo, m_hi, n_mels + 2, **cpu)
    f_pts = mel_to_hz(m_pts)  # (n_mels + 2,)
    f_diff = f_pts[1:] - f_pts[:-1]  # (n_mels + 1,)
    slopes = f_pts[None, :] - all_freqs[:, None]  # (n_freqs, n_mels + 2)
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    fb = torch.clamp(torch.minimum(down, up), min=0.0)  # (n_freqs, n_mels)
    enorm = 2.0 / (f_pts[2 : n_mels + 2] - f_pts[:n_mels])
    return (fb * enorm[None, :]).to(torch.float32)


def _sinc_kernels(
    orig: int, new: int, width_taps: int = 6, rolloff: float = 0.99
) -> tuple[torch.Tensor, int]:
    """Hann-windowed sinc kernels for resampling by new/orig (gcd-reduced), shape = (new, 1, K); returns
    (kernels, width).

    Output phase j of each block of ``new`` outputs sits at input time j*orig/new; the low-pass cutoff is
    rolloff * min(orig, new) / 2 cycles per input sample block, zero crossings ``width_taps`` lobes wide.
    """
    cutoff = min(orig, new) * rolloff
    width = math.ceil(width_taps * orig / cutoff)
    taps = torch.arange(-width, width + orig, dtype=torch.float64)[None, :] / orig  # (1, K) in input blocks
    phases = torch.arange(new, dtype=torch.float64)[:, None] / new  # (new, 1)
    t = (taps - phases) * cutoff  # (new, K) in units of the cutoff period
    t = t.clamp(-width_taps, width_taps)
    window = torch.cos(t * math.pi / width_taps / 2) ** 2
    kernel = torch.special.sinc(t) * window * cutoff / orig
    return kernel[:, None, :].to(torch.float32), width


def resample(waveform: torch.Tensor, orig_rate: int, new_rate: int) -> torch.Tensor:
    """Band-limited resampling along the last axis, shape = (..., N) -> (..., ceil(N * new / orig))."""
    if orig_rate <= 0 or new_rate <= 0:
        raise InputError(
            f"sample rates must be positive; got {orig_rate} -> {new_rate}", code=codes.INPUT_SAMPLE_RATE
        )
    if orig_rate == new_rate:
        return waveform
    g = math.gcd(orig_rate, new_rate)
    orig, new = orig_rate // g, new_rate // g
    kernels, width = _sinc_kernels(orig, new)
    lead, n = waveform.shape[:-1], waveform.shape[-1]
    x = waveform.reshape(-1, 1, n).float()  # (B*C, 1, N)
    x = F.pad(x, (width, width + orig))
    y = F.conv1d(x, kernels.to(x.device), stride=orig)  # (B*C, new, frames)
    y = rearrange(y, "b p f -> b (f p)")
    target = math.ceil(new * n / orig)
    return y[:, :target].reshape(*lead, target).to(waveform.dtype)  # (..., ceil(N * new / orig))


class MelFrontEnd(torch.nn.Module):
    """Waveform [B, 2, N] at ``cfg.sampling_rate`` -> log-mel [B, 2, N // hop + 1, mel_bins]."""

    def __init__(self, cfg: AudioVAEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.materialize_buffers(torch.device("cpu"))

    def materialize_buffers(self, device: torch.device) -> None:
        c = self.cfg
        with torch.device(device):
            self.register_buffer("window", torch.hann_window(c.win_length, device=device), persistent=False)
            fb = mel_filterbank(
                c.filter_length // 2 + 1, c.mel_fmin, c.sampling_rate / 2, c.mel_bins, c.sampling_rate
            )
            self.register_buffer("mel_fb", fb.to(device), persistent=False)

    def num_frames(self, num_samples: int) -> int:
        return num_samples // self.cfg.hop_length + 1

    def forward(self, waveform: torch.Tensor, sample_rate: int | None = None) -> torch.Tensor:
        """shape = (B, 2, N) -> (B, 2, T_mel, mel_bins), float32."""
        if waveform.dim() != 3 or waveform.shape[1] != 2:
            raise InputError(
                f"waveform must be [B, 2, N] stereo; got {tuple(waveform.shape)}",
                code=codes.INPUT_AUDIO_SHAPE,
            )
        c = self.cfg
        if sample_rate is not None and sample_rate != c.sampling_rate:
            waveform = resample(waveform, sample_rate, c.sampling_rate)
        b = waveform.shape[0]
        x = rearrange(waveform.float(), "b c n -> (b c) n")
        spec = torch.stft(
            x,
            n_fft=c.filter_length,
            hop_length=c.hop_length,
            win_length=c.win_length,
            window=self.window.to(x.device),
            center=True,
            pad_mode="reflect",
            return_complex=True,
        )
        mag = spec.abs()  # (B*2, F, T)
        mel = torch.einsum("bft,fm->btm", mag, self.mel_fb.to(x.device))  # (B*2, T, M)
        mel = torch.log(torch.clamp(mel, min=LOG_CLAMP))
        return rearrange(mel, "(b c) t m -> b c t m", b=b)
