"""The embedded tiny model: one official-layout single file per flavour that every part loads from strictly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ltx2stream.errors import CheckpointError
from ltx2stream.models.loading import open_checkpoint, save_checkpoint
from ltx2stream.models.tiny import ensure_tiny_model, write_tiny_model
from ltx2stream.pipeline.components import ModelPaths, load_components

PREFIXES = {"model.diffusion_model.", "text_embedding_projection.", "vae.", "audio_vae.", "vocoder."}


@pytest.mark.parametrize("flavour", ["ltx2", "ltx2.3"])
def test_single_file_holds_every_part_and_loads_strictly(flavour: str) -> None:
    files = ensure_tiny_model(flavour)
    ckpt = open_checkpoint(files.checkpoint)
    assert {k for k in ckpt.config} >= {"transformer", "vae", "audio_vae", "vocoder"}
    assert {p for p in PREFIXES if any(k.startswith(p) for k in ckpt.keys)} == PREFIXES
    assert any(k.startswith("model.diffusion_model.video_embeddings_connector.") for k in ckpt.keys)
    assert (ckpt.model_version or "").startswith("2.3") == (flavour == "ltx2.3")
    c = load_components(
        ModelPaths(files.checkpoint, files.gemma, files.upsampler, files.refine_lora),
        dtype=torch.float32,
        text_max_length=64,
    )
    # every tensor of the file is owned by exactly one loaded part
    owned = (
        len(c.transformer.state_dict())
        + len(c.text_encoder.projection.state_dict())
        + len(c.vae.state_dict())
        + len(c.audio.vae.state_dict())
        + len(c.audio.vocoder.state_dict())
    )
    assert owned == len(ckpt.keys)
    assert c.audio.sample_rate == (24000 if flavour == "ltx2" else 48000)
    assert c.upsampler is not None and c.refine_lora is not None


def test_written_deterministically(tmp_path: Path) -> None:
    a, b = write_tiny_model(tmp_path / "a", "ltx2", seed=3), write_tiny_model(tmp_path / "b", "ltx2", seed=3)
    ta, tb = open_checkpoint(a.checkpoint), open_checkpoint(b.checkpoint)
    key = "model.diffusion_model.transformer_blocks.0.attn1.to_q.weight"
    assert torch.equal(ta.read(key, strip=False)[key], tb.read(key, strip=False)[key])
    assert (a.gemma / "model.safetensors").read_bytes() == (b.gemma / "model.safetensors").read_bytes()


def test_a_file_missing_a_part_is_refused(tmp_path: Path) -> None:
    files = ensure_tiny_model("ltx2")
    ckpt = open_checkpoint(files.checkpoint)
    tensors = ckpt.read("")
    dropped = {k: v for k, v in tensors.items() if not k.startswith("vae.decoder.conv_out")}
    broken = save_checkpoint(tmp_path / "broken.safetensors", dropped, config=dict(ckpt.config))
    with pytest.raises(CheckpointError) as e:
        load_components(ModelPaths(broken, files.gemma), dtype=torch.float32, text_max_length=64)
    assert "conv_out" in e.value.message
