"""A tiny Gemma 4 "unified" text encoder for tests, written as the released single file (``gemma4.py``).

Hidden 32, 2 layers (one sliding-window layer, one full-attention layer with K = V, its own 32-wide global head
and ``proportional`` partial RoPE, as the 12B's), 2 heads / 1 KV head; the offline byte-level tokenizer of
``tiny.py`` without its BOS post-processor (like the Gemma 4 assets, so the encoder has to force ``<bos>``).
"""

from __future__ import annotations

import json
from typing import Any

import torch
from tokenizers import processors
from transformers import PreTrainedTokenizerFast

from ltx2stream.models.text.gemma4 import MODEL_TYPE, gemma4_file_tensors
from ltx2stream.models.text.tiny import TINY_HIDDEN, TINY_LAYERS, _randomize_norms, build_tiny_tokenizer

TINY_GEMMA4_VERSION = "gemma4-tiny-ltx-v1"


def tiny_gemma4_tokenizer() -> PreTrainedTokenizerFast:
    tok = build_tiny_tokenizer()
    tok.backend_tokenizer.post_processor = processors.TemplateProcessing(single="$A", pair="$A $B")
    return tok


def tiny_gemma4_config(vocab_size: int) -> Any:
    from transformers import Gemma4UnifiedConfig

    text = {
        "vocab_size": vocab_size,
        "hidden_size": TINY_HIDDEN,
        "intermediate_size": 64,
        "num_hidden_layers": TINY_LAYERS,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": 16,
        "global_head_dim": 32,
        "num_global_key_value_heads": 1,
        "attention_k_eq_v": True,
        "max_position_embeddings": 1024,
        "sliding_window": 16,
        "layer_types": ["sliding_attention", "full_attention"],
        "pad_token_id": 0,
        "eos_token_id": 1,
        "bos_token_id": 2,
    }
    return Gemma4UnifiedConfig(text_config=text, vision_config=None)


def tiny_gemma4_file(
    seed: int = 0, *, layout: str = "comfy", gemma_version: str = TINY_GEMMA4_VERSION
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a tiny single-file Gemma 4 text encoder (add the projection before saving)."""
    from transformers.models.gemma4_unified.modeling_gemma4_unified import Gemma4UnifiedTextModel

    tokenizer = tiny_gemma4_tokenizer()
    cfg = tiny_gemma4_config(len(tokenizer))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Gemma4UnifiedTextModel(cfg.text_config)
    _randomize_norms(model, seed)
    with torch.no_grad():  # layer scalars are checkpoint-backed: make them differ from their init of 1
        for i, layer in enumerate(model.layers):
            layer.layer_scalar.fill_(0.5 + 0.25 * i)
    tensors = gemma4_file_tensors(model, tokenizer, layout=layout)
    config = cfg.to_dict() | {"model_type": MODEL_TYPE, "gemma_version": gemma_version}
    return tensors, {"gemma_config": json.dumps(config)}
