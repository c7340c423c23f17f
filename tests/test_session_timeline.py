"""Timeline arithmetic of the frame-aligned latent carry."""

from __future__ import annotations

import pytest

from ltx2stream.errors import InputError
from ltx2stream.session.timeline import Timeline


@pytest.mark.parametrize(
    "frames, fps, k", [(17, 12.0, 1), (33, 24.0, 2), (121, 24.0, 1), (25, 25.0, 1), (41, 30.0, 3)]
)
def test_frames_and_audio_stay_aligned(frames: int, fps: float, k: int) -> None:
    t = Timeline(frames, fps, k, audio_context=2)
    sr = 24000
    assert t.trimmed == 1 + 8 * k and t.step == frames - 1 - 8 * k
    for n in range(60):
        assert t.delivered_frames(n) == frames + n * (frames - 1 - 8 * k)
        # segment n's frame 0 is segment n-1's anchor frame
        if n:
            assert t.start_frame(n) == t.start_frame(n - 1) + t.anchor_index
        a, b = t.audio_slice(n, sr)
        assert a >= 0, "audio must start inside the segment's canvas"
        decoded = (4 * t.audio_latents(n) - 3) * sr // 100  # causal audio VAE: 4T-3 mel frames of 10 ms
        assert b <= decoded, "the canvas must cover every sample the segment delivers"
        assert abs(t.delivered_samples(n, sr) / sr - t.delivered_frames(n) / fps) <= 0.5 / sr
        if n:
            prev_end = t.audio_canvas_start(n - 1) + t.audio_latents(n - 1)
            assert t.audio_canvas_start(n - 1) <= t.audio_canvas_start(n) <= t.audio_carry_end(n) <= prev_end


def test_first_segment_has_no_trim_and_zero_overlap_means_independent() -> None:
    t = Timeline(17, 12.0, 0)
    assert t.trimmed == 0 and t.step == 17 and t.first_new_frame(3) == 0 and t.audio_carry_count(2) == 0


@pytest.mark.parametrize("frames, fps", [(17, 12.0), (25, 24.0), (121, 24.0), (41, 30.0)])
def test_independent_segments_deliver_their_whole_audio_slice(frames: int, fps: float) -> None:
    """With overlap 0 every segment's audio slice lies inside its decoded canvas (no silence padding)."""
    t = Timeline(frames, fps, 0)
    sr = 24000
    for n in range(60):
        a, b = t.audio_slice(n, sr)
        decoded = (4 * t.audio_latents(n) - 3) * sr // 100
        assert 0 <= a < b <= decoded, (n, a, b, decoded)


def test_bad_settings() -> None:
    with pytest.raises(InputError) as e:
        Timeline(17, 12.0, 2)  # 3 latent frames: k must leave one new latent frame
    assert e.value.code == "input.overlap"
    with pytest.raises(InputError):
        Timeline(16, 12.0, 1)
