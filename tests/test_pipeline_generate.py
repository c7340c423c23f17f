"""End-to-end generation on the tiny presets: MP4s that match the request, determinism per seed, the refine LoRA's
lifecycle and the progress events of each stage.

Everything runs the real stages on the embedded random-weight tiny models (CPU, seconds per generation).
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from pipeline_probe import count_forwards, probe_mp4, write_png

from ltx2stream.cli import main as cli_main
from ltx2stream.media import write_mp4
from ltx2stream.pipeline.pipeline import STAGE2_SEED_MIX, GenerationResult, LTX2Pipeline, stage2_seed
from ltx2stream.pipeline.request import GenerationRequest, ImageInput

AAC_FRAME = 1024


def _pixels(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _check_mp4(path: Path, *, frames: int, width: int, height: int, fps: float, sample_rate: int) -> None:
    info = probe_mp4(path)
    assert (info.frames, info.width, info.height) == (frames, width, height)
    assert info.fps == Fraction(fps).limit_denominator(1000)
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert info.sample_rate == sample_rate
    want = round(
        frames / fps * sample_rate
    )  # the request's duration; only the last AAC frame's padding may remain
    assert want <= info.audio_samples <= math.ceil(want / AAC_FRAME) * AAC_FRAME


# (preset, width, height, frames, fps, image?) — one- and two-stage, text- and image-to-video, both flavours, guided.
MP4_CASES = [
    ("tiny-ltx2-one-stage", 96, 64, 9, 8.0, False),
    ("tiny-ltx2-one-stage", 64, 96, 17, 12.0, True),
    ("tiny-ltx2.3", 64, 64, 9, 24.0, False),
    ("tiny-ltx2-dev", 64, 128, 9, 10.0, False),
]


@pytest.mark.parametrize("preset, width, height, frames, fps, with_image", MP4_CASES)
def test_generate_writes_an_mp4_matching_the_request(
    tiny_host: Any,
    tmp_path: Path,
    preset: str,
    width: int,
    height: int,
    frames: int,
    fps: float,
    with_image: bool,
) -> None:
    pipe: LTX2Pipeline = tiny_host.pipeline(preset)
    images = (ImageInput(pixels=_pixels(50, 70)),) if with_image else ()
    req = GenerationRequest("a lighthouse at dusk", height, width, frames, fps, seed=3, images=images)
    video, audio, result = pipe.generate(req)
    assert video.shape == (frames, height, width, 3) and video.dtype == np.uint8
    assert audio.waveform.shape == (1, 2, round(frames / fps * audio.sample_rate))
    assert (result.stage2 is None) == (not pipe.preset.two_stage)
    path = write_mp4(
        tmp_path / "out.mp4", video, fps, audio.waveform[0].clamp(-1, 1).numpy(), audio.sample_rate
    )
    _check_mp4(path, frames=frames, width=width, height=height, fps=fps, sample_rate=pipe.sample_rate)


def test_cli_generate_image_to_video_two_stage(tmp_path: Path, tiny_cache: Path) -> None:
    png = write_png(tmp_path / "start.png", _pixels(40, 70, seed=1))
    out = tmp_path / "cli.mp4"
    rc = cli_main(
        [
            "generate",
            "a red kite",
            "-o",
            str(out),
            "--preset",
            "tiny-ltx2",
            "--image",
            f"{png}@0@1.0",
            "--width",
            "128",
            "--height",
            "64",
            "--frames",
            "9",
            "--fps",
            "10",
            "--seed",
            "5",
            "--device",
            "cpu",
            "--no-progress",
        ]
    )
    assert rc == 0
    _check_mp4(out, frames=9, width=128, height=64, fps=10.0, sample_rate=24000)


def test_sample_rates_follow_the_flavour(tiny_host: Any) -> None:
    assert tiny_host.pipeline("tiny-ltx2").sample_rate == 24000
    assert tiny_host.pipeline("tiny-ltx2.3").sample_rate == 48000


REQ = GenerationRequest("a cat on a red sofa", 64, 64, 17, 12.0, seed=1)


@pytest.fixture(scope="module")
def recorded(tiny_host: Any) -> dict[str, Any]:
    """One two-stage run (seed 1) that records progress events, forward calls and whether the transformer's weights
    equal the base weights at every event, plus the state dict before and after."""
    pipe: LTX2Pipeline = tiny_host.pipeline("tiny-ltx2")
    model = pipe.c.transformer
    before = {k: v.clone() for k, v in model.state_dict().items()}
    events: list[tuple[str, int, int, bool]] = []

    def progress(stage: str, step: int, total: int) -> None:
        base = all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
        events.append((stage, step, total, base))

    with count_forwards(model) as calls:
        result = pipe.generate_latents(REQ, progress=progress)
    after = {k: v.clone() for k, v in model.state_dict().items()}
    return {"result": result, "events": events, "calls": calls.n, "before": before, "after": after}


def test_progress_sees_every_stage_and_step(recorded: dict[str, Any]) -> None:
    steps = [(s, i, n) for s, i, n, _ in recorded["events"]]
    assert steps == [("stage1", i, 8) for i in range(1, 9)] + [("upsample", 1, 1)] + [
        ("stage2", i, 3) for i in range(1, 4)
    ]
    assert recorded["calls"] == 8 + 3  # guidance off: one forward per step


def test_refine_lora_applied_in_stage2_only_and_removed(recorded: dict[str, Any], tiny_host: Any) -> None:
    assert tiny_host.pipeline("tiny-ltx2").c.refine_lora is not None
    base_at = {(s, i): base for s, i, _, base in recorded["events"]}
    assert (
        all(base_at[("stage1", i)] for i in range(1, 9)) and base_at[("upsample", 1)]
    )  # stage 1 on base weights
    assert not any(base_at[("stage2", i)] for i in range(1, 4))  # the LoRA is merged during stage 2
    before, after = recorded["before"], recorded["after"]
    assert before.keys() == after.keys()
    assert all(
        torch.equal(before[k], after[k]) for k in before
    )  # bitwise: the next request starts on base weights


def test_refine_lora_removed_when_stage2_is_cancelled(tiny_host: Any) -> None:
    pipe: LTX2Pipeline = tiny_host.pipeline("tiny-ltx2")
    before = {k: v.clone() for k, v in pipe.c.transformer.state_dict().items()}

    def cancel(stage: str, step: int, total: int) -> None:
        if stage == "stage2":
            raise KeyboardInterrupt("cancelled between steps")

    with pytest.raises(KeyboardInterrupt):
        pipe.generate_latents(REQ, progress=cancel)
    assert all(torch.equal(v, before[k]) for k, v in pipe.c.transformer.state_dict().items())


def _latents(r: GenerationResult) -> list[torch.Tensor]:
    assert r.stage2 is not None
    return [
        r.stage1.video_latent(),
        r.stage1.audio_latent(),
        r.stage2.video_latent(),
        r.stage2.audio_latent(),
    ]


def test_same_seed_is_bit_identical_and_different_seeds_differ(
    recorded: dict[str, Any], tiny_host: Any
) -> None:
    pipe: LTX2Pipeline = tiny_host.pipeline("tiny-ltx2")
    first = _latents(recorded["result"])
    again = _latents(pipe.generate_latents(REQ))
    other = _latents(pipe.generate_latents(GenerationRequest(REQ.prompt, 64, 64, 17, 12.0, seed=2)))
    names = ("stage-1 video", "stage-1 audio", "stage-2 video", "stage-2 audio")
    for name, a, b, c in zip(names, first, again, other, strict=True):
        assert torch.isfinite(a).all(), name
        assert torch.equal(a, b), f"{name}: same seed, different latents"
        assert not torch.equal(a, c), f"{name}: different seeds, same latents"


def test_stage2_seed_is_a_fixed_mix() -> None:
    assert stage2_seed(10) == 10 ^ STAGE2_SEED_MIX and stage2_seed(10) == stage2_seed(10)
    assert 0 <= stage2_seed(2**63 - 1) < 2**63
    assert (
        len({stage2_seed(s) for s in range(100)} & set(range(200))) == 0
    )  # never a neighbouring request seed
