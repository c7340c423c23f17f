"""The LTX-2 / LTX-2.3 audio-video DiT: config, positions, model, loading, tiny presets."""

from ltx2stream.models.transformer.config import TransformerConfig
from ltx2stream.models.transformer.loading import (
    CONNECTOR_PREFIXES,
    TRANSFORMER_PREFIX,
    load_transformer,
    transformer_checkpoint_tensors,
)
from ltx2stream.models.transformer.modality import Modality, Perturbations, attention_mask_bias, to_denoised
from ltx2stream.models.transformer.model import LTXAVModel
from ltx2stream.models.transformer.positions import (
    audio_positions,
    patchify_audio,
    patchify_video,
    unpatchify_audio,
    unpatchify_video,
    video_positions,
)
from ltx2stream.models.transformer.precompute import StageCache
from ltx2stream.models.transformer.tiny import (
    randomize_,
    tiny_modalities,
    tiny_transformer,
    tiny_transformer_config,
)

__all__ = [
    "CONNECTOR_PREFIXES",
    "TRANSFORMER_PREFIX",
    "LTXAVModel",
    "Modality",
    "Perturbations",
    "StageCache",
    "TransformerConfig",
    "attention_mask_bias",
    "audio_positions",
    "load_transformer",
    "patchify_audio",
    "patchify_video",
    "randomize_",
    "tiny_modalities",
    "tiny_transformer",
    "tiny_transformer_config",
    "to_denoised",
    "transformer_checkpoint_tensors",
    "unpatchify_audio",
    "unpatchify_video",
    "video_positions",
]
