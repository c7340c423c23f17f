"""Frozen configs for the audio VAE (`audio_vae` section) and the vocoder (`vocoder` section).

The embedded checkpoint config is read with the official key names:

* ``audio_vae.model.params.ddconfig`` (architecture), ``audio_vae.model.params.sampling_rate``,
  ``audio_vae.preprocessing.stft`` (filter_length, hop_length, win_length, causal) and
  ``audio_vae.preprocessing.mel`` (n_mel_channels, mel_fmin, mel_fmax).
* ``vocoder``: flat HiFi-GAN generator (LTX-2, ``resblock "1"``) or nested ``{vocoder, bwe}`` (LTX-2.3,
  BigVGAN-v2 ``resblock "AMP1"`` + bandwidth extension). The choice follows the presence of the ``bwe`` key,
  as in the official configurator.

Missing keys take the official defaults; unsupported values raise ConfigError naming key, value and what is
supported.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ltx2stream.errors import check_config_value
from ltx2stream.models.audio._config_common import FLAVOURS, SECTION_VAE
from ltx2stream.models.audio._config_common import ints as _ints
from ltx2stream.models.audio._config_common import require as _require
from ltx2stream.models.audio.vocoder_config import (  # re-exported: one import point for all audio configs
    BWEConfig,
    GeneratorConfig,
    VocoderConfig,
    tiny_vocoder_config,
)

__all__ = [
    "AudioVAEConfig",
    "BWEConfig",
    "GeneratorConfig",
    "VocoderConfig",
    "tiny_audio_vae_config",
    "tiny_vocoder_config",
]

# ----------------------------------------------------------------------------------------------------- audio


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
        _require(
            s,
            not used,
            f"attn_resolutions={list(self.attn_resolutions)} would add attention at {sorted(used)};"
            " only attention-free audio VAEs are supported",
        )
        _require(
            s,
            len(self.ch_mult) >= 1 and self.mel_bins % self.time_scale == 0,
            f"mel_bins={self.mel_bins} must be divisible by 2**(len(ch_mult)-1)={self.time_scale}",
        )
        _require(
            s,
            self.win_length <= self.filter_length,
            f"win_length={self.win_length} must be <= filter_length={self.filter_length}",
        )

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
        mel_bins = (
            dd.get("mel_bins") or mel.get("n_mel_channels") or section.get("variables", {}).get("mel_bins")
        )
        return cls(
            ch=int(dd.get("ch", 128)),
            ch_mult=_ints(dd.get("ch_mult", (1, 2, 4))),
            num_res_blocks=int(dd.get("num_res_blocks", 2)),
            z_channels=int(dd.get("z_channels", 8)),
            double_z=bool(dd.get("double_z", True)),
            in_channels=int(dd.get("in_channels", 2)),
            out_ch=int(dd.get("out_ch", 2)),
            resolution=int(dd.get("resolution", 256)),
            mel_bins=int(mel_bins or 64),
            norm_type=str(dd.get("norm_type", "pixel")),
            causality_axis=str(dd.get("causality_axis", "height")),
            attn_resolutions=_ints(dd.get("attn_resolutions", (8, 16, 32)) or ()),
            mid_block_add_attention=bool(dd.get("mid_block_add_attention", True)),
            dropout=float(dd.get("dropout", 0.0)),
            sampling_rate=int(params.get("sampling_rate", 16000)),
            filter_length=int(stft.get("filter_length", 1024)),
            hop_length=int(stft.get("hop_length", 160)),
            win_length=int(stft.get("win_length", stft.get("filter_length", 1024))),
            causal=bool(stft.get("causal", True)),
            mel_fmin=float(mel.get("mel_fmin", 0.0)),
            mel_fmax=float(mel.get("mel_fmax", int(params.get("sampling_rate", 16000)) / 2)),
        )

    def to_metadata(self) -> dict[str, Any]:
        dd = {
            "double_z": self.double_z,
            "mel_bins": self.mel_bins,
            "z_channels": self.z_channels,
            "resolution": self.resolution,
            "in_channels": self.in_channels,
            "out_ch": self.out_ch,
            "ch": self.ch,
            "ch_mult": list(self.ch_mult),
            "num_res_blocks": self.num_res_blocks,
            "attn_resolutions": list(self.attn_resolutions),
            "dropout": self.dropout,
            "mid_block_add_attention": self.mid_block_add_attention,
            "norm_type": self.norm_type,
            "causality_axis": self.causality_axis,
        }
        return {
            "model": {"params": {"ddconfig": dd, "sampling_rate": self.sampling_rate}},
            "preprocessing": {
                "audio": {"sampling_rate": self.sampling_rate, "stereo": True},
                "stft": {
                    "filter_length": self.filter_length,
                    "hop_length": self.hop_length,
                    "win_length": self.win_length,
                    "causal": self.causal,
                },
                "mel": {
                    "n_mel_channels": self.mel_bins,
                    "mel_fmin": self.mel_fmin,
                    "mel_fmax": self.mel_fmax,
                },
            },
        }


def tiny_audio_vae_config(flavour: str = "ltx2") -> AudioVAEConfig:
    """Tiny channels, same structure; the latent stays [B, 8, T, 16] (128 features per token)."""
    check_config_value("tiny_audio_vae_config", "flavour", flavour, FLAVOURS)
    return AudioVAEConfig(
        ch=8, ch_mult=(1, 2, 4), num_res_blocks=1, attn_resolutions=(), mid_block_add_attention=False
    )
