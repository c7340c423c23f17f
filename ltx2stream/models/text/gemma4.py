"""The LTX-2.5 text encoder: Gemma 4 12B "unified" from its single safetensors file (spec §1.4).

File format (official ``gemma_assets.py``): metadata ``gemma_config`` = the HF config as JSON (``model_type``
``gemma4_unified``, top-level ``gemma_version``); tensor ``tokenizer_json`` = the bytes of ``tokenizer.json``
(uint8, int8 accepted); tensors ``hf_asset__<name>`` = the bytes of the other sidecars (``tokenizer_config.json``
required here); weights in the Comfy-flat layout (``model.layers.*``, ``model.embed_tokens.*``, ``model.norm.*``;
towers under ``vision_model.*``, ``multi_modal_projector.*``, ``audio_projector.*``) or the HF layout
(``model.language_model.*``, ``model.embed_vision.*`` ...); ``lm_head`` absent (tied). The same file carries the
text projection (``text_embedding_projection.*``), read by the text-path loader.

Only the language model is built (on meta, filled strictly from the file; the towers are not needed to encode
text), with the non-persistent buffers (per-layer-type RoPE ``inv_freq``, ``embed_scale``) rebuilt on the
target device. Tokenisation: raw prompt (``strip``), no template; tokenize without padding, truncate to
``max_length``, prepend ``<bos>`` when the tokenizer did not, re-truncate, left-pad to ``max_length``.
All ``num_hidden_layers + 1`` hidden states go to the feature extractor, as for Gemma 3.

transformers: ``gemma4_unified`` exists from 5.10 (pinned in pyproject.toml; verified here with 5.24).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from torch import nn
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

from ltx2stream import codes
from ltx2stream.errors import CheckpointError
from ltx2stream.models.loading import build_on_meta, load_strict
from ltx2stream.models.text.gemma import GemmaEncoder, Tokens

log = logging.getLogger(__name__)

MODEL_TYPE = "gemma4_unified"
ASSET_PREFIX = "hf_asset__"
TOKENIZER_KEY = "tokenizer_json"
# Towers and other parts of the file the text encoder does not run (the projection is loaded by the text path).
DROPPED_PREFIXES = (
    "vision_model.",
    "multi_modal_projector.",
    "audio_projector.",
    "model.vision_embedder.",
    "model.embed_vision.",
    "model.embed_audio.",
    "lm_head.",
    "text_embedding_projection.",
    ASSET_PREFIX,
    TOKENIZER_KEY,
)
_TOKENIZER_CONFIG_DROP = (
    "tokenizer_class",
    "auto_map",
    "model_max_length",
    "backend",
    "is_local",
    "local_files_only",
    "processor_class",
    "added_tokens_decoder",
)


class Gemma4Encoder(GemmaEncoder):
    """Gemma 4 language model with the forced-BOS left-padded tokenisation of the official encoder."""

    def tokenize(self, prompts: Sequence[str]) -> Tokens:
        bos = self.tokenizer.bos_token_id
        pad = self.tokenizer.pad_token_id
        rows = []
        for prompt in prompts:
            ids = list(self.tokenizer(prompt.strip(), add_special_tokens=True)["input_ids"])[
                : self.max_length
            ]
            if not ids or ids[0] != bos:
                ids = [bos, *ids][: self.max_length]
            rows.append(ids)
        input_ids = torch.full((len(rows), self.max_length), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), self.max_length), dtype=torch.long)
        for i, ids in enumerate(rows):  # left padding: the prompt ends at the last position
            if ids:
                input_ids[i, -len(ids) :] = torch.tensor(ids)
                mask[i, -len(ids) :] = 1
        return Tokens(input_ids, mask)


def gemma_file_config(path: str | Path) -> dict[str, Any]:
    """The ``gemma_config`` metadata of a text-encoder file (CheckpointError if absent or not JSON)."""
    with safe_open(str(path), framework="pt", device="cpu") as f:
        raw = (f.metadata() or {}).get("gemma_config")
    if raw is None:
        raise CheckpointError(
            f"{path}: no 'gemma_config' metadata; not a single-file text encoder",
            code=codes.CHECKPOINT_GEMMA_INVALID,
        )
    try:
        cfg: dict[str, Any] = json.loads(raw)
    except json.JSONDecodeError as e:
        raise CheckpointError(
            f"{path}: gemma_config is not JSON: {e}", code=codes.CHECKPOINT_GEMMA_INVALID
        ) from e
    return cfg


def load_gemma4_file(
    path: str | Path,
    *,
    max_length: int = 1024,
    dtype: torch.dtype = torch.bfloat16,
    device: torch.device | str = "cpu",
) -> Gemma4Encoder:
    """Build the Gemma 4 unified language model and tokenizer from one safetensors file."""
    from transformers import Gemma4UnifiedConfig
    from transformers.models.gemma4_unified.modeling_gemma4_unified import (
        Gemma4UnifiedTextModel,
        Gemma4UnifiedTextRotaryEmbedding,
    )

    p = Path(path)
    cfg = gemma_file_config(p)
    if cfg.get("model_type") != MODEL_TYPE:
        raise CheckpointError(
            f"{p}: gemma_config model_type={cfg.get('model_type')!r}; supported: {MODEL_TYPE!r}",
            code=codes.CHECKPOINT_GEMMA_INVALID,
        )
    text_cfg = Gemma4UnifiedConfig.from_dict(cfg).text_config
    with safe_open(str(p), framework="pt", device="cpu") as f:
        keys = list(f.keys())
        tokenizer = _tokenizer(p, f, keys)
        state = {_text_key(k): f.get_tensor(k) for k in keys if not k.startswith(DROPPED_PREFIXES)}
    model = build_on_meta(lambda: Gemma4UnifiedTextModel(text_cfg))
    if "embed_tokens.weight" in state and "lm_head.weight" in model.state_dict():  # tied, never stored
        state["lm_head.weight"] = state["embed_tokens.weight"]

    def materialize_buffers(dev: torch.device) -> None:
        """Non-persistent buffers cannot come from the file: rebuilt on the device (float32, as HF does)."""
        model.rotary_emb = Gemma4UnifiedTextRotaryEmbedding(config=text_cfg, device=dev)
        model.embed_tokens.embed_scale = torch.tensor(text_cfg.hidden_size**0.5, device=dev)

    model.materialize_buffers = materialize_buffers  # called by load_strict once the weights are in
    model = load_strict(model, state, what=f"Gemma 4 text model ({p.name})", device=device, dtype=dtype)
    log.info(
        "Gemma 4 %s (%s): hidden %d, %d layers", p.name, cfg.get("gemma_version"), text_cfg.hidden_size,
        text_cfg.num_hidden_layers,
    )  # fmt: skip
    return Gemma4Encoder(model, tokenizer, max_length=max_length)


def _text_key(key: str) -> str:
    """Comfy-flat ``model.layers.*`` / HF ``model.language_model.*`` -> the text model's own key."""
    for prefix in ("model.language_model.", "model."):
        if key.startswith(prefix):
            return key[len(prefix) :]
    return key


def _bytes(t: torch.Tensor) -> bytes:
    if t.dtype not in (torch.uint8, torch.int8):
        raise CheckpointError(
            f"asset tensor of dtype {t.dtype}; expected uint8", code=codes.CHECKPOINT_TOKENIZER
        )
    return bytes(t.view(torch.uint8).tolist())


def _tokenizer(path: Path, f: Any, keys: Sequence[str]) -> PreTrainedTokenizerBase:
    from tokenizers import Tokenizer

    config_key = ASSET_PREFIX + "tokenizer_config.json"
    if TOKENIZER_KEY not in keys or config_key not in keys:
        raise CheckpointError(
            f"{path}: the text-encoder file needs '{TOKENIZER_KEY}' and '{config_key}' tensors",
            code=codes.CHECKPOINT_TOKENIZER,
        )
    backend = Tokenizer.from_str(_bytes(f.get_tensor(TOKENIZER_KEY)).decode("utf-8"))
    options: Mapping[str, Any] = json.loads(_bytes(f.get_tensor(config_key)).decode("utf-8"))
    kwargs = {k: v for k, v in options.items() if k not in _TOKENIZER_CONFIG_DROP}
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, **kwargs)
    tokenizer.padding_side = "left"
    return tokenizer


def gemma4_file_tensors(
    model: nn.Module, tokenizer: PreTrainedTokenizerFast, *, layout: str = "comfy"
) -> dict[str, torch.Tensor]:
    """The tensors of a single-file text encoder: language model (``comfy`` or ``hf`` keys) + tokenizer assets."""
    prefix = "model." if layout == "comfy" else "model.language_model."
    out = {prefix + k: v for k, v in model.state_dict().items() if not k.startswith("lm_head.")}
    tokenizer_json = tokenizer.backend_tokenizer.to_str().encode("utf-8")
    options = {
        "bos_token": tokenizer.bos_token,
        "eos_token": tokenizer.eos_token,
        "pad_token": tokenizer.pad_token,
        "unk_token": tokenizer.unk_token,
        "tokenizer_class": "GemmaTokenizer",
        "model_max_length": 1000000,
    }
    out[TOKENIZER_KEY] = torch.frombuffer(bytearray(tokenizer_json), dtype=torch.uint8)
    out[ASSET_PREFIX + "tokenizer_config.json"] = torch.frombuffer(
        bytearray(json.dumps(options).encode("utf-8")), dtype=torch.uint8
    )
    out[ASSET_PREFIX + "processor_config.json"] = torch.frombuffer(
        bytearray(json.dumps({"processor_class": "Gemma4UnifiedProcessor"}).encode("utf-8")),
        dtype=torch.uint8,
    )
    return out
