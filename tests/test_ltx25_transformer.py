"""LTX-2.5 transformer switches: bias-free FFNs, prompt AdaLN off, keyframe absolute-position embedding."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from ltx2stream.errors import ConfigError
from ltx2stream.models.transformer import LTXAVModel, TransformerConfig
from ltx2stream.models.transformer.tiny import randomize_, tiny_modalities, tiny_transformer_config


def _model(cfg: TransformerConfig, seed: int = 0) -> LTXAVModel:
    return randomize_(LTXAVModel(cfg), seed).eval()  # type: ignore[return-value]


def test_ff_bias_switches_drop_exactly_the_ffn_biases() -> None:
    """ff_bias / audio_ff_bias false remove the two FFN bias keys of their stream in every block, nothing else."""
    base = tiny_transformer_config("ltx2.3")
    keys = set(LTXAVModel(base).state_dict())
    for key, stream in (("ff_bias", "ff"), ("audio_ff_bias", "audio_ff")):
        cfg = TransformerConfig.from_metadata(base.to_metadata() | {key: False})
        dropped = keys - set(LTXAVModel(cfg).state_dict())
        assert dropped == {
            f"transformer_blocks.{i}.{stream}.net.{j}" for i in range(2) for j in ("0.proj.bias", "2.bias")
        }


def test_prompt_adaln_off_equals_a_zeroed_prompt_adaln() -> None:
    """Without prompt_adaln_single the text K/V use the static table only: the same as a zero prompt AdaLN."""
    on_cfg = tiny_transformer_config("ltx2.3")
    off_cfg = replace(on_cfg, use_prompt_adaln_single=False)
    on, off = _model(on_cfg), LTXAVModel(off_cfg).eval()
    state = on.state_dict()
    off.load_state_dict({k: v for k, v in state.items() if "prompt_adaln_single" not in k}, strict=True)
    assert not any("prompt_adaln_single" in k for k in off.state_dict())
    video, audio = tiny_modalities(on_cfg, sigma=0.7)
    with torch.no_grad():
        before = on(video, audio)
        for name in ("prompt_adaln_single", "audio_prompt_adaln_single"):
            getattr(on, name).linear.weight.zero_()
            getattr(on, name).linear.bias.zero_()
        zeroed, without = on(video, audio), off(video, audio)
    assert not torch.equal(before[0], zeroed[0])  # the prompt AdaLN did contribute
    for a, b in zip(zeroed, without, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_keyframes_embedding_is_added_to_marked_video_tokens_only() -> None:
    """E is added after patchify_proj to tokens with mask > 0; zero-init E or no mask = the plain model."""
    cfg = tiny_transformer_config("ltx2.5")
    model = _model(cfg)
    video, audio = tiny_modalities(cfg, latent_frames=2)
    t = video.latent.shape[1]
    first = torch.zeros(1, t)
    first[:, : t // 2] = 1.0  # the first latent frame's tokens
    with torch.no_grad():
        plain = model(video, audio)
        none = model(replace(video, keyframes_mask=torch.zeros(1, t)), audio)
        marked = model(replace(video, keyframes_mask=first), audio)
        x = model.patchify_proj(video.latent)
        added = model._add_keyframes_embedding(x, first) - x
        model.keyframes_abs_pos_embedding.zero_()
        zero_e = model(replace(video, keyframes_mask=first), audio)
    assert torch.equal(plain[0], none[0]) and torch.equal(plain[1], none[1])
    assert not torch.equal(plain[0], marked[0])
    assert torch.equal(zero_e[0], plain[0])
    assert added[0, t // 2 :].abs().max() == 0
    assert added[0, : t // 2].abs().max() > 0


def test_models_without_the_embedding_ignore_the_mask() -> None:
    """An LTX-2.3 model gives bit-identical outputs with and without a keyframes mask."""
    cfg = tiny_transformer_config("ltx2.3")
    model = _model(cfg)
    video, audio = tiny_modalities(cfg)
    mask = torch.ones(1, video.latent.shape[1])
    with torch.no_grad():
        a, b = model(video, audio), model(replace(video, keyframes_mask=mask), audio)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert "keyframes_abs_pos_embedding" not in model.state_dict()


def test_ltx25_config_round_trip_and_released_sections_unchanged() -> None:
    """2.5 switches are written back when set and never added to a 2 / 2.3 section."""
    cfg25 = tiny_transformer_config("ltx2.5")
    meta = cfg25.to_metadata()
    assert meta["ff_bias"] is False and meta["use_keyframes_abs_pos_embedding"] is True
    assert "audio_ff_bias" not in meta and "use_prompt_adaln_single" not in meta
    assert TransformerConfig.from_metadata(meta) == cfg25 and cfg25.is_ltx25_architecture
    meta23 = tiny_transformer_config("ltx2.3").to_metadata()
    assert not {
        "ff_bias",
        "audio_ff_bias",
        "use_prompt_adaln_single",
        "use_keyframes_abs_pos_embedding",
    } & set(meta23)
    key = LTXAVModel(cfg25).state_dict()["keyframes_abs_pos_embedding"]
    assert tuple(key.shape) == (1, cfg25.video_inner_dim)


@pytest.mark.parametrize(
    ("key", "value"),
    [("ff_bias", "false"), ("audio_ff_bias", None), ("use_prompt_adaln_single", 0)],
)
def test_bad_switch_values_name_key_and_value(key: str, value: object) -> None:
    with pytest.raises(ConfigError) as err:
        TransformerConfig.from_metadata(tiny_transformer_config("ltx2.3").to_metadata() | {key: value})
    assert key in err.value.message and repr(value) in err.value.message


def test_keyframes_mask_shape_is_checked() -> None:
    cfg = tiny_transformer_config("ltx2.5")
    video, audio = tiny_modalities(cfg)
    with pytest.raises(Exception, match="keyframes_mask"):
        _model(cfg)(replace(video, keyframes_mask=torch.ones(1, 3)), audio)


def test_connector_ff_bias_is_read_strictly() -> None:
    """connector_ff_bias false builds bias-free connector FFNs; a non-boolean is refused naming key and value."""
    from ltx2stream.models.text.config import TextPathConfig

    meta = tiny_transformer_config("ltx2.5").to_metadata()
    cfg = TextPathConfig.from_metadata(meta | {"connector_ff_bias": False}, max_length=64)
    assert not cfg.video_connector.ff_bias and not cfg.audio_connector.ff_bias
    with pytest.raises(ConfigError) as err:
        TextPathConfig.from_metadata(meta | {"connector_ff_bias": "no"}, max_length=64)
    assert "connector_ff_bias" in err.value.message and "'no'" in err.value.message
