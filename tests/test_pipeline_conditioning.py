"""Latent state and conditioning items in token space; image preprocessing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ltx2stream.errors import ConditioningError
from ltx2stream.pipeline.conditioning import AudioLatentCondition, VideoLatentCondition, apply_conditioning
from ltx2stream.pipeline.images import crf_round_trip, to_model_pixels
from ltx2stream.pipeline.latent_state import LatentState, audio_to_tokens, tokens_to_video, video_to_tokens


class Grid:
    frames, height, width = 3, 2, 2


def canvas(tokens: int, channels: int = 4) -> LatentState:
    z = torch.zeros(1, tokens, channels)
    return LatentState(z.clone(), z, torch.ones(1, tokens), torch.zeros(1, 3, tokens, 2), tokens)


def test_video_condition_writes_its_latent_frame_only() -> None:
    lat = torch.randn(1, 4, 1, 2, 2)
    s = VideoLatentCondition(lat, frame=1, strength=0.75).apply(canvas(12), Grid())
    assert torch.equal(s.clean_latent[:, 4:8], video_to_tokens(lat))
    assert torch.equal(s.latent[:, 4:8], video_to_tokens(lat))
    assert s.denoise_mask[0, 4:8].tolist() == [0.25] * 4
    assert s.denoise_mask[0, :4].tolist() == [1.0] * 4 and s.denoise_mask[0, 8:].tolist() == [1.0] * 4
    back = tokens_to_video(s.clean_latent, 3, 2, 2)
    assert torch.equal(back[:, :, 1:2], lat)


def test_video_condition_errors() -> None:
    with pytest.raises(ConditioningError) as e:
        VideoLatentCondition(torch.randn(1, 4, 2, 2, 2), frame=2).apply(canvas(12), Grid())
    assert e.value.code == "conditioning.out_of_range"
    with pytest.raises(ConditioningError) as e:
        VideoLatentCondition(torch.randn(1, 4, 1, 3, 2), frame=0).apply(canvas(12), Grid())
    assert e.value.code == "conditioning.size"


def test_audio_prefix_and_order_of_items() -> None:
    a = torch.randn(1, 8, 2, 16)
    s = apply_conditioning(canvas(5, 128), (AudioLatentCondition(a, start=0),), "audio")
    assert torch.equal(s.clean_latent[:, :2], audio_to_tokens(a)) and s.denoise_mask[0].tolist() == [
        0,
        0,
        1,
        1,
        1,
    ]
    first, second = torch.randn(1, 4, 1, 2, 2), torch.randn(1, 4, 1, 2, 2)
    items = (VideoLatentCondition(first, 0), VideoLatentCondition(second, 0))
    s = apply_conditioning(canvas(12), items, "video", Grid())
    assert torch.equal(s.clean_latent[:, :4], video_to_tokens(second))  # later item wins


def test_appended_tokens_and_target_only() -> None:
    s = canvas(12).appended(torch.ones(1, 4, 4), torch.ones(1, 3, 4, 2), strength=1.0)
    assert s.num_tokens == 16 and s.num_target == 12
    assert torch.equal(s.latent[:, 12:], torch.ones(1, 4, 4)) and torch.equal(
        s.clean_latent[:, 12:], torch.ones(1, 4, 4)
    )
    assert s.denoise_mask[0, 12:].tolist() == [0.0] * 4
    t = s.target_only()
    assert t.num_tokens == 12 and t.positions.shape[2] == 12


def test_crf_round_trip_changes_pixels_and_zero_disables() -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (33, 47, 3), dtype=np.uint8)
    assert crf_round_trip(img, 0) is img
    out = crf_round_trip(img, 40)
    assert out.shape == (32, 46, 3) and not np.array_equal(out, img[:32, :46])


def test_cover_resize_and_range() -> None:
    img = np.zeros((100, 200, 3), np.uint8)
    img[:, 90:110] = 255  # a white bar in the centre survives the centre crop
    x = to_model_pixels(img, 64, 64)
    assert x.shape == (3, 1, 64, 64) and float(x.min()) >= -1.0 and float(x.max()) <= 1.0
    assert float(x[:, 0, :, 32].mean()) > 0.9 and float(x[:, 0, :, 0].mean()) == -1.0
