"""Scenarios run both in one process and split over a gloo group (tests/test_parallel_sp.py).

Each scenario returns ``{name: tensor}``; the single-process and the sequence-parallel run must agree within
``REL_TOL`` (max |a - b| / max |b|, fp32). Models are rebuilt from fixed seeds in every process.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch

from ltx2stream.models.transformer import (
    LTXAVModel,
    Modality,
    Perturbations,
    randomize_,
    tiny_modalities,
    tiny_transformer_config,
)

REL_TOL = 1e-6
FLAVOURS = ("ltx2", "ltx2.3")
Wrap = Callable[[LTXAVModel], Any]


def model(flavour: str, heads: int, seed: int = 3) -> LTXAVModel:
    """The tiny config with ``heads`` video and audio heads (same inner widths), random weights."""
    cfg = tiny_transformer_config(flavour)
    cfg = dataclasses.replace(
        cfg,
        num_attention_heads=heads,
        attention_head_dim=cfg.video_inner_dim // heads,
        audio_num_attention_heads=heads,
        audio_attention_head_dim=cfg.audio_inner_dim // heads,
    )
    return randomize_(LTXAVModel(cfg), seed).eval()  # type: ignore[return-value]


def _inputs(cfg: Any) -> tuple[Modality, Modality]:
    """Batch 2, 27 video tokens (3 x 3 x 3: padded at 2 and 4 ranks), 7 audio tokens, distinct sigmas."""
    video, audio = tiny_modalities(
        cfg, batch=2, latent_frames=3, latent_height=3, latent_width=3, audio_frames=7, seed=5
    )
    t = video.timesteps.clone()
    t[:, :9] = 0.0  # a clean first latent frame
    sig = torch.tensor([0.7, 0.3])
    video = dataclasses.replace(video, sigma=sig, timesteps=t * sig[:, None] / 0.5)
    audio = dataclasses.replace(audio, sigma=sig.clone(), timesteps=audio.timesteps * sig[:, None] / 0.5)
    return video, audio


def forward_cases(flavour: str, heads: int, wrap: Wrap) -> dict[str, torch.Tensor]:
    """Transformer forwards: with/without audio, with a self-attention mask, with STG and isolated passes."""
    m = model(flavour, heads)
    net = wrap(m)
    video, audio = _inputs(m.config)
    g = torch.Generator().manual_seed(9)
    t = video.latent.shape[1]
    mask = (torch.rand(2, t, t, generator=g) > 0.3).float() * torch.rand(2, t, t, generator=g)
    mask = mask + torch.eye(t)[None]  # every query attends at least to itself
    cases: dict[str, tuple[Modality, Modality | None, Perturbations | None]] = {
        "av": (video, audio, None),
        "video_only": (video, None, None),
        "masked": (dataclasses.replace(video, attention_mask=mask.clamp(max=1.0)), audio, None),
        "stg": (video, audio, Perturbations(skip_video_self_attn=frozenset({0}))),
        "isolated": (video, audio, Perturbations(skip_a2v=True, skip_v2a=True)),
    }
    out: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for name, (v, a, p) in cases.items():
            v_out, a_out = net(v, a, p)
            out[f"{name}.video"] = v_out
            if a_out is not None:
                out[f"{name}.audio"] = a_out
    return out


SEGMENT_HEADS = 4
PROMPTS = ("a red ball bouncing", "rain on a window")


def _controller(flavour: str, wrap: Wrap, state: bytes | None) -> Any:
    """A session controller on the two-stage tiny preset with a 4-head random transformer and refine LoRA."""
    from ltx2stream.models.lora_weights import random_lora_for
    from ltx2stream.pipeline.components import components_for_preset
    from ltx2stream.pipeline.pipeline import LTX2Pipeline
    from ltx2stream.pipeline.presets import get_preset
    from ltx2stream.session.api import SessionSettings
    from ltx2stream.session.continuation import ContinuationState
    from ltx2stream.session.controller import SessionController

    preset = f"tiny-{flavour}"
    c = components_for_preset(preset, None)
    m = model(flavour, SEGMENT_HEADS)
    targets = [n for n, mod in m.named_modules() if isinstance(mod, torch.nn.Linear) and ".attn1.to_" in n]
    c.refine_lora = random_lora_for(m, rank=4, seed=1, modules=targets, scale=0.05)
    c.transformer = wrap(m)
    settings = SessionSettings(preset, 64, 64, 12.0, 17, 1, 7)  # 3 latent frames: 3 stage-1 tokens
    resumed = None if state is None else ContinuationState.from_bytes(state)
    return SessionController(LTX2Pipeline(c, get_preset(preset)), settings, state=resumed)


def _run(controller: Any, index: int) -> dict[str, torch.Tensor]:
    from ltx2stream.session.api import NullSink, SegmentRequest

    with torch.no_grad():
        controller.run_segment(SegmentRequest(index, PROMPTS[index], 100 + index), NullSink())
    r = controller.last_result
    assert r is not None and r.stage2 is not None
    out: dict[str, torch.Tensor] = {}
    for stage, st in (("stage1", r.stage1), ("stage2", r.stage2)):
        out[f"{stage}.video"] = st.video_latent()
        out[f"{stage}.audio"] = st.audio_latent()
    return out


def segment_reference(flavour: str) -> tuple[bytes, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Single process: segment 0, the state after it, and segment 1 (which continues its carried tail)."""
    c = _controller(flavour, lambda m: m, None)
    first = _run(c, 0)
    state = c.snapshot()
    return state, first, _run(c, 1)


def segment_latents(flavour: str, wrap: Wrap, state: bytes) -> dict[str, torch.Tensor]:
    """Segment 1 of a session resumed from ``state`` (carried tail, anchor and audio prefix), both stages."""
    return _run(_controller(flavour, wrap, state), 1)


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    """max |got - want| / max |want| (0 for two zero tensors)."""
    scale = want.abs().max().item()
    return float((got - want).abs().max().item() / scale) if scale else float(got.abs().max().item())
