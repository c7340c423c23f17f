"""Attention cores of the sequence-parallel DiT (installed on ``Attention.core`` by the transformer wrapper).

* :class:`UlyssesAttention` (sharded video queries): q goes tokens->heads, so each rank attends for all T video
  queries of its H/P heads, and the output goes back heads->tokens. The keys/values are either the video tokens
  too (``attn1``, self-attention: they go tokens->heads as well, with the full-sequence mask; padding tokens are
  cut before the attention, so they are never keys, and refilled with zeros after it) or replicated (text
  cross-attention ``attn2``, ``audio_to_video_attn``: cut to the rank's heads).
* :class:`UlyssesKVAttention` (``video_to_audio_attn``): the audio queries are replicated, so each rank keeps its
  H/P heads of q; the video keys/values go through ``tokens_to_heads``; the per-head outputs are joined with an
  all-gather over heads, so every rank ends with the full, identical audio update.

Both compute exactly the per-head attention a single process computes (attention over all T queries and all
keys of a head does not depend on how many heads run beside it); only the bytes move.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ltx2stream.models.transformer.attention import local_attention
from ltx2stream.parallel.collectives import gather_heads, heads_to_tokens, tokens_to_heads


@dataclass(frozen=True)
class TokenLayout:
    """How the video tokens of one forward are laid out over the group."""

    tokens: int  # valid tokens T
    padded: int  # T rounded up to a multiple of the world size
    mask: torch.Tensor | None  # additive full-sequence self-attention mask [B, 1, T, T], or None


class _Layout:
    """The layout of the forward in progress (set by the wrapper around each model call)."""

    def __init__(self) -> None:
        self.current: TokenLayout | None = None

    def get(self) -> TokenLayout:
        if self.current is None:
            raise RuntimeError(
                "sequence-parallel attention called outside SequenceParallelTransformer.forward"
            )
        return self.current


class UlyssesAttention:
    """Video queries sharded by tokens, attending over all T of them per head group, exactly as one process does
    (CPU attention kernels do not give row-independent results for different query counts). ``sharded_keys``:
    the keys/values are the video tokens too (self-attention, masked by the layout's full-sequence mask);
    otherwise they are replicated (text, audio) and cut to this rank's heads."""

    def __init__(self, layout: _Layout, rank: int, world: int, group: Any, *, sharded_keys: bool) -> None:
        self.layout, self.rank, self.world, self.group = layout, rank, world, group
        self.sharded_keys = sharded_keys
        self.calls = 0  # attention calls served (tests check that the split really happened)

    def __call__(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, heads: int
    ) -> torch.Tensor:
        """q [B, S, H*d] own tokens; k and v [B, S, H*d] own tokens (sharded keys) or [B, L, H*d] full
        -> [B, S, H*d]. ``mask`` must be None: the self-attention mask comes with the layout, cross-attention
        from video queries is unmasked."""
        assert mask is None, "the wrapper passes the self-attention mask through its layout"
        lay, world, group = self.layout.get(), self.world, self.group
        self.calls += 1
        t = lay.tokens
        q_all = tokens_to_heads(q, heads, world, group)[:, :t]  # [B, T, (H/P)*d]
        if self.sharded_keys:
            k_own, v_own = (tokens_to_heads(x, heads, world, group)[:, :t] for x in (k, v))
            bias = lay.mask
        else:
            k_own, v_own = (own_heads(x, self.rank, world) for x in (k, v))
            bias = None
        out = local_attention(q_all, k_own, v_own, bias, heads // world)  # [B, T, (H/P)*d]
        if lay.padded > t:
            out = torch.nn.functional.pad(out, (0, 0, 0, lay.padded - t))  # zero rows for padding tokens
        return heads_to_tokens(out, heads, world, group)


class UlyssesKVAttention:
    """Replicated queries (audio) attending to sharded keys/values (video)."""

    def __init__(self, layout: _Layout, rank: int, world: int, group: Any) -> None:
        self.layout, self.rank, self.world, self.group = layout, rank, world, group
        self.calls = 0

    def __call__(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, heads: int
    ) -> torch.Tensor:
        """q [B, Tq, H*d] full, k and v [B, S, H*d] own tokens -> [B, Tq, H*d] (same on every rank)."""
        assert mask is None, "cross-attention to video keys is unmasked"
        lay, world, group = self.layout.get(), self.world, self.group
        self.calls += 1
        q_own = own_heads(q, self.rank, world)  # [B, Tq, (H/P)*d]
        k_all, v_all = (tokens_to_heads(x, heads, world, group)[:, : lay.tokens] for x in (k, v))
        out = local_attention(q_own, k_all, v_all, None, heads // world)  # [B, Tq, (H/P)*d]
        return gather_heads(out, world, group)


def own_heads(x: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """x [B, L, H*d] (every head) -> [B, L, (H/P)*d]: head group ``rank`` of a replicated tensor."""
    width = x.shape[-1] // world
    return x[..., rank * width : (rank + 1) * width]
