"""Conditioned regions come out of both stages exactly equal to the conditioning latents (mask-0 tokens), for images,
jointly encoded clips, continuation latents given through SegmentConditioning, and audio prefixes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from ltx2stream.errors import ConditioningError
from ltx2stream.pipeline.conditioning import AudioLatentCondition, VideoLatentCondition
from ltx2stream.pipeline.images import crf_round_trip
from ltx2stream.pipeline.latent_state import audio_to_tokens
from ltx2stream.pipeline.pipeline import LTX2Pipeline, SegmentConditioning
from ltx2stream.pipeline.request import GenerationRequest, ImageInput, VideoClipInput
from ltx2stream.pipeline.state import AVState


def _pixels(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def _frame_mask(state: AVState, frame: int) -> torch.Tensor:
    g = state.grid
    n = g.latent_height * g.latent_width
    return state.video.denoise_mask[0, frame * n : (frame + 1) * n]


@pytest.mark.parametrize("preset", ["tiny-ltx2-one-stage", "tiny-ltx2", "tiny-ltx2.3", "tiny-ltx2-dev"])
def test_images_and_segment_latents_are_preserved_exactly(tiny_host: Any, preset: str) -> None:
    pipe: LTX2Pipeline = tiny_host.pipeline(preset)
    px0, px1 = _pixels((48, 80, 3), 0), _pixels((48, 80, 3), 1)
    images = (ImageInput(pixels=px0, latent_frame=0), ImageInput(pixels=px1, latent_frame=1, strength=0.4))
    req = GenerationRequest("a boat", 128, 128, 17, 12.0, seed=4, images=images)  # 3 latent frames
    half = 64 if pipe.preset.two_stage else 128
    carried1 = _randn(1, 128, 1, half // 32, half // 32, seed=1)  # continuation latent at the stage-1 grid
    carried2 = _randn(1, 128, 1, 4, 4, seed=2)  # ... and at the stage-2 grid
    extra = SegmentConditioning(
        stage1=(VideoLatentCondition(carried1, frame=2),), stage2=(VideoLatentCondition(carried2, frame=2),)
    )
    result = pipe.generate_latents(req, extra=extra)

    stages = [(result.stage1, half, carried1)]
    if result.stage2 is not None:
        stages.append((result.stage2, 128, carried2))
    for state, size, carried in stages:
        latent = state.video_latent()  # [1, 128, 3, h, w]
        first = pipe.images.encode_frames(crf_round_trip(px0, req.image_crf), size, size)
        second = pipe.images.encode_frames(crf_round_trip(px1, req.image_crf), size, size)
        assert torch.equal(latent[:, :, 0:1], first.to(latent.dtype)), f"image frame changed at {size}px"
        assert torch.equal(latent[:, :, 2:3], carried), f"carried frame changed at {size}px"
        assert not torch.equal(latent[:, :, 1:2], second.to(latent.dtype))  # strength 0.4: denoised, not kept
        assert (_frame_mask(state, 0) == 0).all() and (_frame_mask(state, 2) == 0).all()
        assert torch.allclose(_frame_mask(state, 1), torch.full_like(_frame_mask(state, 1), 0.6))


def test_video_clip_encoded_jointly_is_preserved(tiny_host: Any) -> None:
    pipe: LTX2Pipeline = tiny_host.pipeline("tiny-ltx2")
    clip = _pixels((9, 40, 40, 3), 3)  # 9 frames -> 2 latent frames
    req = GenerationRequest(
        "waves",
        64,
        64,
        25,
        12.0,
        seed=6,
        image_crf=0,
        video_clips=(VideoClipInput(pixels=clip, latent_frame=1),),
    )
    result = pipe.generate_latents(req)
    assert result.stage2 is not None
    for state, size in ((result.stage1, 32), (result.stage2, 64)):
        want = pipe.images.encode_frames(clip, size, size)  # [1, 128, 2, h, w], joint encode
        assert want.shape[2] == 2
        assert torch.equal(state.video_latent()[:, :, 1:3], want)
        assert not torch.equal(state.video_latent()[:, :, 0:1], torch.zeros_like(want[:, :, :1]))


def test_audio_only_conditioning_keeps_the_prefix_in_both_stages(tiny_host: Any) -> None:
    pipe: LTX2Pipeline = tiny_host.pipeline("tiny-ltx2")
    prefix = _randn(1, 8, 6, 16, seed=5)  # 6 audio latents carried from a previous segment
    item = AudioLatentCondition(prefix, start=0)
    req = GenerationRequest("birdsong", 64, 64, 17, 12.0, seed=7)
    both = pipe.generate_latents(
        req,
        extra=SegmentConditioning(
            stage1=(item,), stage2=(item,), audio_latents=40, audio_start_index=25, time_origin_s=1.0
        ),
    )
    assert both.stage2 is not None
    for state in (both.stage1, both.stage2):
        audio = state.audio_latent()  # [1, 8, 40, 16]
        assert audio.shape == (1, 8, 40, 16)
        assert torch.equal(audio[:, :, :6], prefix)
        assert not torch.equal(audio[:, :, 6:12], prefix)  # the rest is generated
        assert (state.audio.denoise_mask[0, :6] == 0).all() and (state.audio.denoise_mask[0, 6:] == 1).all()
        assert (state.video.denoise_mask == 1).all()  # no video conditioning at all
    # a stage-1-only item is re-noised and regenerated by stage 2: each stage needs its own items
    only1 = pipe.generate_latents(req, extra=SegmentConditioning(stage1=(item,), audio_latents=40))
    assert only1.stage2 is not None
    assert torch.equal(only1.stage1.audio_latent()[:, :, :6], prefix)
    assert not torch.equal(only1.stage2.audio_latent()[:, :, :6], prefix)


def test_audio_prefix_tokens_are_channel_major(tiny_host: Any) -> None:
    prefix = _randn(1, 8, 2, 16, seed=8)
    tokens = audio_to_tokens(prefix)  # [1, 2, 128]
    assert torch.equal(tokens[0, 1, 16:32], prefix[0, 1, 1])  # channel 1, time 1, all 16 bins


def test_conditioning_outside_the_canvas_fails_before_denoising(tiny_host: Any) -> None:
    from pipeline_probe import count_forwards

    pipe: LTX2Pipeline = tiny_host.pipeline("tiny-ltx2-one-stage")
    req = GenerationRequest("x", 64, 64, 17, 12.0)
    bad = [
        AudioLatentCondition(torch.zeros(1, 8, 50, 16)),
        VideoLatentCondition(torch.zeros(1, 128, 1, 2, 2), frame=3),
        VideoLatentCondition(torch.zeros(1, 128, 1, 1, 1), frame=0),
    ]
    for item in bad:
        with count_forwards(pipe.c.transformer) as calls, pytest.raises(ConditioningError):
            pipe.generate_latents(req, extra=SegmentConditioning(stage1=(item,)))
        assert calls.n == 0
