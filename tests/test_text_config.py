"""Text-path config: official key names and defaults, V1/V2 selection, rejected values."""

from __future__ import annotations

import pytest

from ltx2stream.errors import ConfigError
from ltx2stream.models.text import ConnectorConfig, TextPathConfig, tiny_text_config
from ltx2stream.models.text.config import V2_KEYS

LTX2_SECTION = {  # the text-path keys of the released LTX-2 `transformer` section
    "caption_channels": 3840,
    "rope_type": "split",
    "frequencies_precision": "float64",
    "connector_num_attention_heads": 30,
    "connector_attention_head_dim": 128,
    "connector_num_layers": 2,
    "connector_positional_embedding_max_pos": [4096],
    "num_attention_heads": 32,
    "attention_head_dim": 128,
}
LTX23_SECTION = {
    **LTX2_SECTION,
    **V2_KEYS,
    "connector_num_attention_heads": 32,
    "connector_num_layers": 8,
    "audio_connector_num_attention_heads": 32,
    "audio_connector_attention_head_dim": 64,
    "audio_connector_num_layers": 8,
    "connector_apply_gated_attention": True,
    "audio_num_attention_heads": 32,
    "audio_attention_head_dim": 64,
}


def test_ltx2_section_gives_v1_with_3840_wide_connectors() -> None:
    cfg = TextPathConfig.from_metadata(LTX2_SECTION)
    assert cfg.feature_extractor == "v1"
    assert (cfg.video_dim, cfg.audio_dim, cfg.flat_dim) == (3840, 3840, 3840 * 49)
    for conn in (cfg.video_connector, cfg.audio_connector):
        assert (conn.num_attention_heads, conn.attention_head_dim, conn.num_layers) == (30, 128, 2)
        assert (conn.num_registers, conn.max_pos, conn.double_precision_rope) == (128, (4096,), True)
        assert not conn.gated_attention


def test_ltx23_section_gives_v2_with_dit_widths_and_gated_connectors() -> None:
    cfg = TextPathConfig.from_metadata(LTX23_SECTION)
    assert cfg.feature_extractor == "v2"
    assert (cfg.video_dim, cfg.audio_dim) == (4096, 2048)
    assert (cfg.video_connector.inner_dim, cfg.video_connector.num_layers) == (4096, 8)
    assert (cfg.audio_connector.num_attention_heads, cfg.audio_connector.attention_head_dim) == (32, 64)
    assert cfg.video_connector.gated_attention and cfg.audio_connector.gated_attention


def test_official_defaults_for_missing_keys() -> None:
    cfg = TextPathConfig.from_metadata({})
    conn = cfg.video_connector
    assert cfg.feature_extractor == "v1" and cfg.caption_channels == 3840
    assert (conn.num_attention_heads, conn.attention_head_dim, conn.num_layers) == (30, 128, 2)
    assert conn.max_pos == (1,) and not conn.double_precision_rope and conn.ff_bias


def test_audio_connector_falls_back_to_video_keys() -> None:
    section = {**LTX2_SECTION, "connector_num_layers": 3}
    assert TextPathConfig.from_metadata(section).audio_connector.num_layers == 3


@pytest.mark.parametrize("flavour", ["ltx2", "ltx2.3"])
def test_metadata_round_trip(flavour: str) -> None:
    cfg = tiny_text_config(flavour)
    back = TextPathConfig.from_metadata(cfg.to_metadata(), max_length=cfg.max_length)
    assert back.with_gemma(cfg.caption_channels, cfg.gemma_hidden_states) == cfg


def test_tiny_presets_match_a_32_channel_dit() -> None:
    v1, v2 = tiny_text_config("ltx2"), tiny_text_config("ltx2.3")
    assert (v1.caption_channels, v1.gemma_hidden_states, v1.max_length) == (32, 3, 64)
    assert (v1.video_dim, v1.audio_dim, v1.video_connector.num_registers) == (32, 32, 32)
    assert (v2.video_dim, v2.audio_dim, v2.video_connector.num_layers) == (32, 16, 2)
    assert v2.audio_connector.gated_attention


@pytest.mark.parametrize(
    ("section", "needle"),
    [
        ({"caption_proj_before_connector": True}, "partial"),
        ({**V2_KEYS, "caption_proj_input_norm": True}, "caption_proj_input_norm=True"),
        ({"rope_type": "interleaved"}, "rope_type='interleaved'"),
        ({"connector_positional_embedding_max_pos": [20, 2048]}, "connector_positional_embedding_max_pos"),
        ({"connector_num_learnable_registers": 0}, "registers"),
        ({"connector_num_attention_heads": 16}, "does not match"),
    ],
)
def test_unsupported_values_name_the_key(section: dict, needle: str) -> None:
    with pytest.raises(ConfigError) as e:
        TextPathConfig.from_metadata({**LTX2_SECTION, **section})
    assert needle in str(e.value)


def test_token_length_must_be_divisible_by_registers() -> None:
    with pytest.raises(ConfigError, match="divisible"):
        TextPathConfig.from_metadata(LTX2_SECTION, max_length=1000)


def test_gemma_hidden_size_must_match_caption_channels() -> None:
    with pytest.raises(ConfigError, match="caption_channels=32") as e:
        tiny_text_config("ltx2").with_gemma(640, 19)
    assert e.value.code == "config.gemma_mismatch"


def test_connector_rejects_odd_head_dim() -> None:
    with pytest.raises(ConfigError, match="even"):
        ConnectorConfig(num_attention_heads=2, attention_head_dim=15)
