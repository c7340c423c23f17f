"""Multi-head attention of the DiT (spec §1.6) and its feed-forward.

``to_q/to_k/to_v`` (bias) -> q/k RMSNorm across all heads (learnable weight) -> RoPE on q (``pe``) and k
(``k_pe``, else ``pe``) -> SDPA (scale 1/sqrt(d), optional additive mask) -> optional LTX-2.3 per-head gate
``2*sigmoid(to_gate_logits(x))`` -> ``to_out.0``.

Skipping the attention (STG "skip self-attention", official behaviour since the LTX-2.3 release) replaces the
attention map by the identity: the output is the value projection itself, then gate and ``to_out`` as usual.

The step from projected q/k/v to the per-head attention output is ``Attention.core`` (an ``AttentionCore``,
default :func:`local_attention`); sequence parallelism (``ltx2stream/parallel/``) swaps it for a core that
exchanges tokens for heads between ranks around the same local attention. Nothing else changes.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import nn

from ltx2stream.models.transformer.rope import RopeTable, apply_rope


class AttentionCore(Protocol):
    """q [B, T, H*d], k and v [B, S, H*d] (RMS-normed, RoPE applied), additive mask [B, 1, T, S] or None
    -> [B, T, H*d]."""

    def __call__(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, heads: int
    ) -> torch.Tensor: ...


def local_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, heads: int
) -> torch.Tensor:
    """Scaled dot-product attention over ``heads`` heads (scale 1/sqrt(d)); shapes as ``AttentionCore``."""
    # Plain views instead of einops here (the hottest reshape of the model; the same strides either way).
    q, k, v = (t.unflatten(-1, (heads, -1)).transpose(1, 2) for t in (q, k, v))  # b t (h d) -> b h t d
    out = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return out.transpose(1, 2).flatten(2)  # b h t d -> b t (h d)


class Attention(nn.Module):
    """Attention with official key names (``to_q``, ``to_k``, ``to_v``, ``to_out.0``, ``q_norm``, ``k_norm``,
    ``to_gate_logits``)."""

    def __init__(
        self,
        query_dim: int,
        heads: int,
        dim_head: int,
        *,
        context_dim: int | None = None,
        norm_eps: float = 1e-6,
        gated: bool = False,
    ) -> None:
        super().__init__()
        inner = heads * dim_head
        context_dim = query_dim if context_dim is None else context_dim
        self.heads = heads
        self.dim_head = dim_head
        self.q_norm = nn.RMSNorm(inner, eps=norm_eps)
        self.k_norm = nn.RMSNorm(inner, eps=norm_eps)
        self.to_q = nn.Linear(query_dim, inner)
        self.to_k = nn.Linear(context_dim, inner)
        self.to_v = nn.Linear(context_dim, inner)
        self.to_gate_logits = nn.Linear(query_dim, heads) if gated else None
        self.to_out = nn.Sequential(nn.Linear(inner, query_dim), nn.Identity())
        self.core: AttentionCore = local_attention

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        *,
        pe: RopeTable | None = None,
        k_pe: RopeTable | None = None,
        mask: torch.Tensor | None = None,
        skip_attention: bool = False,
        kv: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """x [B, T, Dq], context [B, S, Dc] (default x), additive mask [B, 1, T, S] -> [B, T, Dq].

        ``kv``: ``key_value(context)`` computed beforehand (a stage-constant context); RoPE is then not applied
        to the keys, so it is only for attention without ``pe``.
        """
        assert kv is None or pe is None, "precomputed keys carry no RoPE"
        source = x if context is None else context
        v = self.to_v(source) if kv is None else kv[1]
        if skip_attention:
            out = v  # identity attention map (requires S == T, i.e. self-attention)
        else:
            q = self.q_norm(self.to_q(x))
            k = self.k_norm(self.to_k(source)) if kv is None else kv[0]
            if pe is not None:
                q = apply_rope(q, pe)
                k = apply_rope(k, pe if k_pe is None else k_pe)
            out = self.core(q, k, v, mask, self.heads)
        if self.to_gate_logits is not None:
            out = self._gate(x, out)
        return self.to_out(out)

    def key_value(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised keys and values of ``context`` [B, S, Dc], each [B, S, H*d] (no RoPE)."""
        return self.k_norm(self.to_k(context)), self.to_v(context)

    def _gate(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        assert self.to_gate_logits is not None
        gates = 2.0 * torch.sigmoid(self.to_gate_logits(x))  # [B, T, H]
        per_head = out.unflatten(-1, (self.heads, -1))  # b t (h d) -> b t h d
        return (per_head * gates[..., None]).flatten(2)  # [B, T, H, d] -> [B, T, H*d]


class GELUProjection(nn.Module):
    """Linear followed by tanh-approximated GELU; key ``proj``."""

    def __init__(self, dim_in: int, dim_out: int, *, bias: bool = True) -> None:
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.gelu(self.proj(x), approximate="tanh")


class FeedForward(nn.Module):
    """``net.0.proj`` (D -> 4D, GELU-tanh), ``net.1`` Identity, ``net.2`` (4D -> D); LTX-2.5 drops the biases."""

    def __init__(self, dim: int, mult: int = 4, *, bias: bool = True) -> None:
        super().__init__()
        self.net = nn.Sequential(
            GELUProjection(dim, dim * mult, bias=bias), nn.Identity(), nn.Linear(dim * mult, dim, bias=bias)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CaptionProjection(nn.Module):
    """LTX-2 only: connector output (caption_channels) -> inner dim: ``linear_1``, GELU-tanh, ``linear_2``."""

    def __init__(self, in_features: int, hidden: int) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(in_features, hidden)
        self.act_1 = nn.GELU(approximate="tanh")
        self.linear_2 = nn.Linear(hidden, hidden)

    def forward(self, caption: torch.Tensor) -> torch.Tensor:
        return self.linear_2(self.act_1(self.linear_1(caption)))
