"""LTX-2.5 split per-component files: the tiny set loads strictly, ``info`` names the model, Gemma 4 from one file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from ltx2stream import codes
from ltx2stream.errors import CheckpointError
from ltx2stream.models.identify import describe
from ltx2stream.models.loading import open_checkpoint, save_checkpoint
from ltx2stream.models.split import ModelFileSet, open_model
from ltx2stream.models.text.gemma4 import load_gemma4_file
from ltx2stream.models.text.loading import load_text_path
from ltx2stream.models.text.tiny_gemma4 import tiny_gemma4_config, tiny_gemma4_file, tiny_gemma4_tokenizer
from ltx2stream.models.tiny import write_tiny_model
from ltx2stream.models.tiny_split import NAMES, write_tiny_split_model
from ltx2stream.models.transformer import load_transformer
from ltx2stream.models.video_vae import load_video_vae
from ltx2stream.pipeline.components import ModelPaths, load_components


@pytest.fixture(scope="module")
def split_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_split_model(tmp_path_factory.mktemp("ltx25"))


def test_split_set_loads_every_part_strictly(split_root: Path) -> None:
    """Transformer, text path (Gemma 4 + projection), both VAEs, upsampler and LoRA load with zero key errors."""
    files = ModelFileSet.from_directory(split_root)
    assert files.text_encoder is not None and files.text_encoder.name == Path(NAMES["text_encoder"]).name
    comps = load_components(
        ModelPaths(split_root, files.text_encoder, files.upsampler, files.distilled_lora),
        dtype=torch.float32,
        text_max_length=64,
    )
    assert comps.transformer.config.use_keyframes_abs_pos_embedding
    assert not comps.transformer.config.ff_bias
    assert comps.upsampler is not None and comps.refine_lora is not None
    ctx = comps.text_encoder.encode(["a red fox"])
    assert ctx.video.shape[-1] == comps.transformer.config.video_inner_dim
    conv = ModelFileSet.from_directory(split_root, video_decoder="conv")
    assert conv.video_vae is not None and "-conv-" in conv.video_vae.name
    vae = load_video_vae(open_model(conv), dtype=torch.float32)
    assert set(dict(vae.per_channel_statistics.named_buffers())) == {"mean-of-means", "std-of-means"}


def test_view_maps_bare_vae_keys_and_reads_from_each_file(split_root: Path) -> None:
    """The merged view has monolithic keys; tensors come back equal to the component files' own."""
    files = ModelFileSet.from_directory(split_root, video_decoder="conv")
    view = open_model(files)
    assert view.model_version == "2.5.0-tiny"
    bare = load_file(str(files.video_vae))
    read = view.read("vae.")
    assert set(read) == set(bare) and all(torch.equal(read[k], bare[k]) for k in bare)
    assert set(view.config) >= {"transformer", "vae", "audio_vae", "vocoder"}
    assert not any(k.startswith("model.layers.") for k in view.keys)  # Gemma weights stay out of the view


def test_duplicate_or_missing_files_are_errors(split_root: Path, tmp_path: Path) -> None:
    """Two files with the same key, or no transformer, raise checkpoint.split_layout."""
    files = ModelFileSet.from_directory(split_root, video_decoder="conv")
    monolith = write_tiny_model(tmp_path / "m", "ltx2.3").checkpoint  # already holds audio_vae.* keys
    with pytest.raises(CheckpointError) as err:
        open_model(ModelFileSet(monolith, audio_vae=files.audio_vae))
    assert err.value.code == codes.CHECKPOINT_SPLIT_LAYOUT and "is in both" in err.value.message
    (tmp_path / "diffusion_models").mkdir()
    with pytest.raises(CheckpointError) as err:
        ModelFileSet.from_directory(tmp_path)
    assert err.value.code == codes.CHECKPOINT_SPLIT_LAYOUT and "distilled transformer" in err.value.message


def test_info_names_each_release(split_root: Path, tmp_path: Path) -> None:
    """info: the split set is LTX-2.5; the tiny monoliths are LTX-2 and LTX-2.3."""
    assert describe([split_root])["model"]["model"] == ["LTX-2.5"]
    assert describe([split_root])["model"]["layout"] == "split"
    for flavour, name in (("ltx2", "LTX-2"), ("ltx2.3", "LTX-2.3")):
        files = write_tiny_model(tmp_path / flavour, flavour)
        summary = describe([files.checkpoint])["model"]
        assert summary["model"] == [name] and summary["layout"] == "single"


def test_vae_statistics_beyond_the_two_read_are_optional(tmp_path: Path) -> None:
    """A monolith VAE without mean-of-stds / channel stats loads; with them it loads too (no unexpected keys)."""
    files = write_tiny_model(tmp_path / "m", "ltx2.3")
    full = open_checkpoint(files.checkpoint)
    vae_full = load_video_vae(full, dtype=torch.float32)
    tensors = load_file(str(files.checkpoint))
    optional = ("mean-of-stds", "mean-of-stds_over_std-of-means", "channel")
    slim = {k: v for k, v in tensors.items() if k.rsplit(".", 1)[-1] not in optional}
    save_checkpoint(tmp_path / "slim.safetensors", slim, config=full.config)
    vae = load_video_vae(open_checkpoint(tmp_path / "slim.safetensors"), dtype=torch.float32)
    assert len(dict(vae.per_channel_statistics.named_buffers())) == 2
    assert len(dict(vae_full.per_channel_statistics.named_buffers())) == 5
    z = torch.randn(1, 128, 2, 2, 2)
    assert torch.equal(vae.decode(z), vae_full.decode(z))


def test_gemma4_file_matches_hf_and_forces_bos(tmp_path: Path) -> None:
    """Hidden states equal HF's own model with the same weights; <bos> prepended; HF-layout keys load too."""
    from transformers.models.gemma4_unified.modeling_gemma4_unified import Gemma4UnifiedTextModel

    for layout in ("comfy", "hf"):
        tensors, meta = tiny_gemma4_file(3, layout=layout)
        save_file(tensors, str(tmp_path / f"{layout}.safetensors"), metadata=meta)
    enc = load_gemma4_file(tmp_path / "comfy.safetensors", max_length=16, dtype=torch.float32)
    enc_hf = load_gemma4_file(tmp_path / "hf.safetensors", max_length=16, dtype=torch.float32)
    tokens = enc.tokenize(["  a red fox  ", "waves crash " * 10])
    bos = enc.tokenizer.bos_token_id
    assert enc.tokenizer("a red fox")["input_ids"][0] != bos  # the tokenizer itself emits no <bos>
    first = int((tokens.mask[0] == 0).sum())  # left padding: the prompt starts here
    assert 0 < first < 16 and tokens.input_ids[0, first] == bos and tokens.input_ids[1, 0] == bos
    assert tokens.mask[1].all()  # truncated to 16 with <bos> kept first
    ref = Gemma4UnifiedTextModel(tiny_gemma4_config(len(tiny_gemma4_tokenizer())).text_config).eval()
    ref.load_state_dict(
        {k[6:]: v for k, v in tiny_gemma4_file(3)[0].items() if k.startswith("model.")}, strict=True
    )
    with torch.no_grad():
        out = ref(input_ids=tokens.input_ids, attention_mask=tokens.mask, output_hidden_states=True)
    expected = torch.stack(out.hidden_states, dim=-1)
    assert torch.equal(enc.hidden_states(tokens), expected)
    assert torch.equal(enc_hf.hidden_states(tokens), expected)


def test_gemma4_file_errors_name_the_problem(tmp_path: Path) -> None:
    """An unexpected weight key or a missing tokenizer is a CheckpointError naming it."""
    tensors, meta = tiny_gemma4_file(0)
    save_file(
        tensors | {"model.extra.weight": torch.zeros(2)}, str(tmp_path / "a.safetensors"), metadata=meta
    )
    with pytest.raises(CheckpointError, match="extra.weight"):
        load_gemma4_file(tmp_path / "a.safetensors", max_length=8)
    no_tok = {k: v for k, v in tensors.items() if k != "tokenizer_json"}
    save_file(no_tok, str(tmp_path / "b.safetensors"), metadata=meta)
    with pytest.raises(CheckpointError) as err:
        load_gemma4_file(tmp_path / "b.safetensors", max_length=8)
    assert err.value.code == codes.CHECKPOINT_TOKENIZER


def test_text_encoder_must_be_the_one_the_transformer_names(split_root: Path, tmp_path: Path) -> None:
    """gemma_source_checkpoint must match the TE's gemma_version; a Gemma 4 with an LTX-2.3 DiT is refused."""
    te = split_root / NAMES["text_encoder"]
    other = tmp_path / "te.safetensors"
    shutil.copy(te, other)
    tensors = load_file(str(other))
    meta = json.loads(open_checkpoint(other).metadata["gemma_config"])
    save_file(tensors, str(other), metadata={"gemma_config": json.dumps(meta | {"gemma_version": "stock"})})
    view = open_model(split_root)
    with pytest.raises(CheckpointError) as err:
        load_text_path(view, other, dtype=torch.float32, max_length=64)
    assert err.value.code == codes.CHECKPOINT_GEMMA_VERSION and "'stock'" in err.value.message
    files = write_tiny_model(tmp_path / "m23", "ltx2.3")
    with pytest.raises(CheckpointError) as err:
        load_text_path(open_checkpoint(files.checkpoint), te, dtype=torch.float32, max_length=64)
    assert err.value.code == codes.CHECKPOINT_GEMMA_VERSION


def test_dev_and_distilled_transformers_are_picked_by_variant(split_root: Path) -> None:
    """The directory holds both transformers; the preset's variant picks one."""
    dev = ModelFileSet.from_directory(split_root, variant="dev").transformer
    assert "-dev-" in dev.name
    model = load_transformer(open_model(split_root, variant="dev"), dtype=torch.float32)
    assert "keyframes_abs_pos_embedding" in model.state_dict()
