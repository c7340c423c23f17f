"""Frozen config of the text path (feature extractor + video/audio embeddings connectors).

Read from the checkpoint's ``transformer`` metadata section with the official key names (the official
``Embeddings1DConnectorConfigurator`` / ``AudioEmbeddings1DConnectorConfigurator`` and
``_create_feature_extractor`` read the same section):

* ``connector_num_attention_heads`` (30), ``connector_attention_head_dim`` (128), ``connector_num_layers`` (2),
  ``audio_connector_*`` (falling back to the video values), ``connector_apply_gated_attention`` (False),
  ``connector_positional_embedding_max_pos`` ([1]), ``connector_ff_bias`` (True), ``rope_type`` ("split"),
  ``frequencies_precision`` ("float64" -> float64 frequency grid; anything else -> float32).
* The learnable-register count has no official key (hard-coded 128); ``connector_num_learnable_registers``
  is read when present.
* Feature extractor V2 (LTX-2.3) is selected when all four keys ``caption_proj_before_connector: true``,
  ``caption_projection_first_linear: false``, ``caption_proj_input_norm: false``,
  ``caption_projection_second_linear: false`` are present; V1 (LTX-2) when none is.

Defaults are the official code defaults for a missing key. Gemma's hidden size (``caption_channels``) and the
number of hidden states it returns come from the Gemma model at load time (:meth:`TextPathConfig.with_gemma`);
the token length (official: 1024) is not in the metadata.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ltx2stream import codes
from ltx2stream.errors import ConfigError, check_config_value

SECTION = "transformer"
FLAVOURS = ("ltx2", "ltx2.3", "ltx2.5")
V1, V2 = "v1", "v2"
DEFAULT_MAX_LENGTH = 1024
DEFAULT_REGISTERS = 128
V2_KEYS: Mapping[str, bool] = {
    "caption_proj_before_connector": True,
    "caption_projection_first_linear": False,
    "caption_proj_input_norm": False,
    "caption_projection_second_linear": False,
}


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(f"{SECTION} (text path): {message}", code=codes.CONFIG_UNSUPPORTED_VALUE)


@dataclass(frozen=True)
class ConnectorConfig:
    """One ``Embeddings1DConnector``: a pre-norm bidirectional 1-D transformer with learnable registers."""

    num_attention_heads: int = 30
    attention_head_dim: int = 128
    num_layers: int = 2
    num_registers: int = DEFAULT_REGISTERS
    gated_attention: bool = False
    ff_bias: bool = True
    max_pos: tuple[int, ...] = (1,)
    theta: float = 10000.0
    rope_type: str = "split"
    double_precision_rope: bool = False
    norm_eps: float = 1e-6

    def __post_init__(self) -> None:
        check_config_value(SECTION, "rope_type", self.rope_type, ("split",))
        _require(
            self.num_attention_heads > 0 and self.attention_head_dim > 0 and self.attention_head_dim % 2 == 0,
            f"connector heads x head_dim = {self.num_attention_heads} x {self.attention_head_dim}:"
            " both must be positive and head_dim even (split RoPE rotates halves)",
        )
        _require(self.num_layers >= 0, f"connector_num_layers={self.num_layers} must be >= 0")
        _require(
            self.num_registers >= 1,
            f"connector_num_learnable_registers={self.num_registers}: only register substitution is supported"
            " (>= 1); the DiT is run without a text mask",
        )
        _require(
            len(self.max_pos) == 1 and self.max_pos[0] > 0,
            f"connector_positional_embedding_max_pos={list(self.max_pos)} must hold one positive value (1-D)",
        )

    @property
    def inner_dim(self) -> int:
        return self.num_attention_heads * self.attention_head_dim


@dataclass(frozen=True)
class TextPathConfig:
    """Feature extractor variant, Gemma dims, token length and the two connectors.

    ``video_dim`` / ``audio_dim`` are the feature-extractor outputs = connector widths: ``caption_channels``
    for V1 (LTX-2; the DiT's caption projection follows), the DiT's video / audio inner dims for V2 (LTX-2.3).
    """

    feature_extractor: str = V1
    caption_channels: int = 3840
    gemma_hidden_states: int = 49
    max_length: int = DEFAULT_MAX_LENGTH
    video_dim: int = 3840
    audio_dim: int = 3840
    video_connector: ConnectorConfig = field(default_factory=ConnectorConfig)
    audio_connector: ConnectorConfig = field(default_factory=ConnectorConfig)

    def __post_init__(self) -> None:
        check_config_value(SECTION, "feature_extractor", self.feature_extractor, (V1, V2))
        _require(
            self.gemma_hidden_states >= 1, f"gemma_hidden_states={self.gemma_hidden_states} must be >= 1"
        )
        if self.feature_extractor == V1:
            _require(
                self.video_dim == self.audio_dim == self.caption_channels,
                f"feature extractor V1 feeds caption_channels={self.caption_channels} features to both"
                f" connectors, got video_dim={self.video_dim}, audio_dim={self.audio_dim}",
            )
        for name, conn, dim in (
            ("video", self.video_connector, self.video_dim),
            ("audio", self.audio_connector, self.audio_dim),
        ):
            _require(
                conn.inner_dim == dim,
                f"{name} connector width {conn.num_attention_heads} x {conn.attention_head_dim} ="
                f" {conn.inner_dim} does not match its {self.feature_extractor} features ({dim})",
            )
            _require(
                self.max_length % conn.num_registers == 0,
                f"token length {self.max_length} must be divisible by the {name} connector's"
                f" {conn.num_registers} learnable registers",
            )

    @property
    def flat_dim(self) -> int:
        """Width of the flattened Gemma features: caption_channels * gemma_hidden_states (3840 * 49)."""
        return self.caption_channels * self.gemma_hidden_states

    def with_gemma(self, hidden_size: int, num_hidden_states: int) -> TextPathConfig:
        """This config with the dims of the Gemma actually loaded (hidden size must equal caption_channels)."""
        if hidden_size != self.caption_channels:
            raise ConfigError(
                f"Gemma hidden size {hidden_size} does not match the checkpoint's caption_channels="
                f"{self.caption_channels}; use the Gemma 3 model this checkpoint was trained with",
                code=codes.CONFIG_GEMMA_MISMATCH,
            )
        return replace(self, gemma_hidden_states=num_hidden_states)

    @classmethod
    def from_metadata(
        cls, section: Mapping[str, Any], *, max_length: int = DEFAULT_MAX_LENGTH
    ) -> TextPathConfig:
        flavour = _feature_extractor_of(section)
        caption_channels = int(section.get("caption_channels", 3840))
        video, audio = _connector(section, ""), _connector(section, "audio_")
        if flavour == V1:
            video_dim = audio_dim = caption_channels
        else:
            video_dim = int(section.get("num_attention_heads", 32)) * int(
                section.get("attention_head_dim", 128)
            )
            audio_dim = int(section.get("audio_num_attention_heads", 32)) * int(
                section.get("audio_attention_head_dim", 64)
            )
        return cls(
            feature_extractor=flavour,
            caption_channels=caption_channels,
            max_length=max_length,
            video_dim=video_dim,
            audio_dim=audio_dim,
            video_connector=video,
            audio_connector=audio,
        )

    def to_metadata(self) -> dict[str, Any]:
        """The ``transformer``-section keys this config is read from.

        For V2 the DiT-owned ``num_attention_heads`` / ``attention_head_dim`` / ``audio_*`` keys are written
        with the connector's heads x head_dim (equal in the released LTX-2.3); a full checkpoint's transformer
        config must agree with them.
        """
        v, a = self.video_connector, self.audio_connector
        out: dict[str, Any] = {
            "caption_channels": self.caption_channels,
            "rope_type": v.rope_type,
            "frequencies_precision": "float64" if v.double_precision_rope else "float32",
            "connector_num_attention_heads": v.num_attention_heads,
            "connector_attention_head_dim": v.attention_head_dim,
            "connector_num_layers": v.num_layers,
            "audio_connector_num_attention_heads": a.num_attention_heads,
            "audio_connector_attention_head_dim": a.attention_head_dim,
            "audio_connector_num_layers": a.num_layers,
            "connector_apply_gated_attention": v.gated_attention,
            "connector_positional_embedding_max_pos": list(v.max_pos),
            "connector_ff_bias": v.ff_bias,
            "connector_num_learnable_registers": v.num_registers,
        }
        if self.feature_extractor == V2:
            out.update(V2_KEYS)
            out.update(
                num_attention_heads=v.num_attention_heads,
                attention_head_dim=v.attention_head_dim,
                audio_num_attention_heads=a.num_attention_heads,
                audio_attention_head_dim=a.attention_head_dim,
            )
        return out


def _feature_extractor_of(section: Mapping[str, Any]) -> str:
    """V1 when no V2 key is present, V2 when all are with the expected values; anything else is an error."""
    present = [k for k in V2_KEYS if k in section]
    if not present or section.get("caption_proj_before_connector") is False:
        return V1  # LTX-2 configs may spell the V1 default out (caption_proj_before_connector: false)
    missing = [k for k in V2_KEYS if k not in section]
    _require(not missing, f"partial feature-extractor V2 config, missing {missing} (present: {present})")
    wrong = [f"{k}={section[k]!r} (supported: {V2_KEYS[k]!r})" for k in V2_KEYS if section[k] != V2_KEYS[k]]
    _require(not wrong, "unsupported caption projection layout: " + ", ".join(wrong))
    return V2


def _connector(section: Mapping[str, Any], prefix: str) -> ConnectorConfig:
    """Connector config; ``prefix="audio_"`` reads ``audio_connector_*`` falling back to ``connector_*``."""

    def get(key: str, default: Any) -> Any:
        return section.get(f"{prefix}connector_{key}", section.get(f"connector_{key}", default))

    return ConnectorConfig(
        num_attention_heads=int(get("num_attention_heads", 30)),
        attention_head_dim=int(get("attention_head_dim", 128)),
        num_layers=int(get("num_layers", 2)),
        num_registers=int(section.get("connector_num_learnable_registers", DEFAULT_REGISTERS)),
        gated_attention=bool(section.get("connector_apply_gated_attention", False)),
        ff_bias=_flag(section, "connector_ff_bias", True),
        max_pos=tuple(int(p) for p in section.get("connector_positional_embedding_max_pos", [1])),
        rope_type=str(section.get("rope_type", "split")),
        double_precision_rope=section.get("frequencies_precision") == "float64",
    )


def _flag(section: Mapping[str, Any], key: str, default: bool) -> bool:
    """A JSON boolean; ``"false"`` / 0 / null are refused naming key and value (``bool("false")`` is True)."""
    value = section.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(
            f"transformer: unsupported value {key}={value!r}; supported: True, False (a JSON boolean)",
            code=codes.CONFIG_UNSUPPORTED_VALUE,
        )
    return value


def tiny_text_config(flavour: str = "ltx2") -> TextPathConfig:
    """Tiny text path matching a tiny DiT with caption_channels=32 (tiny Gemma: hidden 32, 2 layers -> 3 states).

    LTX-2: both connectors 2 x 16, 1 layer. LTX-2.3: video 2 x 16 (= DiT video inner 32), audio 2 x 8 (= 16),
    2 layers, gated. 32 registers, 64 tokens, max_pos [4096] and a float64 grid as in the released files.
    """
    check_config_value("tiny_text_config", "flavour", flavour, FLAVOURS)
    common: dict[str, Any] = {"num_registers": 32, "max_pos": (4096,), "double_precision_rope": True}
    dims = {"caption_channels": 32, "gemma_hidden_states": 3, "max_length": 64}
    if flavour == "ltx2":
        conn = ConnectorConfig(num_attention_heads=2, attention_head_dim=16, num_layers=1, **common)
        return TextPathConfig(
            V1, **dims, video_dim=32, audio_dim=32, video_connector=conn, audio_connector=conn
        )
    video = ConnectorConfig(
        num_attention_heads=2, attention_head_dim=16, num_layers=2, gated_attention=True, **common
    )
    audio = ConnectorConfig(
        num_attention_heads=2, attention_head_dim=8, num_layers=2, gated_attention=True, **common
    )
    return TextPathConfig(
        V2, **dims, video_dim=32, audio_dim=16, video_connector=video, audio_connector=audio
    )
