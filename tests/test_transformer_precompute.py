"""Per-stage precomputation (StageCache): a cached forward is bit-identical to an uncached one, and what is fixed
for the stage is computed once."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from ltx2stream.models.transformer import (
    LTXAVModel,
    Perturbations,
    StageCache,
    randomize_,
    tiny_modalities,
    tiny_transformer_config,
)
from ltx2stream.models.transformer.modality import Modality
from ltx2stream.models.transformer.rope import RopeTable, apply_rope, with_rotation

# (flavour, use_prompt_adaln_single): LTX-2, LTX-2.3, and the LTX-2.5 switch that makes the text K/V static
VARIANTS = [("ltx2", True), ("ltx2.3", True), ("ltx2.3", False)]


def _model(flavour: str, prompt_adaln: bool) -> LTXAVModel:
    cfg = replace(tiny_transformer_config(flavour), use_prompt_adaln_single=prompt_adaln)
    return randomize_(LTXAVModel(cfg)).eval()  # type: ignore[return-value]


def _steps(video: Modality, audio: Modality, n: int) -> list[tuple[Modality, Modality]]:
    """n denoising-like steps: new latents and sigmas, the same positions, contexts and masks."""
    g = torch.Generator().manual_seed(1)
    out = []
    for i in range(n):
        sigma = 1.0 - i / n
        mask = torch.ones_like(video.timesteps)
        mask[:, :4] = 0.0  # clean conditioning tokens keep sigma 0
        out.append(
            (
                replace(
                    video,
                    latent=torch.randn(video.latent.shape, generator=g),
                    timesteps=mask * sigma,
                    sigma=torch.full_like(video.sigma, sigma),
                ),
                replace(
                    audio,
                    latent=torch.randn(audio.latent.shape, generator=g),
                    timesteps=torch.full_like(audio.timesteps, sigma),
                    sigma=torch.full_like(audio.sigma, sigma),
                ),
            )
        )
    return out


@pytest.mark.parametrize(("flavour", "prompt_adaln"), VARIANTS)
def test_cached_steps_are_bit_identical_to_uncached(flavour: str, prompt_adaln: bool) -> None:
    """Every step of a stage (two prompt contexts, an STG pass, an attention mask) equals the uncached forward
    bit for bit, and the stage constants are computed on the first step only."""
    model = _model(flavour, prompt_adaln)
    video, audio = tiny_modalities(model.config, latent_frames=3)
    t = video.latent.shape[1]
    keep = torch.ones(1, t, t)
    keep[:, :, -1] = 0.25  # a soft mask, so the bias has log terms
    video = replace(video, attention_mask=keep)
    negative = (torch.randn_like(video.context), torch.randn_like(audio.context))
    stg = Perturbations(skip_video_self_attn=frozenset({1}), skip_audio_self_attn=frozenset({0}))
    cache = StageCache()
    with torch.inference_mode():
        for step, (v, a) in enumerate(_steps(video, audio, 3)):
            passes = [
                (v, a, None),
                (replace(v, context=negative[0]), replace(a, context=negative[1]), None),
                (v, a, stg),
            ]
            for pv, pa, p in passes:
                ref = model(pv, pa, p)
                got = model(pv, pa, p, cache=cache)
                assert all(torch.equal(x, y) for x, y in zip(ref, got, strict=True))
            if step == 0:
                entries = len(cache)
            assert len(cache) == entries  # nothing new after the first step
    static_text = flavour == "ltx2" or not prompt_adaln
    per_context = 2 * model.num_blocks if static_text else 0  # text K/V per block and stream when static
    captions = 2 if flavour == "ltx2" else 0
    assert entries == 4 + 1 + 2 * (captions + per_context)  # 4 RoPE tables, 1 mask bias, per context
    assert cache.hits > 0


def test_text_kv_can_be_left_out() -> None:
    """StageCache(text_kv=False) keeps only the cheap entries and stays bit-identical."""
    model = _model("ltx2", True)
    video, audio = tiny_modalities(model.config)
    cache = StageCache(text_kv=False)
    with torch.inference_mode():
        ref = model(video, audio)
        for _ in range(2):
            got = model(video, audio, cache=cache)
            assert all(torch.equal(x, y) for x, y in zip(ref, got, strict=True))
    assert len(cache) == 4 + 2  # RoPE tables + caption projections


def test_entries_are_keyed_by_tensor_identity() -> None:
    """Equal-valued but distinct tensors get their own entries; the cache holds its inputs."""
    cache = StageCache()
    a, b = torch.zeros(3), torch.zeros(3)
    calls = []
    for t in (a, b, a):
        cache.get("x", (t,), lambda t=t: calls.append(t) or t + 1)
    assert len(calls) == 2 and len(cache) == 2 and (cache.hits, cache.misses) == (1, 2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_full_width_rotation_is_bit_identical_to_the_split_rotation(dtype: torch.dtype) -> None:
    """apply_rope through the table's full-width layout gives exactly the split-layout result."""
    g = torch.Generator().manual_seed(3)
    heads, d, tokens = 4, 16, 37
    angles = torch.randn(2, heads, tokens, d // 2, generator=g) * 7
    table = RopeTable(angles.cos().to(dtype), angles.sin().to(dtype), "split")
    x = (torch.randn(2, tokens, heads * d, generator=g) * 3).to(dtype)
    fast = with_rotation(table)
    assert fast.rotation is not None and table.rotation is None
    assert torch.equal(apply_rope(x, table), apply_rope(x, fast))
