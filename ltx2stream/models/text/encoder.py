"""Prompt -> DiT text contexts, with an LRU cache so a repeated prompt costs nothing.

``TextProjection`` = feature extractor + video connector + audio connector (the checkpoint-held part);
``PromptEncoder`` = Gemma + TextProjection + cache. Outputs are the connector outputs: LTX-2 contexts
[B, L, caption_channels] for both streams (the DiT's caption projections follow), LTX-2.3 [B, L, video inner]
and [B, L, audio inner]. The mask is all ones: padded positions were replaced by learnable registers.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ltx2stream import codes
from ltx2stream.errors import InputError
from ltx2stream.models.text.config import TextPathConfig
from ltx2stream.models.text.connector import Embeddings1DConnector
from ltx2stream.models.text.features import build_feature_extractor
from ltx2stream.models.text.gemma import GemmaEncoder


@dataclass(frozen=True)
class TextEmbeddings:
    """Text contexts for the DiT: ``video`` [B, L, Dv], ``audio`` [B, L, Da], ``mask`` [B, L] int64 (all ones).

    Tensors may be shared with the prompt cache: treat them as read-only.
    """

    video: torch.Tensor
    audio: torch.Tensor
    mask: torch.Tensor

    def __len__(self) -> int:
        return self.video.shape[0]

    @staticmethod
    def cat(items: Sequence[TextEmbeddings]) -> TextEmbeddings:
        if len(items) == 1:
            return items[0]
        return TextEmbeddings(
            *(torch.cat(parts, dim=0) for parts in zip(*(_fields(i) for i in items), strict=True))
        )

    def split(self) -> list[TextEmbeddings]:
        """One [1, ...] TextEmbeddings per batch row."""
        return [TextEmbeddings(*(t[i : i + 1] for t in _fields(self))) for i in range(len(self))]


def _fields(e: TextEmbeddings) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return e.video, e.audio, e.mask


class TextProjection(nn.Module):
    """Feature extractor + connectors: Gemma hidden states [B, T, D, L+1] + mask [B, T] -> TextEmbeddings."""

    def __init__(self, cfg: TextPathConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.feature_extractor = build_feature_extractor(cfg)
        self.video_connector = Embeddings1DConnector(cfg.video_connector)
        self.audio_connector = Embeddings1DConnector(cfg.audio_connector)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> TextEmbeddings:
        expected = (self.cfg.caption_channels, self.cfg.gemma_hidden_states)
        if hidden.ndim != 4 or tuple(hidden.shape[2:]) != expected or hidden.shape[:2] != mask.shape:
            raise InputError(
                f"text projection expects hidden states [B, T, {expected[0]}, {expected[1]}] and mask [B, T],"
                f" got {tuple(hidden.shape)} and {tuple(mask.shape)}",
                code=codes.INPUT_TEXT_SHAPE,
            )
        video, audio = self.feature_extractor(hidden, mask)
        video = self.video_connector(video, mask)
        audio = self.audio_connector(audio, mask)
        ones = torch.ones(video.shape[:2], dtype=torch.int64, device=video.device)  # no pads after registers
        return TextEmbeddings(video, audio, ones)


@dataclass(frozen=True)
class CacheInfo:
    hits: int
    misses: int
    size: int
    capacity: int
    gemma_forwards: int


class PromptEncoder:
    """Gemma -> feature extractor -> connectors, with an LRU cache of encoded prompts (keyed by stripped text)."""

    def __init__(self, gemma: GemmaEncoder, projection: TextProjection, *, cache_size: int = 32) -> None:
        if cache_size < 0:
            raise InputError(f"cache_size={cache_size} must be >= 0", code=codes.INPUT_CACHE_SIZE)
        self.gemma = gemma
        self.projection = projection.eval().requires_grad_(False)
        self.cache_size = cache_size
        self._cache: OrderedDict[str, TextEmbeddings] = OrderedDict()
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0

    @property
    def config(self) -> TextPathConfig:
        return self.projection.cfg

    def encode_one(self, prompt: str) -> TextEmbeddings:
        return self.encode([prompt])

    def encode(self, prompts: Sequence[str]) -> TextEmbeddings:
        """Encode a batch; cached prompts are reused, the others go through Gemma in one batch."""
        keys = _check_prompts(prompts)
        with self._lock:
            found = {k: self._lookup(k) for k in dict.fromkeys(keys)}
            todo = [k for k, v in found.items() if v is None]
            if todo:
                for key, emb in zip(todo, self._run(todo).split(), strict=True):
                    found[key] = emb
                    self._store(key, emb)
            return TextEmbeddings.cat([found[k] for k in keys])  # type: ignore[misc]

    def cache_info(self) -> CacheInfo:
        return CacheInfo(
            self._hits, self._misses, len(self._cache), self.cache_size, self.gemma.forward_calls
        )

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()

    @torch.no_grad()
    def _run(self, prompts: list[str]) -> TextEmbeddings:
        tokens = self.gemma.tokenize(prompts)
        hidden = self.gemma.hidden_states(tokens)
        param = next(self.projection.parameters())
        return self.projection(hidden.to(param.device, param.dtype), tokens.mask.to(param.device))

    def _lookup(self, key: str) -> TextEmbeddings | None:
        emb = self._cache.get(key)
        if emb is None:
            self._misses += 1
            return None
        self._hits += 1
        self._cache.move_to_end(key)
        return emb

    def _store(self, key: str, emb: TextEmbeddings) -> None:
        if self.cache_size == 0:
            return
        self._cache[key] = emb
        self._cache.move_to_end(key)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)


def _check_prompts(prompts: Sequence[str]) -> list[str]:
    """Stripped prompts; a bare string or an empty batch is an InputError."""
    if isinstance(prompts, str) or not isinstance(prompts, Sequence):
        raise InputError(
            "prompts must be a sequence of strings (use encode_one for a single prompt)",
            code=codes.INPUT_PROMPTS,
        )
    if not prompts:
        raise InputError("at least one prompt is needed", code=codes.INPUT_PROMPTS)
    bad = [type(p).__name__ for p in prompts if not isinstance(p, str)]
    if bad:
        raise InputError(f"prompts must be strings, got {bad}", code=codes.INPUT_PROMPTS)
    return [p.strip() for p in prompts]
