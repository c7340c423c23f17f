"""Transformer config: the released files' `transformer` section, defaults, round trips, refusals."""

from __future__ import annotations

import pytest

from ltx2stream.errors import ConfigError
from ltx2stream.models.transformer import TransformerConfig, tiny_transformer_config

# The LTX-2.3 embedded `transformer` section (third-party dump of ltx-2.3-22b; key order as dumped).
SECTION_23 = {
    "_class_name": "AVTransformer3DModel",
    "activation_fn": "gelu-approximate",
    "attention_bias": True,
    "attention_head_dim": 128,
    "attention_type": "default",
    "caption_channels": 3840,
    "cross_attention_dim": 4096,
    "double_self_attention": False,
    "dropout": 0.0,
    "in_channels": 128,
    "norm_elementwise_affine": False,
    "norm_eps": 1e-06,
    "norm_num_groups": 32,
    "num_attention_heads": 32,
    "num_embeds_ada_norm": 1000,
    "num_layers": 48,
    "num_vector_embeds": None,
    "only_cross_attention": False,
    "cross_attention_norm": True,
    "out_channels": 128,
    "upcast_attention": False,
    "use_linear_projection": False,
    "qk_norm": "rms_norm",
    "standardization_norm": "rms_norm",
    "positional_embedding_type": "rope",
    "positional_embedding_theta": 10000.0,
    "positional_embedding_max_pos": [20, 2048, 2048],
    "timestep_scale_multiplier": 1000,
    "av_ca_timestep_scale_multiplier": 1000.0,
    "causal_temporal_positioning": True,
    "audio_num_attention_heads": 32,
    "audio_attention_head_dim": 64,
    "use_audio_video_cross_attention": True,
    "share_ff": False,
    "audio_out_channels": 128,
    "audio_cross_attention_dim": 2048,
    "audio_positional_embedding_max_pos": [20],
    "av_cross_ada_norm": True,
    "use_embeddings_connector": True,
    "connector_attention_head_dim": 128,
    "connector_num_attention_heads": 32,
    "connector_num_layers": 8,
    "connector_positional_embedding_max_pos": [4096],
    "connector_num_learnable_registers": 128,
    "connector_norm_output": True,
    "use_middle_indices_grid": True,
    "apply_gated_attention": True,
    "connector_apply_gated_attention": True,
    "caption_projection_first_linear": False,
    "caption_projection_second_linear": False,
    "caption_proj_input_norm": False,
    "connector_learnable_registers_std": 1,
    "caption_proj_before_connector": True,
    "audio_connector_attention_head_dim": 64,
    "audio_connector_num_attention_heads": 32,
    "cross_attention_adaln": True,
    "text_encoder_norm_type": "per_token_rms",
    "rope_type": "split",
    "frequencies_precision": "float64",
}
V2_ONLY = (
    "apply_gated_attention",
    "connector_apply_gated_attention",
    "caption_projection_first_linear",
    "caption_projection_second_linear",
    "caption_proj_input_norm",
    "caption_proj_before_connector",
    "audio_connector_attention_head_dim",
    "audio_connector_num_attention_heads",
    "cross_attention_adaln",
    "text_encoder_norm_type",
)
SECTION_2 = {k: v for k, v in SECTION_23.items() if k not in V2_ONLY} | {
    "connector_num_attention_heads": 30,
    "connector_num_layers": 2,
}


def test_released_ltx23_section() -> None:
    cfg = TransformerConfig.from_metadata(SECTION_23)
    assert (cfg.num_layers, cfg.video_inner_dim, cfg.audio_inner_dim) == (48, 4096, 2048)
    assert cfg.cross_attention_adaln and cfg.apply_gated_attention and not cfg.has_caption_projection
    assert cfg.adaln_coefficient == 9 and cfg.double_precision_rope and cfg.rope_type == "split"
    assert cfg.av_ca_timestep_scale_multiplier == 1000.0 and cfg.cross_pe_max_pos == 20
    assert cfg.extra["connector_num_learnable_registers"] == 128  # text-path keys are carried, not dropped
    assert cfg.extra["_class_name"] == "AVTransformer3DModel"


def test_released_ltx2_section() -> None:
    cfg = TransformerConfig.from_metadata(SECTION_2)
    assert not cfg.cross_attention_adaln and not cfg.apply_gated_attention
    assert cfg.has_caption_projection and cfg.caption_channels == 3840 and cfg.adaln_coefficient == 6


def test_null_caption_channels_of_23_exports_are_tolerated() -> None:
    assert TransformerConfig.from_metadata(SECTION_23 | {"caption_channels": None}).caption_channels == 3840


def test_missing_keys_take_official_defaults() -> None:
    cfg = TransformerConfig.from_metadata({})
    assert cfg == TransformerConfig()
    # the two defaults that differ from the released values, as in the official configurator
    assert cfg.av_ca_timestep_scale_multiplier == 1.0 and not cfg.double_precision_rope
    assert (
        TransformerConfig.from_metadata({"frequencies_precision": False}).frequencies_precision == "float32"
    )


@pytest.mark.parametrize("section", [SECTION_2, SECTION_23], ids=["ltx2", "ltx2.3"])
def test_metadata_round_trip(section: dict) -> None:
    cfg = TransformerConfig.from_metadata(section)
    meta = cfg.to_metadata()
    assert TransformerConfig.from_metadata(meta) == cfg
    for key, value in section.items():  # every released key survives (lists stay lists)
        assert meta[key] == value, key


@pytest.mark.parametrize("flavour", ["ltx2", "ltx2.3"])
def test_tiny_configs(flavour: str) -> None:
    cfg = tiny_transformer_config(flavour)
    assert (
        cfg.num_layers,
        cfg.num_attention_heads,
        cfg.attention_head_dim,
        cfg.audio_attention_head_dim,
    ) == (2, 2, 16, 8)
    assert (cfg.in_channels, cfg.out_channels, cfg.audio_in_channels, cfg.caption_channels) == (
        128,
        128,
        128,
        32,
    )
    assert (
        cfg.cross_attention_dim == cfg.video_inner_dim
        and cfg.audio_cross_attention_dim == cfg.audio_inner_dim
    )
    meta = cfg.to_metadata()
    assert TransformerConfig.from_metadata(meta) == cfg
    is_23 = flavour == "ltx2.3"
    assert cfg.cross_attention_adaln is is_23 and cfg.caption_proj_before_connector is is_23
    assert meta["connector_apply_gated_attention"] is is_23
    assert meta["connector_num_learnable_registers"] == 32
    video_connector = meta["connector_num_attention_heads"] * meta["connector_attention_head_dim"]
    audio_connector = meta["audio_connector_num_attention_heads"] * meta["audio_connector_attention_head_dim"]
    if is_23:
        assert (video_connector, audio_connector) == (cfg.video_inner_dim, cfg.audio_inner_dim)
        assert meta["connector_num_layers"] == meta["audio_connector_num_layers"] == 2
    else:
        assert video_connector == audio_connector == cfg.caption_channels
        assert meta["connector_num_layers"] == 1


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("rope_type", "rotary3d"),
        ("frequencies_precision", "bfloat16"),
        ("qk_norm", "layer_norm"),
        ("activation_fn", "gelu"),
        ("use_middle_indices_grid", False),
        ("positional_embedding_type", "sincos"),
        ("av_cross_ada_norm", False),
        ("ff_bias", "false"),  # LTX-2.5 switch: JSON booleans only
        ("use_keyframes_abs_pos_embedding", 1),
        ("num_layers", "48"),
    ],
)
def test_unsupported_values_name_key_value_and_supported(key: str, value: object) -> None:
    with pytest.raises(ConfigError) as err:
        TransformerConfig.from_metadata(SECTION_23 | {key: value})
    assert key in err.value.message and repr(value) in err.value.message
    assert err.value.code == "config.unsupported_value"


def test_inconsistent_sizes_are_refused() -> None:
    with pytest.raises(ConfigError, match="audio_num_attention_heads"):
        TransformerConfig.from_metadata(SECTION_23 | {"audio_num_attention_heads": 16})
    with pytest.raises(ConfigError, match="cross_attention_dim"):
        TransformerConfig.from_metadata(SECTION_23 | {"cross_attention_dim": 3840})
    with pytest.raises(ConfigError, match="flavour"):
        tiny_transformer_config("ltx3")
