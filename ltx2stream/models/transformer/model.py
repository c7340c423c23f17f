"""The LTX-2 / 2.3 / 2.5 audio-video DiT (``LTXModel`` of type AudioVideo, spec §1).

Per stream the model embeds tokens (``patchify_proj``), computes AdaLN modulation from per-token sigma*1000,
RoPE tables from the token positions, the LTX-2 caption projection of the text context (LTX-2.3: none; the
LTX-2.3 prompt AdaLN from the scalar step sigma), and the A/V cross-attention conditioning, runs the blocks
and applies the output head ``proj_out(LN(x) * (1 + scale) + shift)`` with ``(shift, scale) = table + e``
(``e`` = the embedded timestep).

A/V cross-attention timestep conditioning follows the current official variant (may28 -> pre25): scale/shift
AdaLN from the stream's own per-token sigma, gate AdaLN from the *other* stream's scalar sigma times
``av_ca_timestep_scale_multiplier / timestep_scale_multiplier``.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any, NamedTuple, cast

import torch
from torch import nn

from ltx2stream import codes
from ltx2stream.errors import InputError
from ltx2stream.models.transformer.adaln import AdaLayerNormSingle, timestep_features
from ltx2stream.models.transformer.attention import CaptionProjection
from ltx2stream.models.transformer.block import BasicAVTransformerBlock, BlockSkips, StreamArgs
from ltx2stream.models.transformer.config import TransformerConfig
from ltx2stream.models.transformer.modality import Modality, Perturbations, attention_mask_bias
from ltx2stream.models.transformer.precompute import StageCache, cached
from ltx2stream.models.transformer.rope import RopeTable, rope_table, with_rotation

log = logging.getLogger(__name__)

# Attribute names per stream: (patchify, adaln, prompt adaln, caption projection, A/V scale-shift, A/V gate).
_NAMES = {
    "video": (
        "patchify_proj",
        "adaln_single",
        "prompt_adaln_single",
        "caption_projection",
        "av_ca_video_scale_shift_adaln_single",
        "av_ca_a2v_gate_adaln_single",
    ),
    "audio": (
        "audio_patchify_proj",
        "audio_adaln_single",
        "audio_prompt_adaln_single",
        "audio_caption_projection",
        "av_ca_audio_scale_shift_adaln_single",
        "av_ca_v2a_gate_adaln_single",
    ),
}


class _StreamParts(NamedTuple):
    """The model-level modules of one stream (absent ones are None)."""

    patchify: nn.Linear
    adaln: AdaLayerNormSingle
    prompt_adaln: AdaLayerNormSingle | None
    caption: CaptionProjection | None
    cross_scale_shift: AdaLayerNormSingle
    cross_gate: AdaLayerNormSingle


class LTXAVModel(nn.Module):
    """Dual-stream DiT predicting velocities; state_dict keys = official keys less the DiT prefix."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        self._init_stream("", config.video_inner_dim, config.in_channels, config.out_channels)
        self._init_stream(
            "audio_", config.audio_inner_dim, config.audio_in_channels, config.audio_out_channels
        )
        vd, ad = config.video_inner_dim, config.audio_inner_dim
        self.av_ca_video_scale_shift_adaln_single = AdaLayerNormSingle(vd, 4)
        self.av_ca_audio_scale_shift_adaln_single = AdaLayerNormSingle(ad, 4)
        self.av_ca_a2v_gate_adaln_single = AdaLayerNormSingle(vd, 1)
        self.av_ca_v2a_gate_adaln_single = AdaLayerNormSingle(ad, 1)
        self.transformer_blocks = nn.ModuleList(
            BasicAVTransformerBlock(config) for _ in range(config.num_layers)
        )

    def _init_stream(self, p: str, dim: int, in_channels: int, out_channels: int) -> None:
        cfg = self.config
        setattr(self, f"{p}patchify_proj", nn.Linear(in_channels, dim))
        if cfg.has_caption_projection:
            setattr(self, f"{p}caption_projection", CaptionProjection(cfg.caption_channels, dim))
        setattr(self, f"{p}adaln_single", AdaLayerNormSingle(dim, cfg.adaln_coefficient))
        if cfg.cross_attention_adaln and cfg.use_prompt_adaln_single:
            setattr(self, f"{p}prompt_adaln_single", AdaLayerNormSingle(dim, 2))
        if not p and cfg.use_keyframes_abs_pos_embedding:  # LTX-2.5, video stream only (zero-initialised)
            self.keyframes_abs_pos_embedding = nn.Parameter(torch.zeros(1, dim))
        setattr(self, f"{p}scale_shift_table", nn.Parameter(torch.randn(2, dim) / dim**0.5))
        setattr(self, f"{p}norm_out", nn.LayerNorm(dim, elementwise_affine=False, eps=cfg.norm_eps))
        setattr(self, f"{p}proj_out", nn.Linear(dim, out_channels))

    @property
    def num_blocks(self) -> int:
        return len(self.transformer_blocks)

    @property
    def dtype(self) -> torch.dtype:
        return cast(nn.Linear, self.patchify_proj).weight.dtype

    def _parts(self, stream: str) -> _StreamParts:
        modules: list[Any] = [getattr(self, name, None) for name in _NAMES[stream]]
        return _StreamParts(*modules)

    def forward(
        self,
        video: Modality | None,
        audio: Modality | None,
        perturbations: Perturbations | None = None,
        *,
        cache: StageCache | None = None,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Velocities (video [B, Tv, out_channels], audio [B, Ta, audio_out_channels]); None if absent.

        ``cache``: the stage's ``StageCache`` (positions, masks and context projections computed once per stage;
        bit-identical to ``cache=None``).
        """
        if video is None and audio is None:
            raise InputError("forward needs at least one of video / audio", code=codes.INPUT_NO_MODALITY)
        p = perturbations or Perturbations.none()
        p.check(self.num_blocks)
        v = self._prepare("video", video, audio, cache) if video is not None else None
        a = self._prepare("audio", audio, video, cache) if audio is not None else None
        for i, block in enumerate(self.transformer_blocks):
            skips = BlockSkips(
                i in p.skip_video_self_attn, i in p.skip_audio_self_attn, p.skip_a2v, p.skip_v2a
            )
            vx, ax = block(v[0] if v else None, a[0] if a else None, skips)
            v = (replace(v[0], x=vx), v[1]) if v else None
            a = (replace(a[0], x=ax), a[1]) if a else None
        v_out = self._output("", *v) if v else None
        a_out = self._output("audio_", *a) if a else None
        return v_out, a_out

    # ------------------------------------------------------------------ preprocessing
    def _prepare(
        self, stream: str, m: Modality, other: Modality | None, cache: StageCache | None
    ) -> tuple[StreamArgs, torch.Tensor]:
        """StreamArgs for the blocks and the embedded timestep [B, T, D] for the output head."""
        cfg, dtype = self.config, self.dtype
        parts = self._parts(stream)
        audio = stream == "audio"
        dim = cfg.audio_inner_dim if audio else cfg.video_inner_dim
        ctx_dim = cfg.caption_channels if cfg.has_caption_projection else dim
        max_pos = cfg.audio_positional_embedding_max_pos if audio else cfg.positional_embedding_max_pos
        in_ch = cfg.audio_in_channels if audio else cfg.in_channels
        m.check(stream, channels=in_ch, n_axes=len(max_pos), context_dim=ctx_dim)

        x = parts.patchify(m.latent.to(dtype))
        if not audio:
            x = self._add_keyframes_embedding(x, m.keyframes_mask)
        tsm = cfg.timestep_scale_multiplier
        scaled = m.timesteps.float() * tsm  # per-token sigma * 1000
        features = timestep_features(scaled, dtype)  # shared by this stream's two per-token AdaLNs
        modulation, embedded = parts.adaln(scaled, dtype, features=features)
        context = m.context.to(dtype)
        caption = parts.caption
        if caption is not None:
            context = cached(cache, ("caption", stream), (context,), lambda: caption(context))
        heads = cfg.audio_num_attention_heads if audio else cfg.num_attention_heads
        mask = m.attention_mask
        args = StreamArgs(
            x=x,
            context=context,
            modulation=modulation,
            pe=cached(
                cache, ("rope", stream), (m.positions,), lambda: self._rope(m.positions, dim, heads, max_pos)
            ),
            self_mask=(
                cached(cache, ("mask", stream), (mask,), lambda: attention_mask_bias(mask, dtype))
                if mask is not None
                else None
            ),
            prompt_modulation=(
                parts.prompt_adaln(m.sigma.float() * tsm, dtype)[0]
                if parts.prompt_adaln is not None
                else None
            ),
            stream=stream,
            cache=cache if cache is not None and cache.text_kv else None,
        )
        if other is not None:
            args = self._with_cross(args, m, other, parts, heads, cache, (scaled, features))
        return args, embedded

    def _add_keyframes_embedding(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """LTX-2.5: ``x + 1[mask > 0] * E`` on marked tokens, right after ``patchify_proj``; x [B, T, D]."""
        embedding = getattr(self, "keyframes_abs_pos_embedding", None)
        if embedding is None or mask is None:
            return x
        marked = (mask > 0).to(x.dtype)[..., None]  # [B, T] -> [B, T, 1]
        return x + marked * embedding.to(x.dtype)  # (1, D) broadcast over batch and tokens

    def _with_cross(
        self,
        args: StreamArgs,
        m: Modality,
        other: Modality,
        parts: _StreamParts,
        heads: int,
        cache: StageCache | None,
        sigmas: tuple[torch.Tensor, torch.Tensor],
    ) -> StreamArgs:
        cfg, dtype = self.config, self.dtype
        if tuple(other.sigma.shape) != (m.latent.shape[0],):
            raise InputError(
                f"video and audio batch sizes differ: sigma {tuple(other.sigma.shape)} vs latent "
                f"{tuple(m.latent.shape)}",
                code=codes.INPUT_MODALITY_SHAPE,
            )
        tsm = cfg.timestep_scale_multiplier
        av_factor = cfg.av_ca_timestep_scale_multiplier / tsm
        scaled, features = sigmas  # own per-token sigma (and its sinusoid)
        scale_shift, _ = parts.cross_scale_shift(scaled, dtype, features=features)
        gate, _ = parts.cross_gate(
            other.sigma.float() * tsm * av_factor, dtype
        )  # other stream's scalar sigma
        cross_pe = cached(
            cache,
            ("cross_rope", args.stream),
            (m.positions,),
            lambda: self._rope(
                m.positions[:, 0:1], cfg.audio_cross_attention_dim, heads, (cfg.cross_pe_max_pos,)
            ),
        )  # time axis only: [B, 1, T, 2]
        return replace(args, cross_pe=cross_pe, cross_scale_shift=scale_shift, cross_gate=gate)

    def _rope(self, positions: torch.Tensor, dim: int, heads: int, max_pos: tuple[int, ...]) -> RopeTable:
        cfg = self.config
        table = rope_table(
            positions,
            dim=dim,
            heads=heads,
            max_pos=max_pos,
            theta=cfg.positional_embedding_theta,
            rope_type=cfg.rope_type,
            double_precision=cfg.double_precision_rope,
            dtype=self.dtype,
        )
        return with_rotation(table)  # the full-width layout for the fast rotation (a table serves many calls)

    # ------------------------------------------------------------------ output head
    def _output(self, p: str, args: StreamArgs, embedded: torch.Tensor) -> torch.Tensor:
        table = getattr(self, f"{p}scale_shift_table")
        values = table[None, None].to(embedded.dtype) + embedded[:, :, None]  # [B, T, 2, D]
        shift, scale = values[:, :, 0], values[:, :, 1]
        x = getattr(self, f"{p}norm_out")(args.x)
        return getattr(self, f"{p}proj_out")(x * (1 + scale) + shift)
