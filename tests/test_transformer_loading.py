"""Tiny LTX-2 / LTX-2.3 DiTs in the official file layout load strictly and run; bad files fail clearly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ltx2stream.errors import CheckpointError, ConfigError
from ltx2stream.models.loading import open_checkpoint, save_checkpoint
from ltx2stream.models.transformer import (
    TRANSFORMER_PREFIX,
    LTXAVModel,
    load_transformer,
    tiny_modalities,
    tiny_transformer,
    transformer_checkpoint_tensors,
)

FLAVOURS = ["ltx2", "ltx2.3"]
Q = TRANSFORMER_PREFIX + "transformer_blocks.0.attn1.to_q.weight"


def _write(
    path: Path, model: LTXAVModel, tensors: dict[str, torch.Tensor] | None = None, **section: object
) -> Path:
    config = {"transformer": model.config.to_metadata() | section, "vae": {}}
    state = transformer_checkpoint_tensors(model) if tensors is None else tensors
    return save_checkpoint(path, state, config=config)


@pytest.fixture(scope="module", params=FLAVOURS)
def saved(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[LTXAVModel, Path]:
    model = tiny_transformer(request.param, seed=3)
    tensors = transformer_checkpoint_tensors(model)
    # a full file also holds the text connectors under the same prefix, and other parts
    tensors[TRANSFORMER_PREFIX + "video_embeddings_connector.learnable_registers"] = torch.randn(32, 32)
    tensors[TRANSFORMER_PREFIX + "audio_embeddings_connector.learnable_registers"] = torch.randn(32, 32)
    tensors["vae.decoder.conv_in.conv.weight"] = torch.randn(4, 4)
    path = _write(tmp_path_factory.mktemp(request.param) / "tiny.safetensors", model, tensors)
    return model, path


def test_official_layout_loads_strictly_and_runs(saved: tuple[LTXAVModel, Path]) -> None:
    model, path = saved
    ckpt = open_checkpoint(path)
    loaded = load_transformer(ckpt, dtype=torch.float32)
    assert loaded.config == model.config
    ref_state, got_state = model.state_dict(), loaded.state_dict()
    assert ref_state.keys() == got_state.keys()
    assert all(torch.equal(ref_state[k], got_state[k]) for k in ref_state)
    per_block = 86 if model.config.cross_attention_adaln else 72  # spec §8.4
    assert len([k for k in got_state if k.startswith("transformer_blocks.0.")]) == per_block
    video, audio = tiny_modalities(model.config, batch=2, latent_frames=2, audio_frames=6)
    with torch.no_grad():
        v, a = loaded(video, audio)
        v_ref, a_ref = model(video, audio)
    assert v is not None and a is not None
    assert v.shape == (2, 8, 128) and a.shape == (2, 6, 128)
    assert torch.equal(v, v_ref) and torch.equal(a, a_ref)


def test_bfloat16_load_and_forward(saved: tuple[LTXAVModel, Path]) -> None:
    model, path = saved
    loaded = load_transformer(open_checkpoint(path))  # default dtype bf16
    assert loaded.dtype == torch.bfloat16
    video, audio = tiny_modalities(model.config, batch=1)
    with torch.no_grad():
        v, a = loaded(video, audio)
        v32, a32 = model(video, audio)
    assert v is not None and a is not None and v32 is not None and a32 is not None
    assert v.dtype == a.dtype == torch.bfloat16
    assert torch.isfinite(v).all() and torch.isfinite(a).all()
    assert (v.float() - v32).abs().max() < 0.1 * v32.abs().max()  # bf16 tracks the float32 model


def test_fp8_weights_with_scale_are_dequantised(saved: tuple[LTXAVModel, Path], tmp_path: Path) -> None:
    model, _ = saved
    tensors = transformer_checkpoint_tensors(model)
    w = tensors[Q]
    scale = w.abs().max() / 448.0
    tensors[Q] = (w / scale).to(torch.float8_e4m3fn)
    tensors[Q + "_scale"] = scale.reshape(())
    loaded = load_transformer(
        open_checkpoint(_write(tmp_path / "fp8.safetensors", model, tensors)), dtype=torch.float32
    )
    got = loaded.state_dict()["transformer_blocks.0.attn1.to_q.weight"]
    assert torch.allclose(got, w, rtol=0.07, atol=scale.item())
    assert not torch.equal(got, w)


def test_missing_key_is_named(saved: tuple[LTXAVModel, Path], tmp_path: Path) -> None:
    model, _ = saved
    tensors = transformer_checkpoint_tensors(model)
    del tensors[Q]
    with pytest.raises(CheckpointError, match="1 missing .*transformer_blocks.0.attn1.to_q.weight") as err:
        load_transformer(open_checkpoint(_write(tmp_path / "m.safetensors", model, tensors)))
    assert err.value.code == "checkpoint.key_mismatch"


def test_unexpected_key_is_named(saved: tuple[LTXAVModel, Path], tmp_path: Path) -> None:
    model, _ = saved
    tensors = transformer_checkpoint_tensors(model)
    tensors[TRANSFORMER_PREFIX + "transformer_blocks.0.attn1.to_gate_compress.weight"] = torch.zeros(2, 32)
    with pytest.raises(CheckpointError, match="1 unexpected .*to_gate_compress"):
        load_transformer(open_checkpoint(_write(tmp_path / "u.safetensors", model, tensors)))


def test_wrong_shape_is_named(saved: tuple[LTXAVModel, Path], tmp_path: Path) -> None:
    model, _ = saved
    tensors = transformer_checkpoint_tensors(model)
    tensors[Q] = torch.zeros(32, 16)
    with pytest.raises(
        CheckpointError, match=r"wrong shape .*to_q.weight: checkpoint \(32, 16\) vs model \(32, 32\)"
    ):
        load_transformer(open_checkpoint(_write(tmp_path / "s.safetensors", model, tensors)))


def test_config_and_weights_that_disagree(saved: tuple[LTXAVModel, Path], tmp_path: Path) -> None:
    """An LTX-2 file whose config claims LTX-2.3 switches: the key sets differ and the error lists them."""
    model, _ = saved
    flipped = not model.config.cross_attention_adaln
    path = _write(
        tmp_path / "d.safetensors", model, cross_attention_adaln=flipped, apply_gated_attention=flipped
    )
    with pytest.raises(CheckpointError, match="prompt_scale_shift_table|prompt_adaln_single"):
        load_transformer(open_checkpoint(path))


def test_unknown_config_value_and_missing_section(saved: tuple[LTXAVModel, Path], tmp_path: Path) -> None:
    model, _ = saved
    with pytest.raises(ConfigError, match="rope_type='yarn'; supported: 'split', 'interleaved'"):
        load_transformer(open_checkpoint(_write(tmp_path / "c.safetensors", model, rope_type="yarn")))
    bare = save_checkpoint(
        tmp_path / "bare.safetensors", transformer_checkpoint_tensors(model), config={"vae": {}}
    )
    with pytest.raises(CheckpointError, match="no 'transformer' section"):
        load_transformer(open_checkpoint(bare))
