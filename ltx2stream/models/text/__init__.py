"""Text path: Gemma 3 hidden states -> feature extractor (LTX-2 V1 / LTX-2.3 V2) -> video and audio embeddings
connectors with learnable-register substitution, behind a caching ``PromptEncoder``."""

from ltx2stream.models.text.config import ConnectorConfig, TextPathConfig, tiny_text_config
from ltx2stream.models.text.connector import Embeddings1DConnector, substitute_registers
from ltx2stream.models.text.encoder import CacheInfo, PromptEncoder, TextEmbeddings, TextProjection
from ltx2stream.models.text.features import FeatureExtractorV1, FeatureExtractorV2, build_feature_extractor
from ltx2stream.models.text.gemma import GemmaEncoder, Tokens, load_gemma
from ltx2stream.models.text.loading import (
    AUDIO_CONNECTOR_PREFIX,
    FEATURE_EXTRACTOR_PREFIX,
    TEXT_PATH_PREFIXES,
    VIDEO_CONNECTOR_PREFIX,
    load_text_path,
    load_text_projection,
    text_path_checkpoint_tensors,
    text_path_config,
)
from ltx2stream.models.text.tiny import build_tiny_tokenizer, tiny_text_projection, write_tiny_gemma

__all__ = [
    "AUDIO_CONNECTOR_PREFIX",
    "FEATURE_EXTRACTOR_PREFIX",
    "TEXT_PATH_PREFIXES",
    "VIDEO_CONNECTOR_PREFIX",
    "CacheInfo",
    "ConnectorConfig",
    "Embeddings1DConnector",
    "FeatureExtractorV1",
    "FeatureExtractorV2",
    "GemmaEncoder",
    "PromptEncoder",
    "TextEmbeddings",
    "TextPathConfig",
    "TextProjection",
    "Tokens",
    "build_feature_extractor",
    "build_tiny_tokenizer",
    "load_gemma",
    "load_text_path",
    "load_text_projection",
    "substitute_registers",
    "text_path_checkpoint_tensors",
    "text_path_config",
    "tiny_text_config",
    "tiny_text_projection",
    "write_tiny_gemma",
]
