"""Byte-moving collectives of Ulysses sequence parallelism on plain ``torch.distributed`` (gloo on CPU, NCCL on GPU).

Rank r of a group of P holds the contiguous token chunk ``[r*S, (r+1)*S)`` of a sequence of P*S tokens. A tensor
``[B, S, H*d]`` (all heads, own tokens) becomes ``[B, P*S, (H/P)*d]`` (all tokens, head group r) and back with one
``all_to_all_single`` each way. Chunk j of the send buffer goes to rank j, chunk i of the receive buffer came from
rank i, so the leading axis of both buffers is the peer rank. Nothing is added or reordered numerically.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from einops import rearrange


def tokens_to_heads(x: torch.Tensor, heads: int, world: int, group: Any = None) -> torch.Tensor:
    """x [B, S, H*d] (own tokens, every head) -> [B, P*S, (H/P)*d] (every token, own head group)."""
    send = rearrange(x, "b s (p h d) -> p s b h d", p=world, h=heads // world).contiguous()
    recv = torch.empty_like(send)  # [P, S, B, H/P, d], block i = rank i's tokens for my heads
    dist.all_to_all_single(recv, send, group=group)
    return rearrange(recv, "p s b h d -> b (p s) (h d)")


def heads_to_tokens(y: torch.Tensor, heads: int, world: int, group: Any = None) -> torch.Tensor:
    """y [B, P*S, (H/P)*d] (every token, own head group) -> [B, S, H*d] (own tokens, every head)."""
    send = rearrange(y, "b (p s) (h d) -> p s b h d", p=world, h=heads // world).contiguous()
    recv = torch.empty_like(send)  # [P, S, B, H/P, d], block i = my tokens for rank i's heads
    dist.all_to_all_single(recv, send, group=group)
    return rearrange(recv, "p s b h d -> b s (p h d)")


def gather_tokens(x: torch.Tensor, world: int, group: Any = None) -> torch.Tensor:
    """x [B, S, C] (own tokens) -> [B, P*S, C] on every rank, in rank order."""
    send = rearrange(x, "b s c -> s b c").contiguous()
    recv = send.new_empty((world * send.shape[0], *send.shape[1:]))  # [P*S, B, C]
    _all_gather(recv, send, group)
    return rearrange(recv, "t b c -> b t c")


def gather_heads(y: torch.Tensor, world: int, group: Any = None) -> torch.Tensor:
    """y [B, T, (H/P)*d] (own head group) -> [B, T, H*d] on every rank, head groups in rank order."""
    send = y.contiguous()
    recv = send.new_empty((world * send.shape[0], *send.shape[1:]))  # [P*B, T, (H/P)*d]
    _all_gather(recv, send, group)
    return rearrange(recv, "(p b) t c -> b t (p c)", p=world)


def _all_gather(recv: torch.Tensor, send: torch.Tensor, group: Any) -> None:
    """``all_gather_into_tensor`` (named ``all_gather_single`` from torch 2.13 on): concatenation along dim 0."""
    gather = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor
    gather(recv, send, group=group)
