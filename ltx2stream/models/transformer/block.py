"""One dual-stream block of the DiT (``BasicAVTransformerBlock``, spec §1.5).

Order (all residual, ``rms`` = weightless RMSNorm):
1. video self-attention (3-D RoPE), modulated by table rows 0-2 (shift, scale, gate);
2. video text cross-attention: LTX-2 ``attn2(rms(x), ctx)``; LTX-2.3 query modulated by rows 6-8 and context
   by the prompt table (shift_kv, scale_kv), output gated;
3./4. the same for audio (1-D RoPE);
5. A/V cross-attention, both directions from one snapshot (vx0, ax0) taken before either updates. The A/V
   tables have rows (scale_a2v, shift_a2v, scale_v2a, shift_v2a, gate) — scale before shift here;
6./7. video / audio FFN modulated by rows 3-5.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from ltx2stream.models.transformer.adaln import ada_all, ada_rows, modulate, rms
from ltx2stream.models.transformer.attention import Attention, FeedForward
from ltx2stream.models.transformer.config import TransformerConfig
from ltx2stream.models.transformer.precompute import StageCache
from ltx2stream.models.transformer.rope import RopeTable

SHIFT_SCALE_GATE_MSA = slice(0, 3)
SHIFT_SCALE_GATE_MLP = slice(3, 6)
SHIFT_SCALE_GATE_Q = slice(6, 9)  # LTX-2.3 text cross-attention
SCALE_SHIFT_A2V = slice(0, 2)  # rows of the A/V tables
SCALE_SHIFT_V2A = slice(2, 4)
AV_SCALE_SHIFT_ROWS = 4  # row 4 = gate, conditioned by the gate AdaLN


@dataclass(frozen=True)
class StreamArgs:
    """One stream's per-call tensors as the blocks see them (built once per forward by the model)."""

    x: torch.Tensor  # [B, T, D] hidden tokens
    context: torch.Tensor  # [B, L, D] text context at the stream's width
    modulation: torch.Tensor  # [B, T, n*D] adaln_single output (n = 6 or 9)
    pe: RopeTable  # self-attention RoPE
    self_mask: torch.Tensor | None = None  # additive [B, 1, T, T]
    prompt_modulation: torch.Tensor | None = None  # [B, 1, 2*D] (LTX-2.3; None without prompt_adaln_single)
    cross_pe: RopeTable | None = None  # A/V RoPE (time axis only)
    cross_scale_shift: torch.Tensor | None = None  # [B, T, 4*D]
    cross_gate: torch.Tensor | None = None  # [B, 1, D]
    stream: str = "video"  # "video" | "audio" (names the stage-cache entries)
    cache: StageCache | None = None  # set when the text K/V are cached for the stage


@dataclass(frozen=True)
class BlockSkips:
    """Which parts of this block are perturbed (whole batch)."""

    video_self_attn: bool = False
    audio_self_attn: bool = False
    a2v: bool = False
    v2a: bool = False


class _Stream(NamedTuple):
    attn1: Attention
    attn2: Attention
    ff: FeedForward
    table: nn.Parameter
    prompt_table: nn.Parameter | None


def _table(rows: int, dim: int) -> nn.Parameter:
    """A modulation table; the random values only matter for freshly built (test) models."""
    return nn.Parameter(torch.randn(rows, dim) / dim**0.5)


class BasicAVTransformerBlock(nn.Module):
    """Video + audio streams with text and A/V cross-attention; attribute names = official keys."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        vd, ad, heads, eps = cfg.video_inner_dim, cfg.audio_inner_dim, cfg.num_attention_heads, cfg.norm_eps
        gated, rows = cfg.apply_gated_attention, cfg.adaln_coefficient
        vdh, adh, aheads = cfg.attention_head_dim, cfg.audio_attention_head_dim, cfg.audio_num_attention_heads
        self.norm_eps = eps
        self.cross_attention_adaln = cfg.cross_attention_adaln
        self.attn1 = Attention(vd, heads, vdh, norm_eps=eps, gated=gated)
        self.attn2 = Attention(vd, heads, vdh, context_dim=cfg.cross_attention_dim, norm_eps=eps, gated=gated)
        self.ff = FeedForward(vd, bias=cfg.ff_bias)
        self.scale_shift_table = _table(rows, vd)
        self.audio_attn1 = Attention(ad, aheads, adh, norm_eps=eps, gated=gated)
        self.audio_attn2 = Attention(
            ad, aheads, adh, context_dim=cfg.audio_cross_attention_dim, norm_eps=eps, gated=gated
        )
        self.audio_ff = FeedForward(ad, bias=cfg.audio_ff_bias)
        self.audio_scale_shift_table = _table(rows, ad)
        # A/V cross-attention runs at the audio head layout in both directions.
        self.audio_to_video_attn = Attention(vd, aheads, adh, context_dim=ad, norm_eps=eps, gated=gated)
        self.video_to_audio_attn = Attention(ad, aheads, adh, context_dim=vd, norm_eps=eps, gated=gated)
        self.scale_shift_table_a2v_ca_audio = _table(5, ad)
        self.scale_shift_table_a2v_ca_video = _table(5, vd)
        if cfg.cross_attention_adaln:
            self.prompt_scale_shift_table = _table(2, vd)
            self.audio_prompt_scale_shift_table = _table(2, ad)

    def _stream(self, audio: bool) -> _Stream:
        p = "audio_" if audio else ""
        return _Stream(
            getattr(self, f"{p}attn1"),
            getattr(self, f"{p}attn2"),
            getattr(self, f"{p}ff"),
            getattr(self, f"{p}scale_shift_table"),
            getattr(self, f"{p}prompt_scale_shift_table", None),
        )

    def forward(
        self, video: StreamArgs | None, audio: StreamArgs | None, skips: BlockSkips = BlockSkips()
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Returns the updated hidden tokens (vx, ax); a stream that is None stays None."""
        vm, am = self._stream(False), self._stream(True)
        vrows = ada_all(vm.table, video.modulation) if video is not None else ()  # table rows + modulation
        arows = ada_all(am.table, audio.modulation) if audio is not None else ()
        vx = self._self_and_text(vm, video, vrows, skips.video_self_attn) if video is not None else None
        ax = self._self_and_text(am, audio, arows, skips.audio_self_attn) if audio is not None else None
        if video is not None and audio is not None:
            assert vx is not None and ax is not None
            vx, ax = self._audio_video(video, audio, vx, ax, skips)
        vx = self._feed_forward(vm, vrows, vx) if video is not None else None
        ax = self._feed_forward(am, arows, ax) if audio is not None else None
        return vx, ax

    def _self_and_text(
        self, m: _Stream, args: StreamArgs, rows: tuple[torch.Tensor, ...], skip_self: bool
    ) -> torch.Tensor:
        eps = self.norm_eps
        shift, scale, gate = rows[SHIFT_SCALE_GATE_MSA]
        attn = m.attn1(
            modulate(rms(args.x, eps), scale, shift),
            pe=args.pe,
            mask=args.self_mask,
            skip_attention=skip_self,
        )
        x = args.x + attn * gate
        normed = rms(x, eps)
        if not self.cross_attention_adaln:  # the context is fixed for the stage: so are its K and V
            kv = self._stage_text_kv(m, args, lambda: args.context)
            return x + m.attn2(normed, context=args.context, kv=kv)
        assert m.prompt_table is not None
        shift_q, scale_q, gate_q = rows[SHIFT_SCALE_GATE_Q]
        query = modulate(normed, scale_q, shift_q)
        if args.prompt_modulation is not None:
            shift_kv, scale_kv = ada_rows(m.prompt_table, args.prompt_modulation, slice(0, 2))
            return x + m.attn2(query, context=modulate(args.context, scale_kv, shift_kv)) * gate_q
        table = m.prompt_table

        def static_context() -> torch.Tensor:  # use_prompt_adaln_single false: the static table alone
            shift_kv, scale_kv = table.to(device=x.device, dtype=x.dtype)[:, None, None].unbind(0)
            return modulate(args.context, scale_kv, shift_kv)

        kv = self._stage_text_kv(m, args, static_context)  # timestep-independent: fixed for the stage
        return x + m.attn2(query, context=static_context() if kv is None else args.context, kv=kv) * gate_q

    def _stage_text_kv(
        self, m: _Stream, args: StreamArgs, context: Callable[[], torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The text K/V of this block from the stage cache (None without one)."""
        if args.cache is None:
            return None
        key = ("text_kv", id(self), args.stream)
        return args.cache.get(key, (args.context,), lambda: m.attn2.key_value(context()))

    def _audio_video(
        self, video: StreamArgs, audio: StreamArgs, vx0: torch.Tensor, ax0: torch.Tensor, skips: BlockSkips
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if skips.a2v and skips.v2a:
            return vx0, ax0
        vx, ax = vx0, ax0
        vtable, atable = self.scale_shift_table_a2v_ca_video, self.scale_shift_table_a2v_ca_audio
        # Both directions read one snapshot: normalise it once and add each stream's table rows once.
        vn, an = rms(vx0, self.norm_eps), rms(ax0, self.norm_eps)
        vrows, arows = self._av_rows(vtable, video), self._av_rows(atable, audio)
        if not skips.a2v:  # query video, key/value audio
            q = modulate(vn, *vrows[SCALE_SHIFT_A2V])
            kv = modulate(an, *arows[SCALE_SHIFT_A2V])
            gate = self._av_gate(vtable, video)
            vx = vx0 + self.audio_to_video_attn(q, context=kv, pe=video.cross_pe, k_pe=audio.cross_pe) * gate
        if not skips.v2a:  # query audio, key/value video
            q = modulate(an, *arows[SCALE_SHIFT_V2A])
            kv = modulate(vn, *vrows[SCALE_SHIFT_V2A])
            gate = self._av_gate(atable, audio)
            ax = ax0 + self.video_to_audio_attn(q, context=kv, pe=audio.cross_pe, k_pe=video.cross_pe) * gate
        return vx, ax

    @staticmethod
    def _av_rows(table: nn.Parameter, args: StreamArgs) -> tuple[torch.Tensor, ...]:
        """(scale_a2v, shift_a2v, scale_v2a, shift_v2a) of one stream, each [B, T, D]."""
        assert args.cross_scale_shift is not None
        return ada_all(table[:AV_SCALE_SHIFT_ROWS], args.cross_scale_shift)

    @staticmethod
    def _av_gate(table: nn.Parameter, args: StreamArgs) -> torch.Tensor:
        assert args.cross_gate is not None
        (gate,) = ada_rows(table[AV_SCALE_SHIFT_ROWS:], args.cross_gate, slice(0, 1))
        return gate

    def _feed_forward(
        self, m: _Stream, rows: tuple[torch.Tensor, ...], x: torch.Tensor | None
    ) -> torch.Tensor:
        assert x is not None
        shift, scale, gate = rows[SHIFT_SCALE_GATE_MLP]
        return x + m.ff(modulate(rms(x, self.norm_eps), scale, shift)) * gate
