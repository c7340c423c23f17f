"""Load the text path from an official single-file checkpoint plus a Gemma 3 model (and write it back).

Checkpoint prefixes: ``text_embedding_projection.`` (feature extractor: ``aggregate_embed`` for LTX-2,
``video_aggregate_embed`` + ``audio_aggregate_embed`` for LTX-2.3), ``model.diffusion_model.video_embeddings_
connector.`` and ``model.diffusion_model.audio_embeddings_connector.``. The config is the ``transformer``
section. The DiT loader must leave the two connector prefixes to this module.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from ltx2stream import codes
from ltx2stream.errors import CheckpointError
from ltx2stream.models.loading import Checkpoint, build_on_meta, load_strict, with_prefix
from ltx2stream.models.text.config import DEFAULT_MAX_LENGTH, SECTION, TextPathConfig
from ltx2stream.models.text.encoder import PromptEncoder, TextProjection
from ltx2stream.models.text.gemma import GemmaEncoder, load_gemma

log = logging.getLogger(__name__)

FEATURE_EXTRACTOR_PREFIX = "text_embedding_projection."
VIDEO_CONNECTOR_PREFIX = "model.diffusion_model.video_embeddings_connector."
AUDIO_CONNECTOR_PREFIX = "model.diffusion_model.audio_embeddings_connector."
TEXT_PATH_PREFIXES = (FEATURE_EXTRACTOR_PREFIX, VIDEO_CONNECTOR_PREFIX, AUDIO_CONNECTOR_PREFIX)
_PARTS = (
    ("feature_extractor.", FEATURE_EXTRACTOR_PREFIX),
    ("video_connector.", VIDEO_CONNECTOR_PREFIX),
    ("audio_connector.", AUDIO_CONNECTOR_PREFIX),
)


def text_path_config(ckpt: Checkpoint, *, max_length: int = DEFAULT_MAX_LENGTH) -> TextPathConfig:
    """The text-path config of ``ckpt``; Gemma's layer count is taken from the aggregate weight's width."""
    cfg = TextPathConfig.from_metadata(ckpt.section(SECTION), max_length=max_length)
    key = next(
        (k for k in ckpt.keys_with_prefix(FEATURE_EXTRACTOR_PREFIX) if k.endswith("aggregate_embed.weight")),
        None,
    )
    if key is not None and ckpt.shape(key)[-1] % cfg.caption_channels == 0:
        cfg = cfg.with_gemma(cfg.caption_channels, ckpt.shape(key)[-1] // cfg.caption_channels)
    return cfg


def load_text_projection(
    ckpt: Checkpoint,
    cfg: TextPathConfig | None = None,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> TextProjection:
    """Feature extractor + connectors from ``ckpt``, loaded strictly (missing / unexpected / wrong-shape keys
    raise CheckpointError listing them)."""
    cfg = cfg or text_path_config(ckpt)
    model = build_on_meta(lambda: TextProjection(cfg))
    state: dict[str, torch.Tensor] = {}
    for local, official in _PARTS:
        state.update(with_prefix(local, ckpt.read(official, dtype=dtype)))
    log.info(
        "text path %s: %d tensors, connectors %dx%d / %dx%d",
        cfg.feature_extractor,
        len(state),
        cfg.video_connector.num_layers,
        cfg.video_connector.inner_dim,
        cfg.audio_connector.num_layers,
        cfg.audio_connector.inner_dim,
    )
    return load_strict(model, state, what=f"text path ({cfg.feature_extractor})", device=device, dtype=dtype)


def load_text_path(
    ckpt: Checkpoint,
    gemma_path: str | Path,
    *,
    dtype: torch.dtype = torch.bfloat16,
    device: torch.device | str = "cpu",
    max_length: int = DEFAULT_MAX_LENGTH,
    cache_size: int = 32,
) -> PromptEncoder:
    """Feature extractor and connectors from ``ckpt`` + Gemma 3 from ``gemma_path`` -> a caching PromptEncoder.

    The checkpoint part is loaded (strictly) first, so a bad checkpoint fails before the big Gemma load. The
    Gemma hidden size must equal ``caption_channels`` (ConfigError) and its hidden-state count must match the
    aggregate weights' width (CheckpointError).
    """
    cfg = text_path_config(ckpt, max_length=max_length)
    projection = load_text_projection(ckpt, cfg, dtype=dtype, device=device)
    gemma = _load_gemma_any(ckpt, Path(gemma_path), max_length=max_length, dtype=dtype, device=device)
    if cfg.with_gemma(gemma.hidden_size, gemma.num_hidden_states) != cfg:
        raise CheckpointError(
            f"Gemma at {gemma_path} returns {gemma.num_hidden_states} hidden states but {ckpt.path}'s feature"
            f" extractor expects {cfg.gemma_hidden_states} (aggregate weight width {cfg.flat_dim} ="
            f" {cfg.caption_channels} x {cfg.gemma_hidden_states}); use the Gemma 3 model of this checkpoint",
            code=codes.CHECKPOINT_GEMMA_MISMATCH,
        )
    return PromptEncoder(gemma, projection, cache_size=cache_size)


def _load_gemma_any(
    ckpt: Checkpoint, path: Path, *, max_length: int, dtype: torch.dtype, device: torch.device | str
) -> GemmaEncoder:
    """A single-file text encoder (``.safetensors``, LTX-2.5 Gemma 4) checked against the transformer's
    ``gemma_source_checkpoint``; otherwise the Gemma 3 directory / GGUF route."""
    from ltx2stream.models.versions import check_gemma_pairing

    if path.suffix == ".safetensors":
        from ltx2stream.models.text.gemma4 import gemma_file_config, load_gemma4_file

        if not path.is_file():
            raise CheckpointError(f"text encoder not found: {path}", code=codes.CHECKPOINT_GEMMA_NOT_FOUND)
        te = gemma_file_config(path)
        check_gemma_pairing(ckpt.metadata, str(te.get("model_type")), te.get("gemma_version"))
        return load_gemma4_file(path, max_length=max_length, dtype=dtype, device=device)
    check_gemma_pairing(ckpt.metadata, "gemma3", None)
    return load_gemma(path, max_length=max_length, dtype=dtype, device=device)


def text_path_checkpoint_tensors(model: TextProjection | PromptEncoder) -> dict[str, torch.Tensor]:
    """State dict under the official prefixes (``text_embedding_projection.*`` and the two connectors)."""
    projection = model.projection if isinstance(model, PromptEncoder) else model
    out: dict[str, torch.Tensor] = {}
    for local, official in _PARTS:
        sub = {k[len(local) :]: v for k, v in projection.state_dict().items() if k.startswith(local)}
        out.update(with_prefix(official, sub))
    return out
