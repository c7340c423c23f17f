"""Schedules, guidance, noise/restore/Euler math, request validation, presets: the pipeline's model-free parts."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from ltx2stream.errors import ConfigError, InputError
from ltx2stream.pipeline.guidance import GuidanceParams, Predictions, guide
from ltx2stream.pipeline.noise import euler_step, gaussian_noiser, restore_conditioning
from ltx2stream.pipeline.presets import PRESETS, get_preset
from ltx2stream.pipeline.request import GenerationRequest, ImageInput, VideoClipInput, validate_request
from ltx2stream.pipeline.schedules import (
    DISTILLED_STAGE1,
    DISTILLED_STAGE2,
    check_schedule,
    shifted_schedule,
    subset_schedule,
)


def test_distilled_lists_match_spec() -> None:
    assert DISTILLED_STAGE1 == (1.0, 0.99375, 0.9875, 0.98125, 0.975, 0.909375, 0.725, 0.421875, 0.0)
    assert DISTILLED_STAGE2 == (0.909375, 0.725, 0.421875, 0.0)


def test_shifted_schedule_matches_spec_values() -> None:
    s = shifted_schedule(40)
    assert len(s) == 41 and s[0] == 1.0 and s[-1] == 0.0
    assert s[1:3] == pytest.approx([0.9964, 0.9927], abs=1e-4)
    assert s[-5:-1] == pytest.approx([0.4207, 0.3378, 0.2339, 0.1], abs=1e-4)
    assert all(a > b for a, b in itertools.pairwise(s))


def test_shifted_schedule_depends_on_tokens() -> None:
    assert shifted_schedule(10, tokens=1024)[1] < shifted_schedule(10, tokens=4096)[1]


def test_subset_keeps_both_ends() -> None:
    sub = subset_schedule(DISTILLED_STAGE1, 4)
    assert sub[0] == 1.0 and sub[-1] == 0.0 and len(sub) == 5
    assert set(sub) <= set(DISTILLED_STAGE1)
    assert subset_schedule(DISTILLED_STAGE1, 8) == list(DISTILLED_STAGE1)
    with pytest.raises(InputError, match="num_inference_steps"):
        subset_schedule(DISTILLED_STAGE1, 9)


def test_check_schedule_rejects_bad_lists() -> None:
    for bad in ([1.0], [1.0, 0.5], [0.5, 0.7, 0.0], [1.5, 0.0]):
        with pytest.raises(InputError) as e:
            check_schedule(bad)
        assert e.value.code == "input.sigmas"


def test_guidance_formula_and_off_is_identity() -> None:
    g = torch.Generator().manual_seed(0)
    c, u, p, i = (torch.randn(2, 5, 4, generator=g) for _ in range(4))
    assert guide(c, GuidanceParams()) is c
    params = GuidanceParams(cfg=3.0, stg=0.5, modality=2.0, stg_blocks=(1,))
    expected = c + 2.0 * (c - u) + 0.5 * (c - p) + 1.0 * (c - i)
    torch.testing.assert_close(guide(c, params, uncond_text=u, perturbed=p, isolated=i), expected)


def test_predictions_guide_like_guide_and_name_a_missing_pass() -> None:
    """Predictions.guided equals guide() with the same passes; a pass guidance needs but lacks is a coded error."""
    g = torch.Generator().manual_seed(2)
    c, u, p = (torch.randn(1, 6, 4, generator=g) for _ in range(3))
    params = GuidanceParams(cfg=2.5, stg=0.5, stg_blocks=(0,))
    assert torch.equal(Predictions(c, u, p).guided(params), guide(c, params, uncond_text=u, perturbed=p))
    with pytest.raises(ConfigError) as e:
        Predictions(c, None, p).guided(params)
    assert e.value.code == "config.guidance_pass" and "uncond_text" in e.value.message


def test_guidance_rescale_matches_std() -> None:
    g = torch.Generator().manual_seed(1)
    c, u = torch.randn(1, 50, 8, generator=g), torch.randn(1, 50, 8, generator=g)
    out = guide(c, GuidanceParams(cfg=5.0, rescale=1.0), uncond_text=u)
    assert float(out.std()) == pytest.approx(float(c.std()), rel=1e-5)


def test_guidance_validation() -> None:
    with pytest.raises(InputError):
        GuidanceParams(stg=1.0)
    with pytest.raises(InputError):
        GuidanceParams(rescale=2.0)


def test_noiser_restore_and_euler_keep_conditioned_tokens_exact() -> None:
    clean = torch.randn(1, 6, 4).to(torch.bfloat16)
    noise = torch.randn((1, 6, 4), generator=torch.Generator().manual_seed(3))
    mask = torch.tensor([[0.0, 0.0, 1.0, 1.0, 0.5, 1.0]])
    x = gaussian_noiser(noise, clean, mask, 1.0)
    assert torch.equal(x[:, :2], clean[:, :2])
    torch.testing.assert_close(x[:, 2:4].float(), noise[:, 2:4].to(torch.bfloat16).float())
    x0 = restore_conditioning(torch.randn(1, 6, 4), mask, clean)
    assert torch.equal(x0[:, :2], clean[:, :2].float())
    nxt = euler_step(x, x0, 1.0, 0.5)
    assert torch.equal(nxt[:, :2], clean[:, :2])
    torch.testing.assert_close(euler_step(x.float(), x0, 0.5, 0.0), x0)  # the last step lands on x0


def _req(**kw: object) -> GenerationRequest:
    base = {"prompt": "a cat", "height": 128, "width": 128, "frames": 17, "fps": 24.0}
    base.update(kw)
    return GenerationRequest(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kw, code",
    [
        ({"frames": 16}, "input.frames_rule"),
        ({"height": 96}, "input.size_rule"),  # two-stage needs multiples of 64
        ({"images": (ImageInput(path="/nonexistent.png"),)}, "input.image_not_found"),
        ({"images": (ImageInput(pixels=np.zeros((8, 8, 3), np.uint8), strength=1.5),)}, "input.strength"),
        (
            {"images": (ImageInput(pixels=np.zeros((8, 8, 3), np.uint8), latent_frame=3),)},
            "input.latent_frame_range",
        ),
        ({"video_clips": (VideoClipInput(pixels=np.zeros((4, 8, 8, 3), np.uint8)),)}, "input.frames_rule"),
        ({"fps": 0.0}, "input.fps"),
        ({"seed": -1}, "input.seed"),
    ],
)
def test_invalid_requests_fail_with_codes(kw: dict[str, object], code: str) -> None:
    with pytest.raises(InputError) as e:
        validate_request(_req(**kw), two_stage=True)
    assert e.value.code == code


def test_valid_request_passes_and_one_stage_allows_32() -> None:
    validate_request(
        _req(images=(ImageInput(pixels=np.zeros((8, 8, 3), np.uint8), latent_frame=2),)), two_stage=True
    )
    validate_request(_req(height=96), two_stage=False)


def test_presets_are_data() -> None:
    p = get_preset("ltx2-distilled")
    assert (
        p.two_stage
        and p.stage1.sigmas == DISTILLED_STAGE1
        and p.stage2
        and p.stage2.sigmas == DISTILLED_STAGE2
    )
    assert get_preset("ltx2-dev").stage1.video_guidance.stg_blocks == (29,)
    assert get_preset("ltx2.3-dev").stage1.video_guidance.stg_blocks == (28,)
    assert get_preset("ltx2.3-dev").stage1.steps == 30 and get_preset("ltx2-dev").stage1.steps == 40
    assert not get_preset("tiny-ltx2-one-stage").two_stage
    assert all(p.frames % 8 == 1 for p in PRESETS.values())
    with pytest.raises(ConfigError) as e:
        get_preset("nope")
    assert e.value.code == "config.unknown_preset"
