"""Frozen configs for the audio VAE (`audio_vae` section) and the vocoder (`vocoder` section).

The embedded checkpoint config is read with the official key names:

* ``audio_vae.model.params.ddconfig`` (architecture), ``audio_vae.model.params.sampling_rate``,
  ``audio_vae.preprocessing.stft`` (filter_length, hop_length, win_length, causal) and
  ``audio_vae.preprocessing.mel`` (n_mel_channels, mel_fmin, mel_fmax).
* ``vocoder``: flat HiFi-GAN generator (LTX-2, ``resblock "1"``) or nested ``{vocoder, bwe}`` (LTX-2.3, BigVGAN-v2
  ``resblock "AMP1"`` + bandwidth extension). The choice follows the presence of the ``bwe`` key, as in the
  official configurator.

Missing keys take the official defaults; unsupported values raise ConfigError naming key, value and what is supported.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ltx2stream.errors import ConfigError, check_config_value

SECTION_VAE = "audio_vae"
SECTION_VOCODER = "vocoder"
FLAVOURS = ("ltx2", "ltx2.3")


def _ints(value: Any) -> tuple[int, ...]:
    return tuple(int(v) for v in value)


def _require(section: str, ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(f"{section}: {message}", code="config.unsupported_value")


# ----------------------------------------------------------------------------------------------------- audio VAE


@dataclass(frozen=True)
class AudioVAEConfig:
    """Audio VAE architecture + mel front end (LTX-2 and LTX-2.3 use the same values)."""

    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 2, 4)
    num_res_blocks: int = 2
    z_channels: int = 8
    double_z: bool = True
    in_channels: int = 2
    out_ch: int = 2
    resolution: int = 256
    mel_bins: int = 64
    norm_type: str = "pixel"
    causality_axis: str = "height"
    attn_resolutions: tuple[int, ...] = ()
    mid_block_add_attention: bool = False
    dropout: float = 0.0
    sampling_rate: int = 16000
    filter_length: int = 1024
    hop_length: int = 160
    win_length: int = 1024
    causal: bool = True
    mel_fmin: float = 0.0
    mel_fmax: float = 8000.0

    def __post_init__(self) -> None:
        s = SECTION_VAE
        check_config_value(s, "norm_type", self.norm_type, ("pixel",))
        check_config_value(s, "causality_axis", self.causality_axis, ("height",))
        check_config_value(s, "mid_block_add_attention", self.mid_block_add_attention, (False,))
        check_config_value(s, "in_channels", self.in_channels, (2,))
        check_config_value(s, "out_ch", self.out_ch, (2,))
        used = {self.resolution // 2**i for i in range(len(self.ch_mult))} & set(self.attn_resolutions)
        _require(s, not used, f"attn_resolutions={list(self.attn_resolutions)} would add attention at {sorted(used)};"
                 " only attention-free audio VAEs are supported")
        _require(s, len(self.ch_mult) >= 1 and self.mel_bins % self.time_scale == 0,
                 f"mel_bins={self.mel_bins} must be divisible by 2**(len(ch_mult)-1)={self.time_scale}")
        _require(s, self.win_length <= self.filter_length,
                 f"win_length={self.win_length} must be <= filter_length={self.filter_length}")

    @property
    def time_scale(self) -> int:
        """Downsampling factor along time and frequency (4 for ch_mult of length 3)."""
        return 2 ** (len(self.ch_mult) - 1)

    @property
    def latent_bins(self) -> int:
        return self.mel_bins // self.time_scale

    @property
    def latent_features(self) -> int:
        """Features per audio token: z_channels * latent_bins (8 * 16 = 128 for the released models)."""
        return self.z_channels * self.latent_bins

    @property
    def latents_per_second(self) -> float:
        return self.sampling_rate / self.hop_length / self.time_scale

    def mel_frames_for_latents(self, latent_frames: int) -> int:
        """Decoder output length: T_mel = max(4 * T_lat - 3, 1) (causal rule of the official decoder)."""
        return max(latent_frames * self.time_scale - (self.time_scale - 1), 1)

    @classmethod
    def from_metadata(cls, section: Mapping[str, Any]) -> AudioVAEConfig:
        params = section.get("model", {}).get("params", {})
        dd = params.get("ddconfig", {})
        pre = section.get("preprocessing", {})
        stft, mel = pre.get("stft", {}), pre.get("mel", {})
        mel_bins = dd.get("mel_bins") or mel.get("n_mel_channels") or section.get("variables", {}).get("mel_bins")
        return cls(
            ch=int(dd.get("ch", 128)), ch_mult=_ints(dd.get("ch_mult", (1, 2, 4))),
            num_res_blocks=int(dd.get("num_res_blocks", 2)), z_channels=int(dd.get("z_channels", 8)),
            double_z=bool(dd.get("double_z", True)), in_channels=int(dd.get("in_channels", 2)),
            out_ch=int(dd.get("out_ch", 2)), resolution=int(dd.get("resolution", 256)),
            mel_bins=int(mel_bins or 64), norm_type=str(dd.get("norm_type", "pixel")),
            causality_axis=str(dd.get("causality_axis", "height")),
            attn_resolutions=_ints(dd.get("attn_resolutions", (8, 16, 32)) or ()),
            mid_block_add_attention=bool(dd.get("mid_block_add_attention", True)),
            dropout=float(dd.get("dropout", 0.0)), sampling_rate=int(params.get("sampling_rate", 16000)),
            filter_length=int(stft.get("filter_length", 1024)), hop_length=int(stft.get("hop_length", 160)),
            win_length=int(stft.get("win_length", stft.get("filter_length", 1024))),
            causal=bool(stft.get("causal", True)), mel_fmin=float(mel.get("mel_fmin", 0.0)),
            mel_fmax=float(mel.get("mel_fmax", int(params.get("sampling_rate", 16000)) / 2)),
        )

    def to_metadata(self) -> dict[str, Any]:
        dd = {
            "double_z": self.double_z, "mel_bins": self.mel_bins, "z_channels": self.z_channels,
            "resolution": self.resolution, "in_channels": self.in_channels, "out_ch": self.out_ch, "ch": self.ch,
            "ch_mult": list(self.ch_mult), "num_res_blocks": self.num_res_blocks,
            "attn_resolutions": list(self.attn_resolutions), "dropout": self.dropout,
            "mid_block_add_attention": self.mid_block_add_attention, "norm_type": self.norm_type,
            "causality_axis": self.causality_axis,
        }
        return {
            "model": {"params": {"ddconfig": dd, "sampling_rate": self.sampling_rate}},
            "preprocessing": {
                "audio": {"sampling_rate": self.sampling_rate, "stereo": True},
                "stft": {"filter_length": self.filter_length, "hop_length": self.hop_length,
                         "win_length": self.win_length, "causal": self.causal},
                "mel": {"n_mel_channels": self.mel_bins, "mel_fmin": self.mel_fmin, "mel_fmax": self.mel_fmax},
            },
        }


def tiny_audio_vae_config(flavour: str = "ltx2") -> AudioVAEConfig:
    """Tiny channels, same structure; the latent stays [B, 8, T, 16] (128 features per token)."""
    check_config_value("tiny_audio_vae_config", "flavour", flavour, FLAVOURS)
    return AudioVAEConfig(ch=8, ch_mult=(1, 2, 4), num_res_blocks=1, attn_resolutions=(),
                          mid_block_add_attention=False)


# ------------------------------------------------------------------------------------------------------ vocoder


@dataclass(frozen=True)
class GeneratorConfig:
    """One mel -> waveform generator: HiFi-GAN (``resblock "1"``) or BigVGAN-v2 (``resblock "AMP1"``)."""

    resblock: str = "1"
    upsample_rates: tuple[int, ...] = (6, 5, 2, 2, 2)
    upsample_kernel_sizes: tuple[int, ...] = (16, 15, 8, 4, 4)
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    upsample_initial_channel: int = 1024
    activation: str = "snake"
    use_tanh_at_final: bool = True
    use_bias_at_final: bool = True
    apply_final_activation: bool = True
    stereo: bool = True
    output_sampling_rate: int = 24000

    def __post_init__(self) -> None:
        s = SECTION_VOCODER
        check_config_value(s, "resblock", self.resblock, ("1", "AMP1"))
        check_config_value(s, "stereo", self.stereo, (True,))
        if self.resblock == "AMP1":
            check_config_value(s, "activation", self.activation, ("snakebeta",))
        _require(s, len(self.upsample_rates) == len(self.upsample_kernel_sizes),
                 f"upsample_rates={list(self.upsample_rates)} and upsample_kernel_sizes="
                 f"{list(self.upsample_kernel_sizes)} differ in length")
        for i, (r, k) in enumerate(zip(self.upsample_rates, self.upsample_kernel_sizes, strict=True)):
            _require(s, k >= r and (k - r) % 2 == 0,
                     f"upsample_kernel_sizes[{i}]={k} with upsample_rates[{i}]={r}: need kernel >= rate and an even "
                     "kernel - rate (exact x rate upsampling)")
        _require(s, len(self.resblock_kernel_sizes) == len(self.resblock_dilation_sizes)
                 and all(len(d) == 3 for d in self.resblock_dilation_sizes),
                 f"resblock_kernel_sizes={list(self.resblock_kernel_sizes)} needs one (d1, d2, d3) dilation triple "
                 f"each; got {[list(d) for d in self.resblock_dilation_sizes]}")
        _require(s, self.upsample_initial_channel % 2 ** len(self.upsample_rates) == 0,
                 f"upsample_initial_channel={self.upsample_initial_channel} must be divisible by "
                 f"2**{len(self.upsample_rates)}")

    @property
    def hop_product(self) -> int:
        """Output samples per input frame (product of upsample_rates: 240 for LTX-2, 160 for the 2.3 vocoder)."""
        return math.prod(self.upsample_rates)

    @classmethod
    def from_metadata(cls, section: Mapping[str, Any], *, output_sampling_rate: int | None = None,
                      apply_final_activation: bool = True) -> GeneratorConfig:
        return cls(
            resblock=str(section.get("resblock", "1")),
            upsample_rates=_ints(section.get("upsample_rates", (6, 5, 2, 2, 2))),
            upsample_kernel_sizes=_ints(section.get("upsample_kernel_sizes", (16, 15, 8, 4, 4))),
            resblock_kernel_sizes=_ints(section.get("resblock_kernel_sizes", (3, 7, 11))),
            resblock_dilation_sizes=tuple(_ints(d) for d in section.get("resblock_dilation_sizes", [[1, 3, 5]] * 3)),
            upsample_initial_channel=int(section.get("upsample_initial_channel", 1024)),
            activation=str(section.get("activation", "snake")),
            use_tanh_at_final=bool(section.get("use_tanh_at_final", True)),
            use_bias_at_final=bool(section.get("use_bias_at_final", True)),
            apply_final_activation=apply_final_activation,
            stereo=bool(section.get("stereo", True)),
            output_sampling_rate=int(output_sampling_rate if output_sampling_rate is not None
                                     else section.get("output_sampling_rate", 24000)),
        )

    def to_metadata(self) -> dict[str, Any]:
        return {
            "upsample_initial_channel": self.upsample_initial_channel, "resblock": self.resblock,
            "upsample_rates": list(self.upsample_rates), "resblock_kernel_sizes": list(self.resblock_kernel_sizes),
            "upsample_kernel_sizes": list(self.upsample_kernel_sizes),
            "resblock_dilation_sizes": [list(d) for d in self.resblock_dilation_sizes], "stereo": self.stereo,
            "use_tanh_at_final": self.use_tanh_at_final, "activation": self.activation,
            "use_bias_at_final": self.use_bias_at_final,
        }


@dataclass(frozen=True)
class BWEConfig:
    """Bandwidth extension of LTX-2.3: causal log-mel of the vocoder output -> residual generator + sinc skip."""

    generator: GeneratorConfig
    input_sampling_rate: int = 16000
    output_sampling_rate: int = 48000
    hop_length: int = 80
    n_fft: int = 512
    win_size: int = 512
    num_mels: int = 64

    def __post_init__(self) -> None:
        s = f"{SECTION_VOCODER}.bwe"
        check_config_value(s, "resblock", self.generator.resblock, ("AMP1",))
        _require(s, self.output_sampling_rate % self.input_sampling_rate == 0,
                 f"output_sampling_rate={self.output_sampling_rate} must be an integer multiple of "
                 f"input_sampling_rate={self.input_sampling_rate}")
        _require(s, self.generator.hop_product == self.hop_length * self.ratio,
                 f"product of upsample_rates {self.generator.hop_product} must equal hop_length * ratio = "
                 f"{self.hop_length} * {self.ratio}")
        _require(s, self.win_size == self.n_fft, f"win_size={self.win_size} must equal n_fft={self.n_fft}")
        _require(s, self.num_mels * 2 == 128, f"num_mels={self.num_mels} must be 64 (stereo conv_pre has 128 inputs)")

    @property
    def ratio(self) -> int:
        return self.output_sampling_rate // self.input_sampling_rate

    @classmethod
    def from_metadata(cls, section: Mapping[str, Any]) -> BWEConfig:
        return cls(
            generator=GeneratorConfig.from_metadata(section, output_sampling_rate=int(section["output_sampling_rate"]),
                                                    apply_final_activation=False),
            input_sampling_rate=int(section["input_sampling_rate"]),
            output_sampling_rate=int(section["output_sampling_rate"]), hop_length=int(section["hop_length"]),
            n_fft=int(section["n_fft"]), win_size=int(section.get("win_size", section["n_fft"])),
            num_mels=int(section["num_mels"]),
        )

    def to_metadata(self) -> dict[str, Any]:
        return {**self.generator.to_metadata(), "apply_final_activation": False,
                "input_sampling_rate": self.input_sampling_rate, "output_sampling_rate": self.output_sampling_rate,
                "hop_length": self.hop_length, "n_fft": self.n_fft, "win_size": self.win_size,
                "num_mels": self.num_mels}


@dataclass(frozen=True)
class VocoderConfig:
    """``vocoder`` section: a HiFi-GAN generator alone (LTX-2) or BigVGAN-v2 + BWE (LTX-2.3)."""

    vocoder: GeneratorConfig
    bwe: BWEConfig | None = None

    def __post_init__(self) -> None:
        if self.bwe is None:
            check_config_value(SECTION_VOCODER, "resblock", self.vocoder.resblock, ("1",))
        else:
            check_config_value(f"{SECTION_VOCODER}.vocoder", "resblock", self.vocoder.resblock, ("AMP1",))
            _require(SECTION_VOCODER, self.vocoder.output_sampling_rate == self.bwe.input_sampling_rate,
                     f"vocoder rate {self.vocoder.output_sampling_rate} != bwe input_sampling_rate "
                     f"{self.bwe.input_sampling_rate}")

    @property
    def kind(self) -> str:
        return "hifigan" if self.bwe is None else "bigvgan_bwe"

    @property
    def output_sampling_rate(self) -> int:
        """Sample rate of the final waveform (24 kHz LTX-2, 48 kHz LTX-2.3)."""
        return self.vocoder.output_sampling_rate if self.bwe is None else self.bwe.output_sampling_rate

    @property
    def hop_product(self) -> int:
        """Final output samples per mel frame (240 for LTX-2, 160 * 3 = 480 for LTX-2.3)."""
        return self.vocoder.hop_product * (1 if self.bwe is None else self.bwe.ratio)

    def output_samples(self, mel_frames: int) -> int:
        return mel_frames * self.hop_product

    @classmethod
    def from_metadata(cls, section: Mapping[str, Any]) -> VocoderConfig:
        if "bwe" not in section:
            return cls(vocoder=GeneratorConfig.from_metadata(section))
        bwe = BWEConfig.from_metadata(section["bwe"])
        main = GeneratorConfig.from_metadata(section.get("vocoder", {}), output_sampling_rate=bwe.input_sampling_rate)
        return cls(vocoder=main, bwe=bwe)

    def to_metadata(self) -> dict[str, Any]:
        if self.bwe is None:
            return {**self.vocoder.to_metadata(), "output_sampling_rate": self.vocoder.output_sampling_rate}
        return {"vocoder": self.vocoder.to_metadata(), "bwe": self.bwe.to_metadata()}


def tiny_vocoder_config(flavour: str = "ltx2") -> VocoderConfig:
    """Tiny channels and rates, same structure. Mel input stays stereo x 64 bins (conv_pre has 128 inputs)."""
    check_config_value("tiny_vocoder_config", "flavour", flavour, FLAVOURS)
    if flavour == "ltx2":
        gen = GeneratorConfig(resblock="1", upsample_rates=(3, 2), upsample_kernel_sizes=(7, 4),
                              resblock_kernel_sizes=(3, 5), resblock_dilation_sizes=((1, 3, 5), (1, 3, 5)),
                              upsample_initial_channel=16, output_sampling_rate=600)
        return VocoderConfig(vocoder=gen)
    amp = dict(resblock="AMP1", activation="snakebeta", resblock_kernel_sizes=(3, 5),
               resblock_dilation_sizes=((1, 3, 5), (1, 3, 5)), use_tanh_at_final=False, use_bias_at_final=False)
    main = GeneratorConfig(upsample_rates=(2, 2), upsample_kernel_sizes=(4, 4), upsample_initial_channel=16,
                           output_sampling_rate=400, **amp)  # 100 mel frames/s x 4 = 400 Hz
    bwe_gen = GeneratorConfig(upsample_rates=(3, 2, 2), upsample_kernel_sizes=(7, 4, 4), upsample_initial_channel=16,
                              apply_final_activation=False, output_sampling_rate=1200, **amp)
    bwe = BWEConfig(generator=bwe_gen, input_sampling_rate=400, output_sampling_rate=1200, hop_length=4, n_fft=16,
                    win_size=16, num_mels=64)
    return VocoderConfig(vocoder=main, bwe=bwe)
