"""Frozen config of the LTX-2 / 2.3 / 2.5 AV transformer, read from the embedded ``transformer`` section.

Key names are the official ones (``ltx_core`` ``LTXModelConfigurator``). A missing key takes the official
configurator's default, so a checkpoint is read exactly as the official loader reads it (two defaults differ
from the released values: ``av_ca_timestep_scale_multiplier`` defaults to 1 and ``frequencies_precision`` to
a float32 grid; the released files state 1000 and "float64").

The official configurator pins ~17 keys to one value (``qk_norm == "rms_norm"``, ``dropout == 0``...); they
are checked when present and written back by ``to_metadata``. Every other key this class does not know (the
``connector_*`` keys of the text path, ``caption_projection_*``, ``_class_name``...) is kept in ``extra`` and
written back unchanged, so the text path can read them from the same section.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from ltx2stream import codes
from ltx2stream.errors import ConfigError, check_config_value

SECTION = "transformer"

# Keys the official configurator pins to a single value (``check_config_value`` in model_configurator.py).
FIXED_VALUES: dict[str, Any] = {
    "dropout": 0.0,
    "attention_bias": True,
    "num_vector_embeds": None,
    "activation_fn": "gelu-approximate",
    "num_embeds_ada_norm": 1000,
    "use_linear_projection": False,
    "only_cross_attention": False,
    "cross_attention_norm": True,
    "double_self_attention": False,
    "upcast_attention": False,
    "standardization_norm": "rms_norm",
    "norm_elementwise_affine": False,
    "qk_norm": "rms_norm",
    "positional_embedding_type": "rope",
    "use_audio_video_cross_attention": True,
    "share_ff": False,
    "av_cross_ada_norm": True,
}
# LTX-2.5 architecture switches (``core:model/transformer/model_configurator.py`` at v1.2.0) and their
# defaults = the LTX-2 / 2.3 behaviour. ``to_metadata`` writes them only when they differ from the default, so
# an LTX-2 / 2.3 section round-trips to exactly its released keys.
LTX25_DEFAULTS: dict[str, bool] = {
    "ff_bias": True,
    "audio_ff_bias": True,
    "use_prompt_adaln_single": True,
    "use_keyframes_abs_pos_embedding": False,
}

ROPE_TYPES = ("split", "interleaved")
PRECISIONS = ("float64", "float32")


@dataclass(frozen=True)
class TransformerConfig:
    """Architecture of the dual-stream (video 3-D RoPE / audio 1-D RoPE) DiT; defaults = official defaults."""

    num_layers: int = 48
    num_attention_heads: int = 32
    attention_head_dim: int = 128
    audio_num_attention_heads: int = 32
    audio_attention_head_dim: int = 64
    in_channels: int = 128
    out_channels: int = 128
    audio_in_channels: int = 128
    audio_out_channels: int = 128
    cross_attention_dim: int = 4096  # video text-context width (after caption projection)
    audio_cross_attention_dim: int = 2048  # audio text-context width; also the width of the A/V cross RoPE
    caption_channels: int = 3840  # connector output width fed to caption_projection (LTX-2 only)
    norm_eps: float = 1e-6
    positional_embedding_theta: float = 10000.0
    positional_embedding_max_pos: tuple[int, ...] = (20, 2048, 2048)  # time [s], height [px], width [px]
    audio_positional_embedding_max_pos: tuple[int, ...] = (20,)  # time [s]
    rope_type: str = "split"
    frequencies_precision: str = "float32"
    use_middle_indices_grid: bool = True
    timestep_scale_multiplier: float = 1000.0
    av_ca_timestep_scale_multiplier: float = 1.0
    cross_attention_adaln: bool = False  # LTX-2.3: AdaLN on text cross-attention (rows 6-8 + prompt tables)
    apply_gated_attention: bool = False  # LTX-2.3: per-head 2*sigmoid gate in every attention
    caption_proj_before_connector: bool = False  # LTX-2.3: no caption projection inside the DiT
    ff_bias: bool = True  # LTX-2.5: false = bias-free video FFN (ff.net.0.proj, ff.net.2)
    audio_ff_bias: bool = True  # same for audio_ff
    use_prompt_adaln_single: bool = True  # false: text K/V modulated by the static per-block table only
    use_keyframes_abs_pos_embedding: bool = False  # LTX-2.5: learned (1, D) vector on marked video tokens
    extra: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=True)

    def __post_init__(self) -> None:
        check_config_value(SECTION, "rope_type", self.rope_type, ROPE_TYPES)
        check_config_value(SECTION, "frequencies_precision", self.frequencies_precision, PRECISIONS)
        check_config_value(SECTION, "use_middle_indices_grid", self.use_middle_indices_grid, (True,))
        _require(
            self.num_attention_heads == self.audio_num_attention_heads,
            f"num_attention_heads={self.num_attention_heads} must equal audio_num_attention_heads="
            f"{self.audio_num_attention_heads} (the A/V cross RoPE uses each stream's own head count)",
        )
        _require(
            len(self.positional_embedding_max_pos) == 3,
            "positional_embedding_max_pos needs 3 entries (t, h, w)",
        )
        _require(
            len(self.audio_positional_embedding_max_pos) == 1,
            "audio_positional_embedding_max_pos needs 1 entry",
        )
        for name in ("num_layers", "num_attention_heads", "attention_head_dim", "audio_attention_head_dim"):
            _require(getattr(self, name) > 0, f"{name}={getattr(self, name)} must be positive")
        _require(
            self.attention_head_dim % 2 == 0 and self.audio_attention_head_dim % 2 == 0,
            "attention head dims must be even (RoPE rotates pairs)",
        )
        _require(
            self.cross_attention_dim == self.video_inner_dim,
            f"cross_attention_dim={self.cross_attention_dim} must equal the video inner dim "
            f"{self.video_inner_dim}"
            " (the text context is viewed at the inner width before attn2)",
        )
        _require(
            self.audio_cross_attention_dim == self.audio_inner_dim,
            f"audio_cross_attention_dim={self.audio_cross_attention_dim} must equal the audio inner dim "
            f"{self.audio_inner_dim} (it sizes the RoPE of the {self.audio_num_attention_heads}-head A/V "
            "attentions)",
        )

    # ------------------------------------------------------------------ derived sizes
    @property
    def video_inner_dim(self) -> int:
        return self.num_attention_heads * self.attention_head_dim

    @property
    def audio_inner_dim(self) -> int:
        return self.audio_num_attention_heads * self.audio_attention_head_dim

    @property
    def has_caption_projection(self) -> bool:
        """LTX-2 maps the connector output (caption_channels) to the inner dims in the DiT; 2.3 does not."""
        return not self.caption_proj_before_connector

    @property
    def adaln_coefficient(self) -> int:
        """Rows of the per-block modulation tables: 6, or 9 with cross-attention AdaLN (LTX-2.3)."""
        return 9 if self.cross_attention_adaln else 6

    @property
    def double_precision_rope(self) -> bool:
        return self.frequencies_precision == "float64"

    @property
    def video_context_dim(self) -> int:
        """Width of the video context the blocks see (after the caption projection where there is one)."""
        return self.cross_attention_dim

    @property
    def cross_pe_max_pos(self) -> int:
        """Normaliser of the A/V cross-attention RoPE: max of the two time max_pos values."""
        return max(self.positional_embedding_max_pos[0], self.audio_positional_embedding_max_pos[0])

    # ------------------------------------------------------------------ metadata
    @classmethod
    def from_metadata(cls, section: Mapping[str, Any]) -> TransformerConfig:
        """Read the ``transformer`` section; pinned keys are checked, unknown keys kept in ``extra``."""
        for key, expected in FIXED_VALUES.items():
            if key in section:
                check_config_value(SECTION, key, section[key], (expected,))
        known = {f.name for f in fields(cls)} - {"extra"}
        extra = {k: v for k, v in section.items() if k not in known and k not in FIXED_VALUES}
        get = section.get
        precision = get("frequencies_precision", "float32")
        return cls(
            num_layers=_int(section, "num_layers", 48),
            num_attention_heads=_int(section, "num_attention_heads", 32),
            attention_head_dim=_int(section, "attention_head_dim", 128),
            audio_num_attention_heads=_int(section, "audio_num_attention_heads", 32),
            audio_attention_head_dim=_int(section, "audio_attention_head_dim", 64),
            in_channels=_int(section, "in_channels", 128),
            out_channels=_int(section, "out_channels", 128),
            audio_in_channels=_int(section, "audio_in_channels", 128),
            audio_out_channels=_int(section, "audio_out_channels", 128),
            cross_attention_dim=_int(section, "cross_attention_dim", 4096),
            audio_cross_attention_dim=_int(section, "audio_cross_attention_dim", 2048),
            # some LTX-2.3 exports write null here: the value is unused without a caption projection
            caption_channels=_int(section, "caption_channels", 3840)
            if get("caption_channels") is not None
            else 3840,
            norm_eps=float(get("norm_eps", 1e-6)),
            positional_embedding_theta=float(get("positional_embedding_theta", 10000.0)),
            positional_embedding_max_pos=_ints(get("positional_embedding_max_pos", (20, 2048, 2048))),
            audio_positional_embedding_max_pos=_ints(get("audio_positional_embedding_max_pos", (20,))),
            rope_type=str(get("rope_type", "split")),
            # The official loader uses a float64 grid iff the value is "float64"; anything else is float32.
            frequencies_precision="float64" if precision == "float64" else _precision(precision),
            use_middle_indices_grid=bool(get("use_middle_indices_grid", True)),
            timestep_scale_multiplier=float(get("timestep_scale_multiplier", 1000)),
            av_ca_timestep_scale_multiplier=float(get("av_ca_timestep_scale_multiplier", 1)),
            cross_attention_adaln=bool(get("cross_attention_adaln", False)),
            apply_gated_attention=bool(get("apply_gated_attention", False)),
            caption_proj_before_connector=bool(get("caption_proj_before_connector", False)),
            **{key: _bool(section, key, default) for key, default in LTX25_DEFAULTS.items()},
            extra=extra,
        )

    def to_metadata(self) -> dict[str, Any]:
        """The ``transformer`` section in official key names (pinned keys + ``extra`` + fields)."""
        out: dict[str, Any] = {**FIXED_VALUES, **dict(self.extra)}
        for f in fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if f.name in LTX25_DEFAULTS and value == LTX25_DEFAULTS[f.name]:
                continue  # an LTX-2.5 switch at its default: absent from the released 2 / 2.3 sections
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @property
    def is_ltx25_architecture(self) -> bool:
        """True when any LTX-2.5 switch differs from the LTX-2 / 2.3 behaviour."""
        return any(getattr(self, k) != v for k, v in LTX25_DEFAULTS.items())


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(f"{SECTION}: {message}", code=codes.CONFIG_UNSUPPORTED_VALUE)


def _int(section: Mapping[str, Any], key: str, default: int) -> int:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise ConfigError(
            f"{SECTION}: {key}={value!r} must be an integer", code=codes.CONFIG_UNSUPPORTED_VALUE
        )
    return int(value)


def _bool(section: Mapping[str, Any], key: str, default: bool) -> bool:
    """A JSON boolean; anything else (``"false"``, 0, null) is refused naming key and value."""
    value = section.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(
            f"{SECTION}: unsupported value {key}={value!r}; supported: True, False (a JSON boolean)",
            code=codes.CONFIG_UNSUPPORTED_VALUE,
        )
    return value


def _ints(value: Any) -> tuple[int, ...]:
    if isinstance(value, (int, float)):
        value = [value]
    return tuple(int(v) for v in value)


def _precision(value: Any) -> str:
    """``False`` / ``None`` / "float32" all mean the float32 grid; other strings are rejected."""
    if value in (False, None, "float32"):
        return "float32"
    raise ConfigError(
        f"{SECTION}: unsupported value frequencies_precision={value!r}; supported: 'float64', 'float32'",
        code=codes.CONFIG_UNSUPPORTED_VALUE,
    )
