"""LTX-2.5 sampling: ancestral Euler (eta 1) for distilled stage 1, CRF 18, the new negative prompt, presets,
and a tiny LTX-2.5 generation from the split layout."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from pipeline_probe import probe_mp4

from ltx2stream.cli import main as cli_main
from ltx2stream.models.transformer import LTXAVModel
from ltx2stream.models.transformer.tiny import randomize_, tiny_transformer_config
from ltx2stream.pipeline.conditioning import VideoLatentCondition
from ltx2stream.pipeline.noise import ancestral_euler_step, euler_step
from ltx2stream.pipeline.presets import DEFAULT_NEGATIVE_PROMPT, StagePreset, get_preset
from ltx2stream.pipeline.stages.conditioning import condition
from ltx2stream.pipeline.stages.denoise import LTX2DenoisingStage
from ltx2stream.pipeline.stages.latents import LTX2LatentPreparationStage, add_noise
from ltx2stream.pipeline.state import PromptContexts, StageGrid


def test_ancestral_step_formula_and_eta_zero_is_euler() -> None:
    """eta 0 is the plain Euler step; eta 1 follows the official rectified-flow formula; σ_next 0 returns x0."""
    g = torch.Generator().manual_seed(0)
    x, x0, eps = (torch.randn(2, 5, 4, generator=g) for _ in range(3))
    torch.testing.assert_close(
        ancestral_euler_step(x, x0, 0.8, 0.5, eps, eta=0.0), euler_step(x, x0, 0.8, 0.5), rtol=0, atol=1e-6
    )
    s, sn = 0.8, 0.5
    sd = sn * sn / s  # ratio = σ_next / σ for eta 1
    an, ad = 1 - sn, 1 - sd
    c = (sn**2 - sd**2 * an**2 / ad**2) ** 0.5
    want = an / ad * ((sd / s) * x.double() + (1 - sd / s) * x0.double()) + c * eps.double()
    torch.testing.assert_close(ancestral_euler_step(x, x0, s, sn, eps), want.float(), rtol=0, atol=1e-6)
    assert torch.equal(ancestral_euler_step(x, x0, 0.4, 0.0, eps), x0)


def _stage_run(seed: int, eta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    cfg = tiny_transformer_config("ltx2.5")
    model = randomize_(LTXAVModel(cfg), 0).eval()
    grid = StageGrid(height=64, width=64, frames=9, fps=24.0)
    anchor = torch.randn(1, 128, 1, 2, 2, generator=torch.Generator().manual_seed(7))
    state = condition(LTX2LatentPreparationStage()(grid), (VideoLatentCondition(anchor, 0, 1.0),))
    state = add_noise(state, 1, 1.0)
    g = torch.Generator().manual_seed(11)
    ctx = PromptContexts(video=torch.randn(1, 8, 32, generator=g), audio=torch.randn(1, 8, 16, generator=g))
    out = LTX2DenoisingStage(model)(state, ctx, StagePreset(sigmas=(1.0, 0.9, 0.5, 0.0), eta=eta), seed=seed)
    return out.video.latent, out.audio.latent, state.video.clean_latent


def test_ancestral_stage_is_seeded_and_keeps_conditioning_exact() -> None:
    """Same seed -> identical latents; another seed differs; the clean anchor frame stays bit-exact."""
    a, aa, clean = _stage_run(3, 1.0)
    b, bb, _ = _stage_run(3, 1.0)
    c, _, _ = _stage_run(4, 1.0)
    plain, _, _ = _stage_run(3, 0.0)
    assert torch.equal(a, b) and torch.equal(aa, bb)
    assert not torch.equal(a, c) and not torch.equal(a, plain)
    assert torch.equal(a[:, :4], clean[:, :4])  # the anchor's 2x2 tokens


def test_ltx25_presets_and_unchanged_older_presets() -> None:
    """2.5 presets: ancestral distilled stage 1, CRF 18, the prefixed negative prompt; 2 / 2.3 presets unchanged."""
    d25, dev25 = get_preset("ltx2.5-distilled"), get_preset("ltx2.5-dev")
    assert d25.stage1.eta == 1.0 and d25.stage2 is not None and d25.stage2.eta == 0.0
    assert dev25.stage1.eta == 0.0 and dev25.stage1.steps == 30
    for p in (d25, dev25, get_preset("tiny-ltx2.5")):
        assert p.image_crf == 18 and p.flavour == "ltx2.5"
    assert d25.negative_prompt.startswith("has_subtitles, has_blurbox, transition from black, ")
    assert d25.negative_prompt.endswith(DEFAULT_NEGATIVE_PROMPT)
    for name in ("ltx2-distilled", "ltx2-dev", "ltx2.3-distilled", "ltx2.3-dev"):
        p = get_preset(name)
        assert p.image_crf == 33 and p.stage1.eta == 0.0 and p.negative_prompt == DEFAULT_NEGATIVE_PROMPT
    with pytest.raises(Exception, match="eta"):
        StagePreset(sigmas=(1.0, 0.0), eta=1.5)


def test_tiny_ltx25_generate_from_the_split_layout(tmp_path: Path) -> None:
    """`ltx2stream generate --preset tiny-ltx2.5` writes an MP4 matching the request (48 kHz audio)."""
    out = tmp_path / "fox.mp4"
    assert cli_main(["generate", "a red fox", "--preset", "tiny-ltx2.5", "-o", str(out), "--seed", "5"]) == 0
    info = probe_mp4(out)
    assert (info.frames, info.width, info.height, info.sample_rate) == (17, 64, 64, 48000)
