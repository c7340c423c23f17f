"""Frozen config of the causal video VAE, read from the checkpoint's embedded ``vae`` section.

Official key names (``core:model/video_vae/model_configurator.py``): ``dims``, ``in_channels``,
``out_channels``, ``latent_channels``, ``patch_size``, ``norm_layer``, ``latent_log_var``, ``encoder_blocks``,
``decoder_blocks``, ``causal_decoder``, ``timestep_conditioning``, ``decoder_base_channels`` and the padding
modes. Blocks are ``[name, int]`` (``int`` = ``num_layers``) or ``[name, {...}]``; ``decoder_blocks`` is
written in encoder order and built reversed.

Padding modes: since LTX-2.3 one key ``spatial_padding_mode`` serves both halves; the LTX-2 release read
``encoder_spatial_padding_mode`` / ``decoder_spatial_padding_mode``. We take ``spatial_padding_mode`` when
present, else the half-specific key, else the official defaults (encoder ``zeros``, decoder ``reflect``).

Missing keys take the official defaults — note ``timestep_conditioning`` defaults to **True** when absent, as
in the official configurator. Unsupported values raise ConfigError naming key, value and what is supported.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ltx2stream import codes
from ltx2stream.errors import ConfigError, check_config_value

SECTION = "vae"
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
# "pixel_norm" / "group_norm" are the official kinds; "none" (identity) is this project's extension for the small
# pocket VAE, whose 8-16-channel PixelNorm heads cannot carry brightness (docs/pocket.md, "Video VAE recipe").
NORM_LAYERS = ("pixel_norm", "group_norm", "none")
LOG_VAR_KINDS = ("uniform", "per_channel", "constant")
# block name -> temporal/spatial stride; "res" blocks have none
STRIDES: dict[str, tuple[int, int, int]] = {
    "compress_time": (2, 1, 1),
    "compress_space": (1, 2, 2),
    "compress_all": (2, 2, 2),
    "compress_all_x_y": (2, 2, 2),
    "compress_time_res": (2, 1, 1),
    "compress_space_res": (1, 2, 2),
    "compress_all_res": (2, 2, 2),
}
ENCODER_BLOCKS = ("res_x", "res_x_y", *STRIDES)
DECODER_BLOCKS = ("res_x", "res_x_y", "compress_time", "compress_space", "compress_all")
_PARAM_KEYS = {"num_layers", "multiplier", "residual", "inject_noise"}


def _fail(message: str) -> None:
    raise ConfigError(f"{SECTION}: {message}", code=codes.CONFIG_UNSUPPORTED_VALUE)


@dataclass(frozen=True)
class BlockSpec:
    """One ``[name, params]`` entry of ``encoder_blocks`` / ``decoder_blocks`` (params kept as written)."""

    name: str
    params: tuple[tuple[str, Any], ...] = ()
    int_form: bool = False  # written as ``[name, num_layers]``

    @classmethod
    def parse(cls, entry: Sequence[Any], where: str) -> BlockSpec:
        if not isinstance(entry, (list, tuple)) or len(entry) != 2 or not isinstance(entry[0], str):
            _fail(f"{where}: each block must be [name, int | dict], got {entry!r}")
        name, raw = entry
        if isinstance(raw, bool) or not isinstance(raw, (int, Mapping)):
            _fail(f"{where}: block {name!r} params must be an int or a dict, got {raw!r}")
        if isinstance(raw, int):
            return cls(name, (("num_layers", raw),), int_form=True)
        unknown = sorted(set(raw) - _PARAM_KEYS)
        if unknown:
            _fail(
                f"{where}: block {name!r} has unsupported params {unknown}; supported: {sorted(_PARAM_KEYS)}"
            )
        return cls(name, tuple(sorted(raw.items())))

    def get(self, key: str, default: Any = None) -> Any:
        return dict(self.params).get(key, default)

    @property
    def num_layers(self) -> int:
        return int(self.get("num_layers", 1))

    @property
    def inject_noise(self) -> bool:
        return bool(self.get("inject_noise", False))

    def to_metadata(self) -> list[Any]:
        return [self.name, self.num_layers] if self.int_form else [self.name, dict(self.params)]


def _blocks(raw: Any, where: str) -> tuple[BlockSpec, ...]:
    if not isinstance(raw, (list, tuple)):
        _fail(f"{where} must be a list of [name, params], got {raw!r}")
    return tuple(BlockSpec.parse(e, where) for e in raw)


@dataclass(frozen=True)
class VideoVAEConfig:
    """Architecture of the LTX-2 / LTX-2.3 video VAE (defaults = official defaults)."""

    encoder_blocks: tuple[BlockSpec, ...] = ()
    decoder_blocks: tuple[BlockSpec, ...] = ()  # encoder order, as in the metadata
    dims: int = 3
    in_channels: int = 3
    out_channels: int = 3
    latent_channels: int = 128
    patch_size: int = 4
    norm_layer: str = "pixel_norm"
    latent_log_var: str = "uniform"
    encoder_padding_mode: str = "zeros"
    decoder_padding_mode: str = "reflect"
    causal_decoder: bool = False
    timestep_conditioning: bool = True
    decoder_base_channels: int = 128
    extra: tuple[tuple[str, Any], ...] = field(default=(), compare=False)  # other keys, kept for to_metadata

    def __post_init__(self) -> None:
        check_config_value(SECTION, "dims", self.dims, (3,))
        check_config_value(SECTION, "norm_layer", self.norm_layer, NORM_LAYERS)
        check_config_value(SECTION, "latent_log_var", self.latent_log_var, LOG_VAR_KINDS)
        check_config_value(SECTION, "encoder spatial_padding_mode", self.encoder_padding_mode, PADDING_MODES)
        check_config_value(SECTION, "decoder spatial_padding_mode", self.decoder_padding_mode, PADDING_MODES)
        for b in self.encoder_blocks:
            check_config_value(SECTION, "encoder_blocks name", b.name, ENCODER_BLOCKS)
        for b in self.decoder_blocks:
            check_config_value(SECTION, "decoder_blocks name", b.name, DECODER_BLOCKS)
        for b in (*self.encoder_blocks, *self.decoder_blocks):
            check_config_value(SECTION, f"{b.name} inject_noise", b.inject_noise, (False,))
        if self.patch_size < 1 or self.latent_channels < 1 or self.decoder_base_channels < 1:
            _fail("patch_size, latent_channels and decoder_base_channels must be positive")
        self.encoder_channels()
        self.decoder_channels()
        self._check_compression("encoder_blocks", self.encoder_blocks)
        self._check_compression("decoder_blocks", self.decoder_blocks)

    # ------------------------------------------------------------------ derived structure
    def encoder_channels(self) -> list[tuple[BlockSpec, int, int]]:
        """(block, in_channels, out_channels) for every encoder block; conv_in gives ``latent_channels``."""
        out, ch = [], self.latent_channels
        for b in self.encoder_blocks:
            mult = int(b.get("multiplier", 2))
            new = ch * mult if b.name in ("res_x_y", "compress_all_x_y") or b.name.endswith("_res") else ch
            if b.name.endswith("_res"):
                prod = math.prod(STRIDES[b.name])
                if mult < 1 or prod % mult or new % prod:
                    _fail(
                        f"encoder block {b.name} multiplier={mult} on {ch} channels: needs 1 <= multiplier, "
                        f"{prod} % multiplier == 0 and out channels divisible by {prod}"
                    )
            out.append((b, ch, new))
            ch = new
        return out

    def decoder_channels(self) -> list[tuple[BlockSpec, int, int]]:
        """(block, in, out) in build order (reversed list); conv_in gives ``8 * decoder_base_channels``."""
        out, ch = [], self.decoder_base_channels * 8
        for b in reversed(self.decoder_blocks):
            default = 2 if b.name == "res_x_y" else 1
            mult = int(b.get("multiplier", default))
            new = ch // mult if b.name != "res_x" else ch
            if b.name.startswith("compress"):
                prod = math.prod(STRIDES[b.name])
                if mult < 1 or ch % mult:
                    _fail(f"decoder block {b.name} multiplier={mult} does not divide {ch} channels")
                if b.get("residual", False) and (ch % prod or prod % mult):
                    _fail(
                        f"decoder block {b.name} residual on {ch} channels with multiplier={mult}: needs channels "
                        f"divisible by {prod} and {prod} divisible by the multiplier"
                    )
            elif b.name == "res_x_y" and (mult < 1 or ch % mult):
                _fail(f"decoder block res_x_y multiplier={mult} does not divide {ch} channels")
            out.append((b, ch, new))
            ch = new
        return out

    def _check_compression(self, where: str, blocks: tuple[BlockSpec, ...]) -> None:
        t = math.prod(STRIDES[b.name][0] for b in blocks if b.name in STRIDES)
        s = math.prod(STRIDES[b.name][1] for b in blocks if b.name in STRIDES) * self.patch_size
        if blocks and (t, s) != (8, 32):
            _fail(f"{where} compress x{t} in time and x{s} in space; only x8 / x32 (frames 1+8k, sizes /32)")

    # ------------------------------------------------------------------ metadata
    @classmethod
    def from_metadata(cls, section: Mapping[str, Any]) -> VideoVAEConfig:
        """Build from the checkpoint's ``vae`` section (official key names and defaults)."""
        shared = section.get("spatial_padding_mode")
        known = {
            "dims", "in_channels", "out_channels", "latent_channels", "patch_size", "norm_layer", "latent_log_var",
            "encoder_blocks", "decoder_blocks", "causal_decoder", "timestep_conditioning", "decoder_base_channels",
            "spatial_padding_mode", "encoder_spatial_padding_mode", "decoder_spatial_padding_mode",
        }  # fmt: skip
        return cls(
            encoder_blocks=_blocks(section.get("encoder_blocks", []), "encoder_blocks"),
            decoder_blocks=_blocks(section.get("decoder_blocks", []), "decoder_blocks"),
            dims=section.get("dims", 3),
            in_channels=int(section.get("in_channels", 3)),
            out_channels=int(section.get("out_channels", 3)),
            latent_channels=int(section.get("latent_channels", 128)),
            patch_size=int(section.get("patch_size", 4)),
            norm_layer=str(section.get("norm_layer", "pixel_norm")),
            latent_log_var=str(section.get("latent_log_var", "uniform")),
            encoder_padding_mode=str(shared or section.get("encoder_spatial_padding_mode", "zeros")),
            decoder_padding_mode=str(shared or section.get("decoder_spatial_padding_mode", "reflect")),
            causal_decoder=bool(section.get("causal_decoder", False)),
            timestep_conditioning=bool(section.get("timestep_conditioning", True)),
            decoder_base_channels=int(section.get("decoder_base_channels", 128)),
            extra=tuple(sorted((k, v) for k, v in section.items() if k not in known)),
        )

    def to_metadata(self) -> dict[str, Any]:
        """The ``vae`` section; one shared padding key when both halves agree, else the two LTX-2 keys."""
        meta: dict[str, Any] = dict(self.extra)
        meta.update(
            dims=self.dims,
            in_channels=self.in_channels,
            out_channels=self.out_channels,
            latent_channels=self.latent_channels,
            patch_size=self.patch_size,
            norm_layer=self.norm_layer,
            latent_log_var=self.latent_log_var,
            encoder_blocks=[b.to_metadata() for b in self.encoder_blocks],
            decoder_blocks=[b.to_metadata() for b in self.decoder_blocks],
            causal_decoder=self.causal_decoder,
            timestep_conditioning=self.timestep_conditioning,
            decoder_base_channels=self.decoder_base_channels,
        )
        if self.encoder_padding_mode == self.decoder_padding_mode:
            meta["spatial_padding_mode"] = self.encoder_padding_mode
        else:
            meta["encoder_spatial_padding_mode"] = self.encoder_padding_mode
            meta["decoder_spatial_padding_mode"] = self.decoder_padding_mode
        return meta

    @property
    def decoder_streamable(self) -> bool:
        """True when every decoder op is per-frame or a k=3 temporal conv (no GroupNorm over all frames).

        GroupNorm (``norm_layer=group_norm``, or the ``norm3`` of a channel-changing ``res_x_y``) normalises
        over all frames at once, so it cannot be decoded exactly in temporal chunks.
        """
        return self.norm_layer in ("pixel_norm", "none") and all(
            b.name != "res_x_y" for b in self.decoder_blocks
        )
