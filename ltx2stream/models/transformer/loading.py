"""Load the DiT from an official single-file checkpoint (and write it back in the official layout).

Weights live under ``model.diffusion_model.``; the two text connectors share that prefix
(``video_embeddings_connector.``, ``audio_embeddings_connector.``) but belong to the text path and are not
read here. fp8 weights with ``weight_scale`` siblings are dequantised by ``Checkpoint.read``.
"""

from __future__ import annotations

import logging

import torch

from ltx2stream.models.loading import Checkpoint, build_on_meta, load_strict, with_prefix
from ltx2stream.models.transformer.config import SECTION, TransformerConfig
from ltx2stream.models.transformer.model import LTXAVModel

log = logging.getLogger(__name__)

TRANSFORMER_PREFIX = "model.diffusion_model."
CONNECTOR_PREFIXES = (
    TRANSFORMER_PREFIX + "video_embeddings_connector.",
    TRANSFORMER_PREFIX + "audio_embeddings_connector.",
)


def load_transformer(
    ckpt: Checkpoint, *, dtype: torch.dtype = torch.bfloat16, device: torch.device | str = "cpu"
) -> LTXAVModel:
    """Build ``LTXAVModel`` from ``ckpt.section('transformer')`` on meta and load its weights strictly."""
    cfg = TransformerConfig.from_metadata(ckpt.section(SECTION))
    model = build_on_meta(lambda: LTXAVModel(cfg))
    state = ckpt.read(TRANSFORMER_PREFIX, dtype=dtype, exclude=CONNECTOR_PREFIXES)
    log.info(
        "transformer: %d tensors, %d layers, video %dx%d, audio %dx%d, %s",
        len(state),
        cfg.num_layers,
        cfg.num_attention_heads,
        cfg.attention_head_dim,
        cfg.audio_num_attention_heads,
        cfg.audio_attention_head_dim,
        "LTX-2.3 (gated, cross-attention AdaLN)" if cfg.cross_attention_adaln else "LTX-2",
    )
    return load_strict(model, state, what="transformer", device=device, dtype=dtype)


def transformer_checkpoint_tensors(model: LTXAVModel) -> dict[str, torch.Tensor]:
    """State dict under the official ``model.diffusion_model.`` prefix."""
    return with_prefix(TRANSFORMER_PREFIX, model.state_dict())
