"""Frozen config of a latent upsampler, read from the upsampler file's own flat embedded config.

Upsampler files are separate safetensors files whose ``metadata["config"]`` JSON is one flat object (no
sections) with the official keys and defaults:

=====================  =======  ==================================================================
key                    default  meaning
=====================  =======  ==================================================================
in_channels            128      latent channels in and out
mid_channels           512      width of the residual trunk (1024 in every released file)
num_blocks_per_stage   4        residual blocks before and after the resampler
dims                   3        3 = Conv3d trunk (released files); 2 = per-frame Conv2d trunk
spatial_upsample       True     resample H and W
temporal_upsample      False    resample F (F -> 2F - 1)
spatial_scale          2.0      spatial factor; the rational resampler supports 0.75, 1.5, 2, 4
rational_resampler     False    pixel-shuffle by ``num`` then a binomial blur with stride ``den``
=====================  =======  ==================================================================

Keys the model does not use (``_class_name`` and the like) are ignored. Unsupported values raise ConfigError.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any, Literal

from ltx2stream import codes
from ltx2stream.errors import ConfigError, check_config_value
from ltx2stream.types import VideoLatentShape

log = logging.getLogger(__name__)

SECTION = "upsampler"
# Rational spatial scales and their (num, den): pixel-shuffle by num, blur-downsample by den.
RATIONAL_SCALES: dict[float, tuple[int, int]] = {0.75: (3, 4), 1.5: (3, 2), 2.0: (2, 1), 4.0: (4, 1)}
GROUPS = 32  # GroupNorm groups everywhere in the upsampler

TinyKind = Literal["x2", "x2_rational", "x1.5", "temporal_x2", "spatiotemporal_x2"]
TINY_KINDS: tuple[str, ...] = ("x2", "x2_rational", "x1.5", "temporal_x2", "spatiotemporal_x2")


@dataclass(frozen=True)
class UpsamplerConfig:
    """Architecture of a ``LatentUpsampler`` (official key names, official defaults)."""

    in_channels: int = 128
    mid_channels: int = 512
    num_blocks_per_stage: int = 4
    dims: int = 3
    spatial_upsample: bool = True
    temporal_upsample: bool = False
    spatial_scale: float = 2.0
    rational_resampler: bool = False

    def __post_init__(self) -> None:
        check_config_value(SECTION, "dims", self.dims, (2, 3))
        _require(self.in_channels >= 1, f"in_channels={self.in_channels} must be >= 1")
        _require(
            self.mid_channels >= GROUPS and self.mid_channels % GROUPS == 0,
            f"mid_channels={self.mid_channels} must be a positive multiple of {GROUPS} (GroupNorm groups)",
        )
        _require(
            self.num_blocks_per_stage >= 0, f"num_blocks_per_stage={self.num_blocks_per_stage} must be >= 0"
        )
        _require(
            self.spatial_upsample or self.temporal_upsample,
            "spatial_upsample and temporal_upsample are both false; one of them must be true",
        )
        if self.kind == "spatial":
            supported = tuple(RATIONAL_SCALES) if self.rational_resampler else (2.0,)
            check_config_value(SECTION, "spatial_scale", self.spatial_scale, supported)
        if self.kind == "spatiotemporal":  # one Conv3d + 3-D pixel shuffle: always x2 on every axis
            check_config_value(SECTION, "spatial_scale", self.spatial_scale, (2.0,))
            check_config_value(SECTION, "rational_resampler", self.rational_resampler, (False,))
        if self.dims == 2:
            _require(
                self.spatial_upsample and not self.temporal_upsample and not self.rational_resampler,
                "dims=2 (per-frame Conv2d trunk) is supported only for the plain spatial x2 upsampler",
            )

    @property
    def kind(self) -> str:
        """``spatial``, ``temporal`` or ``spatiotemporal``."""
        if self.spatial_upsample and self.temporal_upsample:
            return "spatiotemporal"
        return "spatial" if self.spatial_upsample else "temporal"

    @property
    def rational(self) -> tuple[int, int]:
        """(num, den) of the spatial factor: (2, 1) for the plain and the combined resamplers."""
        if self.kind == "spatial" and self.rational_resampler:
            return RATIONAL_SCALES[self.spatial_scale]
        return (2, 1) if self.spatial_upsample else (1, 1)

    def output_size(self, frames: int, height: int, width: int) -> tuple[int, int, int]:
        """Latent (F, H, W) after upsampling.

        Spatial: ``ceil(H * num / den)`` (pixel-shuffle by num, then a 5x5 blur with padding 2 and stride den:
        ``floor((H*num - 1) / den) + 1``), e.g. x1.5 maps 16 -> 24 and 5 -> 8. Temporal: ``2F - 1`` (the
        first of the doubled frames is dropped, as the first latent frame stands for one pixel frame).
        """
        num, den = self.rational
        h, w = (-(-height * num // den), -(-width * num // den))
        f = 2 * frames - 1 if self.temporal_upsample else frames
        return f, h, w

    def output_shape(self, shape: VideoLatentShape) -> VideoLatentShape:
        """``shape`` after upsampling (see ``output_size``); channels and batch unchanged."""
        f, h, w = self.output_size(shape.frames, shape.height, shape.width)
        return VideoLatentShape(shape.batch, shape.channels, f, h, w)

    @property
    def scale(self) -> Fraction:
        num, den = self.rational
        return Fraction(num, den)

    @classmethod
    def from_metadata(cls, config: Mapping[str, Any]) -> UpsamplerConfig:
        """Build from the file's flat ``metadata["config"]`` object (absent keys: official defaults)."""
        known = set(cls.__dataclass_fields__)
        ignored = sorted(set(config) - known)
        if ignored:
            log.debug("upsampler config: ignoring keys %s", ignored)
        try:
            return cls(
                in_channels=int(config.get("in_channels", 128)),
                mid_channels=int(config.get("mid_channels", 512)),
                num_blocks_per_stage=int(config.get("num_blocks_per_stage", 4)),
                dims=int(config.get("dims", 3)),
                spatial_upsample=_bool(config, "spatial_upsample", True),
                temporal_upsample=_bool(config, "temporal_upsample", False),
                spatial_scale=float(config.get("spatial_scale", 2.0)),
                rational_resampler=_bool(config, "rational_resampler", False),
            )
        except (TypeError, ValueError) as e:
            raise ConfigError(
                f"{SECTION}: config value of the wrong type: {e}", code=codes.CONFIG_BAD_TYPE
            ) from e

    def to_metadata(self) -> dict[str, Any]:
        """The flat config object as it is embedded in an upsampler file."""
        return asdict(self)


def tiny_upsampler_config(
    kind: TinyKind = "x2", mid_channels: int = 32, num_blocks: int = 1
) -> UpsamplerConfig:
    """Tiny config of each released flavour (128 latent channels, narrow trunk) for tests.

    ``x2`` = plain spatial x2 (keys ``upsampler.0.*``), ``x2_rational`` = the same factor with the rational
    layout (``upsampler.conv.*`` + ``upsampler.blur_down.kernel``), ``x1.5`` = rational 3/2, ``temporal_x2``,
    ``spatiotemporal_x2`` (both axes, one Conv3d + 3-D pixel shuffle).
    """
    check_config_value(SECTION, "kind", kind, TINY_KINDS)
    base = UpsamplerConfig(mid_channels=mid_channels, num_blocks_per_stage=num_blocks)
    replace = dataclasses.replace
    return {
        "x2": base,
        "x2_rational": replace(base, rational_resampler=True),
        "x1.5": replace(base, rational_resampler=True, spatial_scale=1.5),
        "temporal_x2": replace(base, spatial_upsample=False, temporal_upsample=True),
        "spatiotemporal_x2": replace(base, temporal_upsample=True),
    }[kind]


def _bool(config: Mapping[str, Any], key: str, default: bool) -> bool:
    value = config.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(
            f"{SECTION}: {key}={value!r} must be a JSON boolean (true/false)", code=codes.CONFIG_BAD_TYPE
        )
    return value


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(f"{SECTION}: {message}", code=codes.CONFIG_UNSUPPORTED_VALUE)
