"""SequenceParallelTransformer: one DiT forward split over the ranks of a process group by video tokens.

Per forward (the official multi-GPU scheme, ``docs/deploy.md`` and spec §2.2, on plain collectives):

1. The video ``Modality`` is padded with zero tokens (latent, timesteps, positions: zeros) to a multiple of the
   world size P and sliced: rank r keeps tokens ``[r*S, (r+1)*S)``, S = T_pad / P. Audio and the text contexts are
   replicated (every rank computes the audio stream in full, identically).
2. Every block's attentions that involve video tokens run through the Ulysses cores of
   :mod:`ltx2stream.parallel.attention` (installed on ``Attention.core`` for the duration of the call): video
   self-attention (``attn1``, full-sequence mask inside the core; padding tokens are never keys), the video keys/
   values of ``video_to_audio_attn``, and the video queries of the text cross-attention (``attn2``) and of
   ``audio_to_video_attn``. So every attention runs over all T video tokens per head, as in one process.
   Everything else (FFNs, AdaLN, RoPE from own positions, projections, norms) is per token and local.
3. The video velocities are gathered in rank order and the padding rows dropped.

Every rank returns the same tensors, equal to the single-process forward (bit for bit on CPU in the tests; they
hold it to 1e-6 relative in fp32, the issue's bound).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from ltx2stream import codes
from ltx2stream.errors import ConfigError
from ltx2stream.models.transformer.attention import Attention, local_attention
from ltx2stream.models.transformer.modality import Modality, Perturbations, attention_mask_bias
from ltx2stream.models.transformer.model import LTXAVModel
from ltx2stream.models.transformer.precompute import StageCache, cached
from ltx2stream.parallel.attention import (
    TokenLayout,
    UlyssesAttention,
    UlyssesKVAttention,
    _Layout,
)
from ltx2stream.parallel.collectives import gather_tokens

log = logging.getLogger(__name__)

# Modality fields by how they are distributed: token axis of per-token fields; replicated fields.
TOKEN_AXES = {"latent": 1, "timesteps": 1, "positions": 2, "keyframes_mask": 1}
REPLICATED = frozenset({"sigma", "context"})
FULL_MASK = "attention_mask"  # applied in full inside the self-attention core


class SequenceParallelTransformer(nn.Module):
    """Wraps an ``LTXAVModel`` with the same call signature; module paths (``get_submodule``, LoRA targets) are
    the wrapped model's. With a group of one rank it is the model itself."""

    def __init__(self, model: LTXAVModel, group: Any = None, *, exact_queries: bool = True) -> None:
        """``exact_queries``: also run the text cross-attention and the audio->video attention over all video
        queries per head (2 more all-to-alls each per block), which keeps the result bit-identical to one process;
        False computes them on the local queries as the official code does (cheaper, equal up to rounding)."""
        super().__init__()
        self.model = model
        self.group = group
        self.exact_queries = exact_queries
        self.world = dist.get_world_size(group) if dist.is_initialized() else 1
        self.rank = dist.get_rank(group) if dist.is_initialized() else 0
        cfg = model.config
        for name, heads in (
            ("num_attention_heads", cfg.num_attention_heads),
            ("audio_num_attention_heads", cfg.audio_num_attention_heads),
        ):
            if heads % self.world:
                raise ConfigError(
                    f"sequence parallelism over {self.world} ranks needs {name} divisible by {self.world}; "
                    f"the model has {heads}",
                    code=codes.CONFIG_SP_HEADS,
                )
        self._layout = _Layout()
        self._self_core = UlyssesAttention(self._layout, self.rank, self.world, group, sharded_keys=True)
        self._kv_core = UlyssesKVAttention(self._layout, self.rank, self.world, group)
        self._query_core = UlyssesAttention(self._layout, self.rank, self.world, group, sharded_keys=False)

    @property
    def config(self) -> Any:
        return self.model.config

    @property
    def dtype(self) -> torch.dtype:
        return self.model.dtype

    @property
    def num_blocks(self) -> int:
        return self.model.num_blocks

    def get_submodule(self, target: str) -> nn.Module:
        return self.model.get_submodule(target)

    def forward(
        self,
        video: Modality | None,
        audio: Modality | None,
        perturbations: Perturbations | None = None,
        *,
        cache: StageCache | None = None,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """As ``LTXAVModel.forward``; the video tokens are split over the group. With the stage's ``cache`` the
        shard's positions (so its RoPE tables) and the mask bias are computed once per stage."""
        if self.world == 1 or video is None:
            return self.model(video, audio, perturbations, cache=cache)
        tokens = video.latent.shape[1]
        padded = -(-tokens // self.world) * self.world
        full_mask = video.attention_mask
        mask = (
            cached(cache, "sp_mask", (full_mask,), lambda: attention_mask_bias(full_mask, self.model.dtype))
            if full_mask is not None
            else None
        )
        local = shard_modality(video, self.rank, self.world, padded)
        positions = video.positions
        local = dataclasses.replace(
            local,
            positions=cached(cache, "sp_positions", (positions,), lambda: local.positions),
        )
        with self._installed(TokenLayout(tokens, padded, mask)):
            v_local, a_out = self.model(local, audio, perturbations, cache=cache)
        assert v_local is not None
        v_out = gather_tokens(v_local, self.world, self.group)[:, :tokens]
        return v_out, a_out

    @contextmanager
    def _installed(self, layout: TokenLayout) -> Iterator[None]:
        blocks = list(self.model.transformer_blocks)
        self._layout.current = layout
        cores: dict[str, Any] = {"attn1": self._self_core, "video_to_audio_attn": self._kv_core}
        if self.exact_queries:
            cores |= {"attn2": self._query_core, "audio_to_video_attn": self._query_core}
        for block in blocks:
            for name, core in cores.items():
                _set_core(getattr(block, name), core)
        try:
            yield
        finally:
            self._layout.current = None
            for block in blocks:
                for name in cores:
                    _set_core(getattr(block, name), local_attention)


def _set_core(module: Any, core: Any) -> None:
    assert isinstance(module, Attention)
    module.core = core


def shard_modality(m: Modality, rank: int, world: int, padded: int) -> Modality:
    """Rank ``rank``'s token chunk of ``m`` after zero-padding to ``padded`` tokens (a multiple of ``world``)."""
    chunk = padded // world
    values: dict[str, Any] = {}
    for f in dataclasses.fields(m):
        value = getattr(m, f.name)
        if value is None or f.name in REPLICATED:
            values[f.name] = value
        elif f.name == FULL_MASK:
            values[f.name] = None
        elif f.name in TOKEN_AXES:
            values[f.name] = _pad_slice(value, TOKEN_AXES[f.name], padded, rank * chunk, chunk)
        else:
            raise ConfigError(
                f"sequence parallelism does not know how to split Modality.{f.name}; declare it in "
                f"ltx2stream/parallel/transformer.py (TOKEN_AXES or REPLICATED)",
                code=codes.CONFIG_SP_FIELD,
            )
    return Modality(**values)


def _pad_slice(t: torch.Tensor, axis: int, padded: int, start: int, length: int) -> torch.Tensor:
    extra = padded - t.shape[axis]
    if extra:
        shape = list(t.shape)
        shape[axis] = extra
        t = torch.cat([t, t.new_zeros(shape)], dim=axis)
    return t.narrow(axis, start, length).contiguous()  # strided views take other (ulp-different) kernels
