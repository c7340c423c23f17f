"""Mel -> waveform generator: HiFi-GAN (``resblock "1"``, LTX-2) or BigVGAN-v2 (``resblock "AMP1"``, LTX-2.3).

Input stereo log-mel [B, 2, T, 64] is flattened stereo-major to 128 channels -> conv_pre (k7) -> per stage:
[LeakyReLU 0.1 (HiFi-GAN only)] -> ConvTranspose1d(rate) -> mean of len(resblock_kernel_sizes) residual blocks
-> act_post (LeakyReLU 0.01, or anti-aliased SnakeBeta) -> conv_post (k7, 2 outputs) -> tanh or clamp(-1, 1)
when ``apply_final_activation``. Output [B, 2, T * prod(upsample_rates)].
Keys: ``conv_pre``, ``ups.i``, ``resblocks.(stage*n_kernels + k)``, ``act_post`` (AMP only has tensors),
``conv_post``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange

from ltx2stream import codes
from ltx2stream.errors import InputError
from ltx2stream.models.audio.bigvgan import Activation1d, AMPBlock1
from ltx2stream.models.audio.config import GeneratorConfig

LRELU_SLOPE = 0.1
MEL_CHANNELS = 128  # 2 stereo channels x 64 mel bins


class ResBlock1(torch.nn.Module):
    """HiFi-GAN ResBlock1: x += conv2(lrelu(conv1_dilated(lrelu(x)))) for each dilation; 'same' padding."""

    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        self.convs1 = torch.nn.ModuleList(
            torch.nn.Conv1d(channels, channels, kernel_size, dilation=d, padding="same") for d in dilations
        )
        self.convs2 = torch.nn.ModuleList(
            torch.nn.Conv1d(channels, channels, kernel_size, padding="same") for _ in dilations
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c1, c2 in zip(self.convs1, self.convs2, strict=True):
            h = c1(F.leaky_relu(x, LRELU_SLOPE))
            x = x + c2(F.leaky_relu(h, LRELU_SLOPE))
        return x


class Generator(torch.nn.Module):
    """One mel -> waveform generator built from a :class:`GeneratorConfig`."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.is_amp = cfg.resblock == "AMP1"
        c0 = cfg.upsample_initial_channel
        self.conv_pre = torch.nn.Conv1d(MEL_CHANNELS, c0, 7, padding=3)
        self.ups = torch.nn.ModuleList(
            torch.nn.ConvTranspose1d(c0 // 2**i, c0 // 2 ** (i + 1), k, r, padding=(k - r) // 2)
            for i, (r, k) in enumerate(zip(cfg.upsample_rates, cfg.upsample_kernel_sizes, strict=True))
        )
        block = AMPBlock1 if self.is_amp else ResBlock1
        self.resblocks = torch.nn.ModuleList(
            block(c0 // 2 ** (i + 1), k, d)
            for i in range(len(cfg.upsample_rates))
            for k, d in zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes, strict=True)
        )
        c_final = c0 // 2 ** len(cfg.upsample_rates)
        self.act_post: torch.nn.Module = Activation1d(c_final) if self.is_amp else torch.nn.LeakyReLU()
        self.conv_post = torch.nn.Conv1d(c_final, 2, 7, padding=3, bias=cfg.use_bias_at_final)

    @property
    def hop_product(self) -> int:
        return self.cfg.hop_product

    @property
    def output_sampling_rate(self) -> int:
        return self.cfg.output_sampling_rate

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """shape = (B, 2, T, 64) -> (B, 2, T * hop_product)."""
        if mel.dim() != 4 or mel.shape[1] * mel.shape[3] != MEL_CHANNELS:
            raise InputError(
                f"vocoder input must be stereo mel [B, 2, T, 64]; got {tuple(mel.shape)}",
                code=codes.INPUT_MEL_SHAPE,
            )
        x = self.conv_pre(rearrange(mel, "b s t m -> b (s m) t"))
        n = len(self.cfg.resblock_kernel_sizes)
        for i, up in enumerate(self.ups):
            if not self.is_amp:
                x = F.leaky_relu(x, LRELU_SLOPE)
            x = up(x)
            x = torch.stack([self.resblocks[i * n + k](x) for k in range(n)]).mean(dim=0)
        x = self.conv_post(self.act_post(x))
        if not self.cfg.apply_final_activation:
            return x
        return torch.tanh(x) if self.cfg.use_tanh_at_final else x.clamp(-1.0, 1.0)
