"""What stays fixed over a denoising stage, computed at its first step and reused by every later one.

Within one stage (a fixed canvas, fixed prompt contexts, fixed weights) these inputs of a forward never change:
token positions, the attention mask, the text contexts. Everything derived only from them is the same at every
step, so ``LTXAVModel.forward(..., cache=StageCache())`` computes it once:

| entry | derived from | per forward without the cache |
|---|---|---|
| self-attention RoPE tables (video 3-D, audio 1-D) | positions | frequencies, angles, cos/sin, layout |
| A/V cross-attention RoPE tables (time axis) | positions | the same at the cross width |
| additive attention-mask bias | attention_mask | log / where over [B, T, T] |
| caption projection (LTX-2) | context | a 2-layer MLP over [B, L, D_ctx] |
| per-block text K and V (LTX-2; LTX-2.3 modulates its context per step) | projected context | 2 linears + k RMSNorm per block |

The values are produced by exactly the code a forward without the cache runs, on the same inputs, so a cached
forward is bit-identical to an uncached one (``tests/test_transformer_precompute.py``).

Entries are keyed by the *identity* of the input tensors. The cache holds those tensors, so an id cannot be
reused by another tensor while the cache lives. Rules for the caller (the denoising stage follows them):
one cache per stage; do not modify its input tensors in place while it lives; do not change the weights
while it lives (the refine LoRA is merged before stage 2 makes its cache). Text K/V cost memory
``layers × (D_video + D_audio) × 2 × L`` per prompt context (LTX-2 19B, L = 1024, bf16: about 1.2 GB per
context); ``StageCache(text_kv=False)`` keeps only the cheap entries.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TypeVar, cast

import torch

T = TypeVar("T")


class StageCache:
    """Memo of per-stage constants, keyed by an entry name and the identities of its input tensors."""

    def __init__(self, *, text_kv: bool = True) -> None:
        self.text_kv = text_kv
        self._entries: dict[tuple[Hashable, ...], tuple[tuple[torch.Tensor, ...], object]] = {}
        self.hits = 0
        self.misses = 0

    def get(self, name: Hashable, inputs: tuple[torch.Tensor, ...], compute: Callable[[], T]) -> T:
        """The cached value for (name, inputs), computing it with ``compute()`` on first use."""
        key = (name, *(id(t) for t in inputs))
        entry = self._entries.get(key)
        if entry is not None:
            self.hits += 1
            return cast(T, entry[1])
        self.misses += 1
        value = compute()
        self._entries[key] = (inputs, value)  # holding the inputs keeps their ids from being recycled
        return value

    def __len__(self) -> int:
        return len(self._entries)


def cached(
    cache: StageCache | None, name: Hashable, inputs: tuple[torch.Tensor, ...], compute: Callable[[], T]
) -> T:
    """``compute()`` through ``cache`` when there is one, else directly."""
    return compute() if cache is None else cache.get(name, inputs, compute)
