"""Invalid requests fail before any compute with a clear error; schedule and guidance overrides change exactly the
number of model calls they should.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pipeline_probe import count_forwards

from ltx2stream.cli import main as cli_main
from ltx2stream.errors import InputError
from ltx2stream.pipeline.guidance import GuidanceParams
from ltx2stream.pipeline.pipeline import LTX2Pipeline
from ltx2stream.pipeline.request import GenerationRequest, ImageInput, VideoClipInput
from ltx2stream.pipeline.schedules import DISTILLED_STAGE1, shifted_schedule

PX = np.zeros((16, 16, 3), np.uint8)
INVALID = [
    ("frames not 1+8k", {"frames": 16}, "input.frames_rule", "1 + 8k"),
    ("height not x64", {"height": 96}, "input.size_rule", "multiples of 64"),
    ("width not x64", {"width": 160}, "input.size_rule", "multiples of 64"),
    (
        "missing image",
        {"images": (ImageInput(path="no-such-dir/start.png"),)},
        "input.image_not_found",
        "no-such-dir/start.png",
    ),
    ("strength > 1", {"images": (ImageInput(pixels=PX, strength=1.5),)}, "input.strength", "[0, 1]"),
    ("strength < 0", {"images": (ImageInput(pixels=PX, strength=-0.1),)}, "input.strength", "[0, 1]"),
    (
        "strength nan",
        {"images": (ImageInput(pixels=PX, strength=float("nan")),)},
        "input.strength",
        "[0, 1]",
    ),
    (
        "latent frame past the end",
        {"images": (ImageInput(pixels=PX, latent_frame=3),)},
        "input.latent_frame_range",
        "3 latent frames",
    ),
    (
        "negative latent frame",
        {"images": (ImageInput(pixels=PX, latent_frame=-1),)},
        "input.latent_frame_range",
        "latent frame -1",
    ),
    (
        "clip past the end",
        {"video_clips": (VideoClipInput(pixels=np.zeros((17, 16, 16, 3), np.uint8), latent_frame=2),)},
        "input.latent_frame_range",
        "+3",
    ),
    (
        "clip not 1+8k",
        {"video_clips": (VideoClipInput(pixels=np.zeros((4, 16, 16, 3), np.uint8)),)},
        "input.frames_rule",
        "1 + 8k",
    ),
]


@pytest.mark.parametrize("kw, code, words", [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_request_fails_before_any_compute(
    tiny_host: Any, kw: dict[str, Any], code: str, words: str
) -> None:
    pipe: LTX2Pipeline = tiny_host.pipeline("tiny-ltx2")
    for run in (pipe.generate_latents, pipe.generate):
        # 3 latent frames; a fresh prompt each time, so a text-encoder call is not hidden by the prompt cache
        base = GenerationRequest(f"invalid {uuid.uuid4()}", 128, 128, 17, 12.0)
        req = replace(base, **kw)
        with count_forwards() as calls, pytest.raises(InputError) as e:  # every nn.Module: Gemma, VAE, DiT
            run(req)
        assert calls.n == 0
        assert e.value.code == code and words in e.value.message


def test_one_stage_allows_multiples_of_32(tiny_host: Any) -> None:
    with count_forwards() as calls:
        tiny_host.pipeline("tiny-ltx2-one-stage").generate_latents(GenerationRequest("ok", 96, 32, 9, 12.0))
    assert calls.n > 0


def test_cli_rejects_a_missing_image_before_loading(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "never.mp4"
    with count_forwards() as calls:
        rc = cli_main(
            ["generate", "x", "-o", str(out), "--image", str(tmp_path / "missing.png"), "--device", "cpu"]
        )
    assert rc == 2 and calls.n == 0 and not out.exists()
    assert "input.image_not_found" in capsys.readouterr().err


def _calls(pipe: LTX2Pipeline, **request: Any) -> tuple[int, list[tuple[str, int, int]]]:
    events: list[tuple[str, int, int]] = []
    req = GenerationRequest("a fox", 64, 64, 9, 12.0, seed=3, **request)
    with count_forwards(pipe.c.transformer) as calls:
        pipe.generate_latents(req, progress=lambda s, i, n: events.append((s, i, n)))
    return calls.n, events


def _variant(tiny_host: Any, preset: str, *, one_stage: bool = False, **options: Any) -> LTX2Pipeline:
    """A pipeline with options on the shared components (a preset is data: a one-stage copy is just a replace)."""
    base: LTX2Pipeline = tiny_host.pipeline(preset)
    p = replace(base.preset, stage2=None) if one_stage else base.preset
    return LTX2Pipeline(base.c, p, **options)


def test_defaults_one_forward_per_step(tiny_host: Any) -> None:
    assert _calls(_variant(tiny_host, "tiny-ltx2-one-stage"))[0] == 8
    assert _calls(_variant(tiny_host, "tiny-ltx2"))[0] == 8 + 3


def test_sigmas_override(tiny_host: Any) -> None:
    pipe = _variant(tiny_host, "tiny-ltx2-one-stage", sigmas_override=[1.0, 0.7, 0.3, 0.0])
    n, events = _calls(pipe)
    assert n == 3 and events[-1] == ("stage1", 3, 3)
    with pytest.raises(InputError) as e:
        _variant(tiny_host, "tiny-ltx2-one-stage", sigmas_override=[1.0, 0.5])
    assert e.value.code == "input.sigmas"


def test_num_inference_steps_override_subsets_stage1_only(tiny_host: Any) -> None:
    pipe = _variant(tiny_host, "tiny-ltx2", num_inference_steps_override=2)
    assert pipe.stage1.sigmas(pipe.preset.stage1) == [1.0, 0.975, 0.0]
    assert pipe.stage1.sigmas(pipe.preset.stage1) == [DISTILLED_STAGE1[i] for i in (0, 4, 8)]
    n, events = _calls(pipe)
    assert n == 2 + 3  # stage 2 keeps its own three sigmas
    assert [e for e in events if e[0] == "stage1"] == [("stage1", 1, 2), ("stage1", 2, 2)]


def test_force_guidance_scale_adds_the_negative_pass(tiny_host: Any) -> None:
    pipe = _variant(
        tiny_host, "tiny-ltx2-one-stage", num_inference_steps_override=2, force_guidance_scale=3.0
    )
    ctx = pipe.encode_prompt("a fox")
    assert ctx.negative_video is not None and ctx.negative_audio is not None
    assert _calls(pipe)[0] == 2 * 2  # conditional + negative prompt per step


def test_guided_preset_runs_every_pass(tiny_host: Any) -> None:
    dev = _variant(tiny_host, "tiny-ltx2-dev", one_stage=True, num_inference_steps_override=2)
    assert dev.stage1.sigmas(dev.preset.stage1) == [shifted_schedule(4)[i] for i in (0, 2, 4)]
    assert _calls(dev)[0] == 2 * 4  # conditional, negative prompt, STG-perturbed, modality-isolated
    no_cfg = _variant(
        tiny_host, "tiny-ltx2-dev", one_stage=True, num_inference_steps_override=2, force_guidance_scale=1.0
    )
    assert _calls(no_cfg)[0] == 2 * 3  # CFG off: the negative-prompt pass is skipped
    full = tiny_host.pipeline("tiny-ltx2-dev")
    assert _calls(full)[0] == 4 * 4 + 3  # guided stage 1 (4 shifted steps), unguided distilled stage 2


def test_a_preset_may_guide_stage_two(tiny_host: Any) -> None:
    """The official stage 2 is unguided and drops the negatives; a preset that guides it keeps them."""
    base = tiny_host.pipeline("tiny-ltx2")
    s2 = replace(base.preset.stage2, video_guidance=GuidanceParams(cfg=3.0))
    pipe = LTX2Pipeline(base.c, replace(base.preset, stage2=s2))
    assert pipe.encode_prompt("a fox").negative_video is not None
    assert _calls(pipe)[0] == 8 + 2 * 3  # stage 1 unguided; stage 2 conditional + negative prompt per step
