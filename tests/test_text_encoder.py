"""Tiny Gemma + tokenizer, strict loading of the text path from official-layout files, the prompt cache."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from ltx2stream.errors import CheckpointError, ConfigError, InputError
from ltx2stream.models.loading import open_checkpoint, save_checkpoint
from ltx2stream.models.text import (
    PromptEncoder,
    load_gemma,
    load_text_path,
    load_text_projection,
    text_path_checkpoint_tensors,
    tiny_text_config,
    tiny_text_projection,
    write_tiny_gemma,
)
from ltx2stream.models.text.gemma import prepare_tokenizer

FLAVOURS = ["ltx2", "ltx2.3"]
MAX_LEN = 64


@pytest.fixture(scope="module")
def gemma_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_gemma(tmp_path_factory.mktemp("gemma") / "tiny", seed=0)


def write_text_checkpoint(path: Path, flavour: str, *, edit=None) -> Path:  # type: ignore[no-untyped-def]
    proj = tiny_text_projection(flavour, seed=1)
    tensors = text_path_checkpoint_tensors(proj)
    if edit is not None:
        edit(tensors)
    return save_checkpoint(path, tensors, config={"transformer": proj.cfg.to_metadata()})


def test_tokenizer_pads_left_with_bos_and_strips(gemma_dir: Path) -> None:
    gemma = load_gemma(gemma_dir, max_length=MAX_LEN, dtype=torch.float32)
    tok = gemma.tokenize(["  a red fox  ", "a red fox", "waves " * 100])
    assert tok.input_ids.shape == (3, MAX_LEN)
    n = int(tok.mask[0].sum())
    assert tok.mask[0].tolist() == [0] * (MAX_LEN - n) + [1] * n  # left padding
    assert (tok.input_ids[0, : MAX_LEN - n] == gemma.tokenizer.pad_token_id).all()
    assert tok.input_ids[0, MAX_LEN - n] == gemma.tokenizer.bos_token_id
    assert torch.equal(tok.input_ids[0], tok.input_ids[1])  # prompt is stripped
    assert tok.mask[2].all()  # long prompt truncated to max_length


def test_pad_falls_back_to_eos(gemma_dir: Path) -> None:
    gemma = load_gemma(gemma_dir, max_length=MAX_LEN, dtype=torch.float32)
    tokenizer = gemma.tokenizer
    tokenizer.pad_token = None
    tokenizer.padding_side = "right"
    prepare_tokenizer(tokenizer)
    assert tokenizer.pad_token == tokenizer.eos_token and tokenizer.padding_side == "left"


def test_tiny_gemma_is_deterministic_and_gives_all_hidden_states(tmp_path: Path, gemma_dir: Path) -> None:
    again = write_tiny_gemma(tmp_path / "again", seed=0)
    other = write_tiny_gemma(tmp_path / "other", seed=1)
    blob = (gemma_dir / "model.safetensors").read_bytes()
    assert (again / "model.safetensors").read_bytes() == blob != (other / "model.safetensors").read_bytes()
    gemma = load_gemma(gemma_dir, max_length=MAX_LEN, dtype=torch.float32)
    hidden = gemma.hidden_states(gemma.tokenize(["a cat", "a dog on a boat"]))
    assert hidden.shape == (2, MAX_LEN, 32, 3) and torch.isfinite(hidden).all()


def test_multimodal_gemma_runs_only_its_language_model(tmp_path: Path) -> None:
    from transformers import Gemma3ForConditionalGeneration

    path = write_tiny_gemma(tmp_path / "mm", seed=0, multimodal=True)
    gemma = load_gemma(path, max_length=MAX_LEN, dtype=torch.float32)
    assert type(gemma.model).__name__ == "Gemma3TextModel"
    tok = gemma.tokenize(["a red fox", "an old man plays the violin"])
    full = Gemma3ForConditionalGeneration.from_pretrained(path, local_files_only=True, dtype=torch.float32)
    with torch.no_grad():  # the official encoder calls the multimodal model without images
        ref = full.model(input_ids=tok.input_ids, attention_mask=tok.mask, output_hidden_states=True)
    torch.testing.assert_close(gemma.hidden_states(tok), torch.stack(ref.hidden_states, dim=-1))


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_text_path_loads_strictly_from_official_layout(tmp_path: Path, gemma_dir: Path, flavour: str) -> None:
    path = write_text_checkpoint(tmp_path / "tiny.safetensors", flavour)
    ckpt = open_checkpoint(path)
    expected_prefix = (
        "text_embedding_projection.aggregate_embed."
        if flavour == "ltx2"
        else ("text_embedding_projection.video_aggregate_embed.")
    )
    assert ckpt.has_prefix(expected_prefix)
    assert ckpt.has_prefix("model.diffusion_model.video_embeddings_connector.transformer_1d_blocks.0.attn1.")
    assert "model.diffusion_model.audio_embeddings_connector.learnable_registers" in ckpt.keys
    enc = load_text_path(ckpt, gemma_dir, dtype=torch.float32, max_length=MAX_LEN)
    ref = tiny_text_projection(flavour, seed=1)
    for k, v in ref.state_dict().items():
        torch.testing.assert_close(enc.projection.state_dict()[k], v)
    out = enc.encode(["a red fox runs", "waves crash"])
    audio_dim = 32 if flavour == "ltx2" else 16
    assert out.video.shape == (2, MAX_LEN, 32) and out.audio.shape == (2, MAX_LEN, audio_dim)
    assert out.mask.shape == (2, MAX_LEN) and bool(out.mask.all())
    assert torch.isfinite(out.video).all() and not torch.allclose(out.video[0], out.video[1])


def test_batched_encoding_equals_one_by_one(tmp_path: Path, gemma_dir: Path) -> None:
    ckpt = open_checkpoint(write_text_checkpoint(tmp_path / "t.safetensors", "ltx2.3"))
    enc = load_text_path(ckpt, gemma_dir, dtype=torch.float32, max_length=MAX_LEN, cache_size=0)
    both = enc.encode(["a red fox", "an old man plays the violin on a bridge"])
    one = enc.encode_one("an old man plays the violin on a bridge")
    torch.testing.assert_close(both.video[1:], one.video, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(both.audio[1:], one.audio, rtol=1e-4, atol=1e-5)


def test_repeated_prompt_runs_no_gemma_forward(tmp_path: Path, gemma_dir: Path) -> None:
    ckpt = open_checkpoint(write_text_checkpoint(tmp_path / "t.safetensors", "ltx2"))
    enc = load_text_path(ckpt, gemma_dir, dtype=torch.float32, max_length=MAX_LEN, cache_size=2)
    first = enc.encode(["a red fox", "a blue bird"])
    assert enc.cache_info().gemma_forwards == 1
    again = enc.encode([" a red fox ", "a blue bird", "a red fox"])
    info = enc.cache_info()
    assert (info.gemma_forwards, info.hits, info.misses, info.size) == (1, 2, 2, 2)
    assert torch.equal(again.video[0], first.video[0]) and torch.equal(again.video[2], first.video[0])
    enc.encode_one("a red fox")  # hit: "a blue bird" is now the least recently used
    enc.encode_one("a green frog")  # evicts the least recently used ("a blue bird")
    enc.encode_one("a red fox")
    assert enc.cache_info().gemma_forwards == 2
    enc.encode_one("a blue bird")
    assert enc.cache_info().gemma_forwards == 3


def test_cache_returns_the_cached_tensors(tmp_path: Path, gemma_dir: Path) -> None:
    ckpt = open_checkpoint(write_text_checkpoint(tmp_path / "t.safetensors", "ltx2"))
    enc = load_text_path(ckpt, gemma_dir, dtype=torch.float32, max_length=MAX_LEN)
    a, b = enc.encode_one("a red fox"), enc.encode_one("a red fox")
    assert a.video.data_ptr() == b.video.data_ptr() and enc.cache_info().gemma_forwards == 1


def test_bad_prompt_batches_are_input_errors(tmp_path: Path, gemma_dir: Path) -> None:
    ckpt = open_checkpoint(write_text_checkpoint(tmp_path / "t.safetensors", "ltx2"))
    enc = load_text_path(ckpt, gemma_dir, dtype=torch.float32, max_length=MAX_LEN)
    for bad in ("a bare string", [], ["ok", 3]):
        with pytest.raises(InputError):
            enc.encode(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (
            lambda t: t.pop("model.diffusion_model.video_embeddings_connector.learnable_registers"),
            "1 missing",
        ),
        (
            lambda t: t.__setitem__("text_embedding_projection.aggregate_embed.bias", torch.zeros(32)),
            "unexpected",
        ),
        (
            lambda t: t.__setitem__(
                "model.diffusion_model.audio_embeddings_connector.transformer_1d_blocks.0.attn1.to_q.weight",
                torch.zeros(32, 16),
            ),
            "wrong shape",
        ),
    ],
)
def test_mismatched_checkpoint_is_a_clear_error(tmp_path: Path, edit, needle: str) -> None:  # type: ignore[no-untyped-def]
    ckpt = open_checkpoint(write_text_checkpoint(tmp_path / "bad.safetensors", "ltx2", edit=edit))
    with pytest.raises(CheckpointError, match=needle) as e:
        load_text_projection(ckpt)
    assert e.value.code == "checkpoint.key_mismatch"


def test_gemma_with_other_layer_count_is_a_shape_error(tmp_path: Path, gemma_dir: Path) -> None:
    cfg = json.loads((gemma_dir / "config.json").read_text())
    deeper = tmp_path / "deeper"
    write_tiny_gemma(deeper)
    cfg["num_hidden_layers"], cfg["layer_types"] = 3, ["sliding_attention"] * 2 + ["full_attention"]
    (deeper / "config.json").write_text(json.dumps(cfg))
    ckpt = open_checkpoint(write_text_checkpoint(tmp_path / "t.safetensors", "ltx2"))
    with pytest.raises(CheckpointError, match="returns 4 hidden states but .* expects 3") as e:
        load_text_path(ckpt, deeper, dtype=torch.float32, max_length=MAX_LEN)
    assert e.value.code == "checkpoint.gemma_mismatch"


def test_gemma_hidden_size_mismatch_is_a_config_error(tmp_path: Path, gemma_dir: Path) -> None:
    proj = tiny_text_projection(
        cfg=replace(tiny_text_config("ltx2.3"), caption_channels=64)
    )  # Gemma is 32 wide
    path = save_checkpoint(
        tmp_path / "t.safetensors",
        text_path_checkpoint_tensors(proj),
        config={"transformer": proj.cfg.to_metadata()},
    )
    with pytest.raises(ConfigError, match="Gemma hidden size 32"):
        load_text_path(open_checkpoint(path), gemma_dir, dtype=torch.float32, max_length=MAX_LEN)


def test_missing_or_invalid_gemma_is_a_checkpoint_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(CheckpointError, match="not found") as e:
        load_gemma(tmp_path / "nowhere")
    assert e.value.code == "checkpoint.gemma_not_found"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CheckpointError, match="no config.json"):
        load_gemma(empty)
    (empty / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(CheckpointError, match="'llama' is not supported"):
        load_gemma(empty)
    (empty / "config.json").write_text(json.dumps({"model_type": "gemma3_text"}))
    with pytest.raises(CheckpointError, match="no tokenizer"):
        load_gemma(empty)
    (empty / "tokenizer.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="cannot load the Gemma tokenizer"):
        load_gemma(empty)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"")
    with pytest.raises(CheckpointError, match="neither a directory nor a .gguf file"):
        load_gemma(weights)
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"GGUF")
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None)
    with pytest.raises(CheckpointError, match=r"ltx2stream\[gguf\]"):
        load_gemma(fake)


def test_prompt_encoder_rejects_negative_cache(gemma_dir: Path) -> None:
    gemma = load_gemma(gemma_dir, max_length=MAX_LEN, dtype=torch.float32)
    with pytest.raises(InputError, match="cache_size"):
        PromptEncoder(gemma, tiny_text_projection("ltx2"), cache_size=-1)


def test_tiny_config_and_projection_agree() -> None:
    assert tiny_text_projection("ltx2.3").cfg == tiny_text_config("ltx2.3")


def test_gguf_load_goes_through_a_converted_copy(
    gemma_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first load of a .gguf writes a Hugging Face copy to the cache; later loads read the copy (same
    hidden states) without parsing the GGUF; another dtype, or a changed file, gets its own copy; a broken copy
    is read past and rewritten; ``LTX2STREAM_GGUF_CACHE=off`` disables the cache."""
    from ltx2stream.models.text import gemma as G

    calls: list[torch.dtype] = []

    def parse(file: Path, dtype: torch.dtype):  # type: ignore[no-untyped-def]
        calls.append(dtype)
        return G._load_hf_dir(gemma_dir, dtype)

    monkeypatch.setattr(G, "_load_gguf_file", parse)
    monkeypatch.setenv("LTX2STREAM_CACHE", str(tmp_path / "cache"))
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF stand-in")
    first = load_gemma(gguf, max_length=MAX_LEN, dtype=torch.float32)
    copy = G.gguf_cache_dir(gguf, torch.float32)
    assert calls == [torch.float32] and copy is not None and (copy / "config.json").is_file()
    second = load_gemma(gguf, max_length=MAX_LEN, dtype=torch.float32)
    assert calls == [torch.float32]  # read from the copy
    tokens = first.tokenize(["a red fox"])
    assert torch.equal(first.hidden_states(tokens), second.hidden_states(second.tokenize(["a red fox"])))
    load_gemma(gguf, max_length=MAX_LEN, dtype=torch.bfloat16)
    assert calls == [torch.float32, torch.bfloat16]  # another dtype: its own copy
    (copy / "config.json").write_text("{broken")
    load_gemma(gguf, max_length=MAX_LEN, dtype=torch.float32)
    assert len(calls) == 3 and json.loads((copy / "config.json").read_text())  # rewritten
    gguf.write_bytes(b"GGUF stand-in, changed")
    load_gemma(gguf, max_length=MAX_LEN, dtype=torch.float32)
    assert len(calls) == 4 and G.gguf_cache_dir(gguf, torch.float32) != copy  # a changed file: its own copy
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("")
    monkeypatch.setenv("LTX2STREAM_CACHE", str(blocked))  # the copy cannot be written: the load still works
    assert load_gemma(gguf, max_length=MAX_LEN, dtype=torch.float32).hidden_size == first.hidden_size
    assert len(calls) == 5
    monkeypatch.setenv("LTX2STREAM_GGUF_CACHE", "off")
    assert G.gguf_cache_dir(gguf, torch.float32) is None
    load_gemma(gguf, max_length=MAX_LEN, dtype=torch.float32)
    assert len(calls) == 6
