"""Vocoder config (`vocoder` section): flat HiFi-GAN (LTX-2) or nested ``{vocoder, bwe}`` BigVGAN-v2 + BWE
(LTX-2.3).

The kind follows the presence of the ``bwe`` key, as in the official configurator. Missing keys take the
official defaults; unsupported values raise ConfigError naming key, value and what is supported.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ltx2stream.errors import check_config_value
from ltx2stream.models.audio._config_common import FLAVOURS, SECTION_VOCODER
from ltx2stream.models.audio._config_common import ints as _ints
from ltx2stream.models.audio._config_common import require as _require


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
        _require(
            s,
            len(self.upsample_rates) == len(self.upsample_kernel_sizes),
            f"upsample_rates={list(self.upsample_rates)} and upsample_kernel_sizes="
            f"{list(self.upsample_kernel_sizes)} differ in length",
        )
        for i, (r, k) in enumerate(zip(self.upsample_rates, self.upsample_kernel_sizes, strict=True)):
            _require(
                s,
                k >= r and (k - r) % 2 == 0,
                f"upsample_kernel_sizes[{i}]={k} with upsample_rates[{i}]={r}: need kernel >= rate "
                "and an even kernel - rate (exact x rate upsampling)",
            )
        _require(
            s,
            len(self.resblock_kernel_sizes) == len(self.resblock_dilation_sizes)
            and all(len(d) == 3 for d in self.resblock_dilation_sizes),
            f"resblock_kernel_sizes={list(self.resblock_kernel_sizes)} needs one (d1, d2, d3) "
            f"dilation triple each; got {[list(d) for d in self.resblock_dilation_sizes]}",
        )
        _require(
            s,
            self.upsample_initial_channel % 2 ** len(self.upsample_rates) == 0,
            f"upsample_initial_channel={self.upsample_initial_channel} must be divisible by "
            f"2**{len(self.upsample_rates)}",
        )

    @property
    def hop_product(self) -> int:
        """Output samples per input frame (product of upsample_rates: 240 for LTX-2, 160 for the 2.3
        vocoder)."""
        return math.prod(self.upsample_rates)

    @classmethod
    def from_metadata(
        cls,
        section: Mapping[str, Any],
        *,
        output_sampling_rate: int | None = None,
        apply_final_activation: bool = True,
    ) -> GeneratorConfig:
        return cls(
            resblock=str(section.get("resblock", "1")),
            upsample_rates=_ints(section.get("upsample_rates", (6, 5, 2, 2, 2))),
            upsample_kernel_sizes=_ints(section.get("upsample_kernel_sizes", (16, 15, 8, 4, 4))),
            resblock_kernel_sizes=_ints(section.get("resblock_kernel_sizes", (3, 7, 11))),
            resblock_dilation_sizes=tuple(
                _ints(d) for d in section.get("resblock_dilation_sizes", [[1, 3, 5]] * 3)
            ),
            upsample_initial_channel=int(section.get("upsample_initial_channel", 1024)),
            activation=str(section.get("activation", "snake")),
            use_tanh_at_final=bool(section.get("use_tanh_at_final", True)),
            use_bias_at_final=bool(section.get("use_bias_at_final", True)),
            apply_final_activation=apply_final_activation,
            stereo=bool(section.get("stereo", True)),
            output_sampling_rate=int(
                output_sampling_rate
                if output_sampling_rate is not None
                else section.get("output_sampling_rate", 24000)
            ),
        )

    def to_metadata(self) -> dict[str, Any]:
        return {
            "upsample_initial_channel": self.upsample_initial_channel,
            "resblock": self.resblock,
            "upsample_rates": list(self.upsample_rates),
            "resblock_kernel_sizes": list(self.resblock_kernel_sizes),
            "upsample_kernel_sizes": list(self.upsample_kernel_sizes),
            "resblock_dilation_sizes": [list(d) for d in self.resblock_dilation_sizes],
            "stereo": self.stereo,
            "use_tanh_at_final": self.use_tanh_at_final,
            "activation": self.activation,
            "use_bias_at_final": self.use_bias_at_final,
        }


@dataclass(frozen=True)
class BWEConfig:
    """LTX-2.3 bandwidth extension: causal log-mel of the vocoder output -> residual generator + sinc skip."""

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
        _require(
            s,
            self.output_sampling_rate % self.input_sampling_rate == 0,
            f"output_sampling_rate={self.output_sampling_rate} must be an integer multiple of "
            f"input_sampling_rate={self.input_sampling_rate}",
        )
        _require(
            s,
            self.generator.hop_product == self.hop_length * self.ratio,
            f"product of upsample_rates {self.generator.hop_product} must equal hop_length * ratio = "
            f"{self.hop_length} * {self.ratio}",
        )
        _require(s, self.win_size == self.n_fft, f"win_size={self.win_size} must equal n_fft={self.n_fft}")
        _require(
            s,
            self.num_mels * 2 == 128,
            f"num_mels={self.num_mels} must be 64 (stereo conv_pre has 128 inputs)",
        )

    @property
    def ratio(self) -> int:
        return self.output_sampling_rate // self.input_sampling_rate

    @classmethod
    def from_metadata(cls, section: Mapping[str, Any]) -> BWEConfig:
        return cls(
            generator=GeneratorConfig.from_metadata(
                section,
                output_sampling_rate=int(section["output_sampling_rate"]),
                apply_final_activation=False,
            ),
            input_sampling_rate=int(section["input_sampling_rate"]),
            output_sampling_rate=int(section["output_sampling_rate"]),
            hop_length=int(section["hop_length"]),
            n_fft=int(section["n_fft"]),
            win_size=int(section.get("win_size", section["n_fft"])),
            num_mels=int(section["num_mels"]),
        )

    def to_metadata(self) -> dict[str, Any]:
        return {
            **self.generator.to_metadata(),
            "apply_final_activation": False,
            "input_sampling_rate": self.input_sampling_rate,
            "output_sampling_rate": self.output_sampling_rate,
            "hop_length": self.hop_length,
            "n_fft": self.n_fft,
            "win_size": self.win_size,
            "num_mels": self.num_mels,
        }


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
            _require(
                SECTION_VOCODER,
                self.vocoder.output_sampling_rate == self.bwe.input_sampling_rate,
                f"vocoder rate {self.vocoder.output_sampling_rate} != bwe input_sampling_rate "
                f"{self.bwe.input_sampling_rate}",
            )

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
        main = GeneratorConfig.from_metadata(
            section.get("vocoder", {}), output_sampling_rate=bwe.input_sampling_rate
        )
        return cls(vocoder=main, bwe=bwe)

    def to_metadata(self) -> dict[str, Any]:
        if self.bwe is None:
            return {**self.vocoder.to_metadata(), "output_sampling_rate": self.vocoder.output_sampling_rate}
        return {"vocoder": self.vocoder.to_metadata(), "bwe": self.bwe.to_metadata()}


def tiny_vocoder_config(flavour: str = "ltx2") -> VocoderConfig:
    """Tiny channels and rates, same structure. Mel input stays stereo x 64 bins (conv_pre has 128 inputs)."""
    check_config_value("tiny_vocoder_config", "flavour", flavour, FLAVOURS)
    if flavour == "ltx2":
        gen = GeneratorConfig(
            resblock="1",
            upsample_rates=(3, 2),
            upsample_kernel_sizes=(7, 4),
            resblock_kernel_sizes=(3, 5),
            resblock_dilation_sizes=((1, 3, 5), (1, 3, 5)),
            upsample_initial_channel=16,
            output_sampling_rate=600,
        )
        return VocoderConfig(vocoder=gen)
    amp: dict[str, Any] = {
        "resblock": "AMP1",
        "activation": "snakebeta",
        "resblock_kernel_sizes": (3, 5),
        "resblock_dilation_sizes": ((1, 3, 5), (1, 3, 5)),
        "use_tanh_at_final": False,
        "use_bias_at_final": False,
    }
    main = GeneratorConfig(
        upsample_rates=(2, 2),
        upsample_kernel_sizes=(4, 4),
        upsample_initial_channel=16,
        output_sampling_rate=400,
        **amp,
    )  # 100 mel frames/s x 4 = 400 Hz
    bwe_gen = GeneratorConfig(
        upsample_rates=(3, 2, 2),
        upsample_kernel_sizes=(7, 4, 4),
        upsample_initial_channel=16,
        apply_final_activation=False,
        output_sampling_rate=1200,
        **amp,
    )
    bwe = BWEConfig(
        generator=bwe_gen,
        input_sampling_rate=400,
        output_sampling_rate=1200,
        hop_length=4,
        n_fft=16,
        win_size=16,
        num_mels=64,
    )
    return VocoderConfig(vocoder=main, bwe=bwe)
