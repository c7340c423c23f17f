"""Config of the LTX-2.5 diffusion video VAE (``vae._class_name`` other than ``CausalVideoAutoencoder``).

Nested layout: ``vae.decoder`` holds the decoder keys (``stage_channels``, ``stage_depths``, ``stage_kernels``,
``upsamples``, ``stage5_kernel``, ``stage5_channels``, ``head_dim`` / ``na_head_dim``, ``t_emb_dim``,
``default_num_inference_steps``, ``timestep_scale_multiplier``, ``in_channels``, ``out_channels``,
``patch_size``), ``vae.model_output_type`` sits beside it; ``vae.encoder`` is the conv encoder (``blocks``,
``out_channels`` = latent channels, ``patch_size``, ``norm_layer``, ``latent_log_var``, ``spatial_padding_mode``,
``dims``). Missing keys take the official class defaults (the 22B ladder below).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ltx2stream import codes
from ltx2stream.errors import ConfigError

SECTION = "vae"
CONV_CLASS_NAME = "CausalVideoAutoencoder"
OUTPUT_TYPES = ("v", "x0")

Kernel = tuple[int, int, int]
Upsample = tuple[Kernel, int]


def is_diffusion_vae(section: Mapping[str, Any]) -> bool:
    """The official selection rule: anything but ``CausalVideoAutoencoder`` (the default) is the diffusion VAE."""
    return section.get("_class_name", CONV_CLASS_NAME) != CONV_CLASS_NAME


@dataclass(frozen=True)
class DiffusionDecoderConfig:
    in_channels: int = 128
    out_channels: int = 3
    patch_size: int = 4
    head_dim: int = 64
    stage_channels: tuple[int, ...] = (1024, 512, 256, 256, 128)
    stage_depths: tuple[int, ...] = (4, 6, 4, 2, 8)
    stage_kernels: tuple[Kernel, ...] = ((3, 7, 7), (3, 7, 7), (3, 5, 5), (3, 5, 5), (3, 3, 3))
    upsamples: tuple[Upsample, ...] = (((1, 2, 2), 2), ((2, 1, 1), 2), ((2, 2, 2), 1), ((2, 2, 2), 2))
    stage5_kernel: Kernel = (3, 7, 7)
    stage5_channels: int | None = None
    t_emb_dim: int = 384
    num_steps: int = 2
    timestep_scale_multiplier: float = 1.0
    model_output_type: str = "v"
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)  # the section, for to_metadata

    def __post_init__(self) -> None:
        n = len(self.stage_channels)
        _require(
            n == len(self.stage_depths) == len(self.stage_kernels) == 5, "needs 5 stages", self.stage_depths
        )
        _require(len(self.upsamples) == n - 1, "needs 4 upsamples", self.upsamples)
        for c in (*self.stage_channels, self.channels5):
            _require(
                c % self.head_dim == 0, f"stage channels must be multiples of head_dim={self.head_dim}", c
            )
        _require(self.model_output_type in OUTPUT_TYPES, f"model_output_type must be one of {OUTPUT_TYPES}",
                 self.model_output_type)  # fmt: skip
        _require(self.num_steps >= 1, "default_num_inference_steps must be >= 1", self.num_steps)
        _require(self.head_dim % 8 == 0, "head_dim must be a multiple of 8 (RoPE split)", self.head_dim)
        t, h, w = 1, 1, 1
        for (st, sh, sw), _ in self.upsamples:
            t, h, w = t * st, h * sh, w * sw
        _require((t, h * self.patch_size, w * self.patch_size) == (8, 32, 32),
                 "upsamples x patch_size must give x8 time, x32 space", self.upsamples)  # fmt: skip

    @property
    def channels5(self) -> int:
        return self.stage5_channels if self.stage5_channels is not None else self.stage_channels[-1]

    @property
    def timesteps(self) -> list[float]:
        """linspace(1, 1/steps, steps): [1.0, 0.5] for 2 steps."""
        n = self.num_steps
        return [1.0 - i * (1.0 - 1.0 / n) / (n - 1) for i in range(n)] if n > 1 else [1.0]

    @property
    def trailing_pad_latent_frames(self) -> int:
        """The NATTEN border workaround: the last latent frame is replicated (K_t of stage 1 // 2)·2 times."""
        return (self.stage_kernels[0][0] // 2) * 2

    def min_latent_size(self) -> tuple[int, int, int]:
        """Per-axis latent floor so every stage's NA sees sizes >= its kernel (official rule)."""
        mins, cum = [1, 1, 1], [1, 1, 1]
        for i, ((st, sh, sw), _) in enumerate(self.upsamples):
            for a in range(3):
                mins[a] = max(mins[a], -(-self.stage_kernels[i][a] // cum[a]))
            cum = [cum[0] * st, cum[1] * sh, cum[2] * sw]
        for a in range(3):
            mins[a] = max(mins[a], -(-self.stage5_kernel[a] // cum[a]))
        return mins[0], mins[1], mins[2]

    @classmethod
    def from_metadata(cls, section: Mapping[str, Any]) -> DiffusionDecoderConfig:
        dec: Mapping[str, Any] = section.get("decoder", section)
        if not isinstance(dec, Mapping):
            raise ConfigError(f"{SECTION}: decoder={dec!r} must be an object", code=codes.CONFIG_BAD_TYPE)
        kw: dict[str, Any] = {}
        try:
            for key in ("stage_channels", "stage_depths"):
                if key in dec:
                    kw[key] = tuple(int(v) for v in dec[key])
            if "stage_kernels" in dec:
                kw["stage_kernels"] = tuple(_kernel(k) for k in dec["stage_kernels"])
            if "upsamples" in dec:
                kw["upsamples"] = tuple((_kernel(s), int(r)) for s, r in dec["upsamples"])
            if "stage5_kernel" in dec:
                kw["stage5_kernel"] = _kernel(dec["stage5_kernel"])
            if dec.get("stage5_channels") is not None:
                kw["stage5_channels"] = int(dec["stage5_channels"])
            return cls(
                in_channels=int(dec.get("in_channels", section.get("latent_channels", 128))),
                out_channels=int(dec.get("out_channels", 3)),
                patch_size=int(dec.get("patch_size", 4)),
                head_dim=int(dec.get("head_dim", dec.get("na_head_dim", 64))),
                t_emb_dim=int(dec.get("t_emb_dim", 384)),
                num_steps=int(dec.get("default_num_inference_steps", 2)),
                timestep_scale_multiplier=float(dec.get("timestep_scale_multiplier", 1.0)),
                model_output_type=str(section.get("model_output_type", "v")),
                raw=dict(section),
                **kw,
            )
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{SECTION}.decoder: malformed value: {e}", code=codes.CONFIG_BAD_TYPE) from e


def encoder_section(section: Mapping[str, Any]) -> dict[str, Any]:
    """The nested ``vae.encoder`` keys as a flat conv-VAE section (the conv encoder is unchanged)."""
    enc: Mapping[str, Any] = section.get("encoder", section)
    blocks = enc.get("blocks", enc.get("encoder_blocks", []))
    out: dict[str, Any] = {
        "dims": enc.get("dims", section.get("dims", 3)),
        "in_channels": enc.get("in_channels", 3),
        "latent_channels": enc.get("out_channels", section.get("latent_channels", 128)),
        "patch_size": enc.get("patch_size", 4),
        "norm_layer": enc.get("norm_layer", "pixel_norm"),
        "latent_log_var": enc.get("latent_log_var", "uniform"),
        "encoder_blocks": blocks,
        "spatial_padding_mode": enc.get("spatial_padding_mode", "zeros"),
    }
    return out


def _kernel(value: Any) -> Kernel:
    a, b, c = (int(v) for v in value)
    return a, b, c


def _require(ok: bool, message: str, value: object) -> None:
    if not ok:
        raise ConfigError(f"{SECTION}.decoder: {message}; got {value!r}", code=codes.CONFIG_UNSUPPORTED_VALUE)
