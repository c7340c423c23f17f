"""Gemma 3 through ``transformers``: tokenizer + language model -> all hidden states.

Sources: a local Hugging Face directory (``Gemma3ForConditionalGeneration``, model_type ``gemma3``, as
released for LTX-2; or a text-only ``gemma3_text`` model) or a GGUF file (needs the ``gguf`` extra;
transformers dequantises it). Only the language model is kept and run; nothing is fetched from the network.

Tokenisation follows the official encoder: prompt ``.strip()``, BOS from the tokenizer, ``padding=
"max_length"`` to ``max_length`` (1024), truncation, **left** padding, pad = eos when the tokenizer has none.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import transformers
from torch import nn
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase

from ltx2stream import codes
from ltx2stream.errors import CheckpointError, InputError

log = logging.getLogger(__name__)

SUPPORTED_MODEL_TYPES = ("gemma3", "gemma3_text")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model")
_TRANSFORMERS_V5 = int(transformers.__version__.split(".", 1)[0]) >= 5


@dataclass(frozen=True)
class Tokens:
    """Left-padded token ids and mask, both [B, T] int64 (mask 1 = real token)."""

    input_ids: torch.Tensor
    mask: torch.Tensor


class GemmaEncoder:
    """A Gemma 3 language model and its tokenizer, returning every hidden state of a left-padded batch."""

    def __init__(self, model: nn.Module, tokenizer: PreTrainedTokenizerBase, *, max_length: int) -> None:
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = prepare_tokenizer(tokenizer)
        self.max_length = max_length
        self.forward_calls = 0  # Gemma forwards run so far (the prompt cache is tested against this)

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def num_hidden_states(self) -> int:
        """Embedding output + one per layer (49 for Gemma-3-12B)."""
        return int(self.model.config.num_hidden_layers) + 1

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def tokenize(self, prompts: Sequence[str]) -> Tokens:
        enc = self.tokenizer(
            [p.strip() for p in prompts],
            padding="max_length",
            max_length=self.max_length,
            truncation=True,
            return_tensors="pt",
        )
        return Tokens(enc["input_ids"].long(), enc["attention_mask"].long())

    @torch.no_grad()
    def hidden_states(self, tokens: Tokens) -> torch.Tensor:
        """All hidden states of the language model stacked to [B, T, D, L+1] (model dtype, model device)."""
        self.forward_calls += 1
        out = self.model(
            input_ids=tokens.input_ids.to(self.device),
            attention_mask=tokens.mask.to(self.device),
            output_hidden_states=True,
            use_cache=False,
        )
        return torch.stack(out.hidden_states, dim=-1)  # (L+1) x [B, T, D] -> [B, T, D, L+1]


def prepare_tokenizer(tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    """Left padding; pad with eos when the tokenizer defines no pad token."""
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise CheckpointError(
                "Gemma tokenizer has neither a pad nor an eos token", code=codes.CHECKPOINT_TOKENIZER
            )
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_gemma(
    path: str | Path,
    *,
    max_length: int = 1024,
    dtype: torch.dtype = torch.bfloat16,
    device: torch.device | str = "cpu",
) -> GemmaEncoder:
    """Load a Gemma 3 text encoder from a local HF directory or a ``.gguf`` file (CheckpointError if unusable)."""
    if max_length < 1:
        raise InputError(f"max_length={max_length} must be >= 1", code=codes.INPUT_MAX_LENGTH)
    p = Path(path).expanduser()
    if p.is_file() and p.suffix == ".gguf":
        model, tokenizer = _load_gguf(p, dtype)
    elif p.is_dir():
        model, tokenizer = _load_hf_dir(p, dtype)
    else:
        found = "is neither a directory nor a .gguf file" if p.exists() else "not found"
        raise CheckpointError(
            f"Gemma text encoder {found} at {p}: give a local Hugging Face directory (config.json, tokenizer,"
            " *.safetensors) or a .gguf file",
            code=codes.CHECKPOINT_GEMMA_INVALID if p.exists() else codes.CHECKPOINT_GEMMA_NOT_FOUND,
        )
    text_model = language_model(model).to(device=device)
    log.info(
        "Gemma %s: hidden %d, %d layers, max_length %d",
        p.name,
        text_model.config.hidden_size,
        text_model.config.num_hidden_layers,
        max_length,
    )
    return GemmaEncoder(text_model, tokenizer, max_length=max_length)


def language_model(model: nn.Module) -> nn.Module:
    """The ``Gemma3TextModel`` inside a ForConditionalGeneration / ForCausalLM wrapper (drops vision and lm_head).

    Running it on token ids gives the same hidden states as the multimodal model run without images.
    """
    inner = getattr(model, "model", model)
    return getattr(inner, "language_model", inner)


def _dtype_kwargs(dtype: torch.dtype) -> dict[str, Any]:
    return {"dtype": dtype} if _TRANSFORMERS_V5 else {"torch_dtype": dtype}


def _load_hf_dir(directory: Path, dtype: torch.dtype) -> tuple[nn.Module, PreTrainedTokenizerBase]:
    config_file = directory / "config.json"
    if not config_file.is_file():
        raise CheckpointError(
            f"{directory}: no config.json; not a Hugging Face model directory",
            code=codes.CHECKPOINT_GEMMA_INVALID,
        )
    try:
        model_type = json.loads(config_file.read_text()).get("model_type")
    except (json.JSONDecodeError, AttributeError) as e:
        raise CheckpointError(
            f"{config_file}: not valid JSON: {e}", code=codes.CHECKPOINT_GEMMA_INVALID
        ) from e
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise CheckpointError(
            f"{directory}: model_type {model_type!r} is not supported; supported: {', '.join(SUPPORTED_MODEL_TYPES)}",
            code=codes.CHECKPOINT_GEMMA_INVALID,
        )
    if not any((directory / name).is_file() for name in TOKENIZER_FILES):
        # AutoTokenizer would silently build an empty tokenizer from the config alone
        raise CheckpointError(
            f"{directory}: no tokenizer ({' or '.join(TOKENIZER_FILES)})", code=codes.CHECKPOINT_GEMMA_INVALID
        )
    tokenizer = _wrap(
        directory, "tokenizer", lambda: AutoTokenizer.from_pretrained(directory, local_files_only=True)
    )
    if model_type == "gemma3":
        from transformers import Gemma3ForConditionalGeneration

        cls: Any = Gemma3ForConditionalGeneration
    else:
        cls = AutoModelForCausalLM
    model = _wrap(
        directory,
        "weights",
        lambda: cls.from_pretrained(directory, local_files_only=True, **_dtype_kwargs(dtype)),
    )
    return model, tokenizer


def gguf_cache_root() -> Path | None:
    """Where GGUF conversions are kept: ``$LTX2STREAM_CACHE`` (default ``~/.cache/ltx2stream``, as for the
    embedded tiny models); ``LTX2STREAM_GGUF_CACHE=off`` disables the conversion cache."""
    if os.environ.get("LTX2STREAM_GGUF_CACHE", "").strip().lower() in ("off", "0", "no", "false"):
        return None
    from ltx2stream.models.tiny import cache_root

    return cache_root()


def gguf_cache_dir(file: Path, dtype: torch.dtype) -> Path | None:
    """The converted copy of ``file`` at ``dtype``: keyed by name, size, mtime and dtype (a changed file or
    another dtype gets its own entry, so a cached load equals the GGUF load it replaces)."""
    root = gguf_cache_root()
    if root is None:
        return None
    st = file.stat()
    return (
        root / "gemma-gguf" / f"{file.stem}-{st.st_size}-{st.st_mtime_ns}-{str(dtype).removeprefix('torch.')}"
    )


def _load_gguf(file: Path, dtype: torch.dtype) -> tuple[nn.Module, PreTrainedTokenizerBase]:
    """A ``.gguf`` Gemma, through a local Hugging Face copy made on the first load.

    Reading a GGUF through transformers parses the 262k-token vocabulary and dequantizes every tensor in Python
    (minutes of one CPU core for the 270M package); the copy (``_write_cache``: the dequantized weights at the
    loaded dtype and the tokenizer) loads in seconds. Writing the copy is best effort: a read-only cache only
    costs the slow load each time."""
    cache = gguf_cache_dir(file, dtype)
    if cache is not None and (cache / "config.json").is_file():
        try:
            return _load_hf_dir(cache, dtype)
        except CheckpointError as e:
            log.warning("Gemma cache %s is unusable (%s); reading %s again", cache, e, file)
    model, tokenizer = _load_gguf_file(file, dtype)
    if cache is not None:
        _write_cache(model, tokenizer, cache)
    return model, tokenizer


def _write_cache(model: nn.Module, tokenizer: PreTrainedTokenizerBase, cache: Path) -> None:
    """The loaded model as a Hugging Face directory: ``config.json`` (without the GGUF ``quantization_config``:
    the weights are already dequantized, and transformers refuses ``save_pretrained`` on a GGUF-loaded model),
    ``model.safetensors`` (tied weights stored once) and the tokenizer files."""
    from safetensors.torch import save_model

    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=cache.parent, prefix=f".{cache.name}-"))
        try:
            config = model.config.to_dict()  # type: ignore[union-attr, operator]
            config.pop("quantization_config", None)
            (tmp / "config.json").write_text(json.dumps(config, indent=2))
            save_model(model, str(tmp / "model.safetensors"))
            tokenizer.save_pretrained(tmp)
            if cache.exists():  # an unusable copy (it failed to load above) or a concurrent writer's
                shutil.rmtree(cache, ignore_errors=True)
            os.replace(tmp, cache)
            log.info("Gemma: converted copy written to %s", cache)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    except (OSError, ValueError, RuntimeError, TypeError) as e:
        log.warning(
            "Gemma: cannot write the converted copy to %s (%s); the next load reads the GGUF again", cache, e
        )


def _load_gguf_file(file: Path, dtype: torch.dtype) -> tuple[nn.Module, PreTrainedTokenizerBase]:
    if importlib.util.find_spec("gguf") is None:
        raise CheckpointError(
            f"{file}: reading GGUF needs the optional 'gguf' package: pip install 'ltx2stream[gguf]'",
            code=codes.CHECKPOINT_GGUF_UNAVAILABLE,
        )
    kwargs = {"gguf_file": file.name, "local_files_only": True}
    tokenizer = _wrap(file, "tokenizer", lambda: AutoTokenizer.from_pretrained(file.parent, **kwargs))
    model = _wrap(
        file,
        "weights",
        lambda: AutoModelForCausalLM.from_pretrained(file.parent, **kwargs, **_dtype_kwargs(dtype)),
    )
    model_type = getattr(model.config, "model_type", None)
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise CheckpointError(
            f"{file}: GGUF holds a {model_type!r} model, not Gemma 3", code=codes.CHECKPOINT_GEMMA_INVALID
        )
    return model, tokenizer


def _wrap(where: Path, what: str, load: Any) -> Any:
    """Run a transformers loader; its OSError / ValueError become a CheckpointError naming the file."""
    try:
        return load()
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise CheckpointError(
            f"{where}: cannot load the Gemma {what}: {e}", code=codes.CHECKPOINT_GEMMA_INVALID
        ) from e
