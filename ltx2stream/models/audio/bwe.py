"""LTX-2.3 vocoder: BigVGAN-v2 (mel -> 16 kHz) followed by bandwidth extension (BWE) to 48 kHz.

BWE: pad the 16 kHz waveform to a multiple of ``hop_length`` -> causal STFT (left pad win - hop, DFT x Hann
bases stored in the checkpoint) -> magnitude -> mel (stored ``mel_basis``) -> log(clamp 1e-5) -> BWE generator
(no final activation) = residual; skip = Hann-windowed sinc x3 upsampling of the waveform; out =
clamp(residual + skip, -1, 1) cropped to 3x the vocoder length. The whole pass runs in float32.
Keys under ``vocoder.``: ``vocoder.*``, ``bwe_generator.*``, ``mel_stft.mel_basis``,
``mel_stft.stft_fn.{forward_basis,inverse_basis}``. The x3 resampler filter is not stored (rebuilt by
``materialize_buffers``).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from einops import rearrange

from ltx2stream.models.audio.config import BWEConfig, VocoderConfig
from ltx2stream.models.audio.hifigan import Generator
from ltx2stream.models.audio.mel import LOG_CLAMP, mel_filterbank


def dft_bases(n_fft: int, win_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Windowed DFT analysis basis and its synthesis counterpart, each shape = (2 * (n_fft//2 + 1), 1, n_fft).

    Rows [0, F) are cos, rows [F, 2F) are -sin; used for freshly built models (checkpoints carry
    their own copies).
    """
    n_freqs = n_fft // 2 + 1
    cpu = {"dtype": torch.float64, "device": "cpu"}  # built on CPU even under a meta device context
    n = torch.arange(n_fft, **cpu)
    k = torch.arange(n_freqs, **cpu)[:, None]
    angle = 2 * math.pi * k * n / n_fft  # (F, N)
    window = F.pad(torch.hann_window(win_length, **cpu), ((n_fft - win_length) // 2,) * 2)
    basis = torch.cat([torch.cos(angle), -torch.sin(angle)])  # (2F, N)
    forward = basis * window
    inverse = torch.linalg.pinv(basis).T * window  # (2F, N)
    return forward[:, None, :].float(), inverse[:, None, :].float()


class CausalSTFT(torch.nn.Module):
    """|STFT| with left-only padding (no lookahead): (B, N) -> (B, n_freqs, N // hop), N a multiple of hop."""

    def __init__(self, n_fft: int, hop_length: int, win_length: int) -> None:
        super().__init__()
        self.hop_length, self.win_length = hop_length, win_length
        fwd, inv = dft_bases(n_fft, win_length)
        self.register_buffer("forward_basis", fwd)
        self.register_buffer("inverse_basis", inv)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        y = F.pad(y[:, None, :], (max(0, self.win_length - self.hop_length), 0))  # (B, 1, N + pad)
        spec = F.conv1d(y, self.forward_basis.to(y.dtype), stride=self.hop_length)  # (B, 2F, T)
        real, imag = spec.chunk(2, dim=1)
        return torch.sqrt(real**2 + imag**2)


class MelSTFT(torch.nn.Module):
    """Causal log-mel: (B, N) -> (B, num_mels, N // hop)."""

    def __init__(self, cfg: BWEConfig) -> None:
        super().__init__()
        self.stft_fn = CausalSTFT(cfg.n_fft, cfg.hop_length, cfg.win_size)
        fb = mel_filterbank(
            cfg.n_fft // 2 + 1, 0.0, cfg.input_sampling_rate / 2, cfg.num_mels, cfg.input_sampling_rate
        )
        self.register_buffer("mel_basis", fb.T.contiguous())  # (num_mels, n_freqs)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        mag = self.stft_fn(y)
        mel = torch.matmul(self.mel_basis.to(mag.dtype), mag)
        return torch.log(torch.clamp(mel, min=LOG_CLAMP))


class SincResampler(torch.nn.Module):
    """Integer-ratio upsampler, Hann-windowed sinc (rolloff 0.99, 6 zeros): (B, C, N) -> (B, C, r N)."""

    ROLLOFF = 0.99
    ZEROS = 6

    def __init__(self, ratio: int) -> None:
        super().__init__()
        self.ratio = ratio
        self.width = math.ceil(self.ZEROS / self.ROLLOFF)
        self.kernel_size = 2 * self.width * ratio + 1
        self.materialize_buffers(torch.device("cpu"))

    def materialize_buffers(self, device: torch.device) -> None:
        # x = output time offset in input samples for every tap; filter = rolloff * sinc(rolloff x) * hann(x).
        x = torch.arange(self.kernel_size, dtype=torch.float64, device=device) / self.ratio - self.width
        t = x * self.ROLLOFF
        window = torch.cos(t.clamp(-self.ZEROS, self.ZEROS) * math.pi / (2 * self.ZEROS)) ** 2
        taps = self.ROLLOFF * torch.special.sinc(t) * window
        self.register_buffer("filter", taps.float().view(1, 1, -1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c, n = x.shape[1], x.shape[2]
        x = F.pad(x, (self.width, self.width), mode="replicate")
        y = F.conv_transpose1d(x, self.filter.to(x).expand(c, -1, -1), stride=self.ratio, groups=c)
        start = 2 * self.width * self.ratio  # output m aligns with input time m / ratio
        return y[..., start : start + self.ratio * n]


@contextlib.contextmanager
def _float32(module: torch.nn.Module, device_type: str) -> Iterator[None]:
    """Run ``module`` in float32: no-op for fp32 weights, autocast on CUDA, temporary upcast elsewhere."""
    dtype = next(module.parameters()).dtype
    if dtype == torch.float32:
        yield
    elif device_type == "cuda":
        with torch.autocast(device_type="cuda", dtype=torch.float32):
            yield
    else:
        module.float()
        try:
            yield
        finally:
            module.to(dtype)


class VocoderWithBWE(torch.nn.Module):
    """Stereo mel [B, 2, T, 64] -> 48 kHz waveform [B, 2, T * 160 * 3] (rates from the config)."""

    def __init__(self, cfg: VocoderConfig) -> None:
        super().__init__()
        assert cfg.bwe is not None, "VocoderWithBWE needs a config with a 'bwe' section"
        self.cfg = cfg
        self.vocoder = Generator(cfg.vocoder)
        self.bwe_generator = Generator(cfg.bwe.generator)
        self.mel_stft = MelSTFT(cfg.bwe)
        self.resampler = SincResampler(cfg.bwe.ratio)

    @property
    def output_sampling_rate(self) -> int:
        return self.cfg.output_sampling_rate

    @property
    def hop_product(self) -> int:
        return self.cfg.hop_product

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """shape = (B, 2, T, 64) -> (B, 2, T * hop_product), clamped to [-1, 1], in the input dtype."""
        bwe = self.cfg.bwe
        assert bwe is not None
        with _float32(self, mel.device.type):
            x = self.vocoder(mel.float())  # (B, 2, N) at the low rate
            n = x.shape[-1]
            x = F.pad(x, (0, (-n) % bwe.hop_length))
            b = x.shape[0]
            logmel = self.mel_stft(rearrange(x, "b c n -> (b c) n"))  # (B*2, M, T')
            residual = self.bwe_generator(rearrange(logmel, "(b c) m t -> b c t m", b=b))
            skip = self.resampler(x)
            out = torch.clamp(residual.float() + skip, -1.0, 1.0)[..., : n * bwe.ratio]
        return out.to(mel.dtype)
