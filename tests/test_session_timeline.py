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


@pytest.mark.parametrize("frames, fps, k, hold", [(25, 12.0, 1, 4), (25, 12.0, 1, 8), (33, 24.0, 2, 5)])
def test_a_hold_moves_every_cut_back_and_the_final_segment_shows_it(
    frames: int, fps: float, k: int, hold: int
) -> None:
    """With a hold of h frames segment n shows its frames [first, F − h) and segment n + 1 starts h frames
    earlier in its own canvas, on the same session frame; the final segment shows all F; audio follows."""
    t, plain = Timeline(frames, fps, k, 2, hold), Timeline(frames, fps, k, 2)
    sr = 24000
    assert t.first_new_frame(0) == 0 and t.shown_end() == frames - hold and t.shown_end(final=True) == frames
    for n in range(40):
        assert t.delivered_frames(n) == plain.delivered_frames(n) - hold
        assert t.delivered_frames(n, final=True) == plain.delivered_frames(n)
        if n:  # segment n's first shown frame is the session frame after what segment n − 1 delivered
            assert t.first_new_frame(n) == 1 + 8 * k - hold >= 1
            assert t.start_frame(n) + t.first_new_frame(n) == t.delivered_frames(n - 1)
        for final in (False, True):
            a, b = t.audio_slice(n, sr, final)
            assert 0 <= a < b <= (4 * t.audio_latents(n) - 3) * sr // 100
            assert b - a == t.delivered_samples(n, sr, final) - (t.delivered_samples(n - 1, sr) if n else 0)
    with pytest.raises(InputError) as e:
        Timeline(frames, fps, k, 0, 8 * k + 1)  # beyond the carried span: the anchor frame would show twice
    assert e.value.code == "input.carry"
    with pytest.raises(InputError):
        Timeline(frames, fps, 0, 0, 1)  # nothing carried, nothing to hold


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
