"""The scorers and measures validated on the world's own ground truth (pixels and samples only)."""

from __future__ import annotations

import numpy as np
import pytest

from ltx2stream.quality import (
    ATTRIBUTES,
    av_offset,
    clicks,
    drift,
    prompt_adherence,
    read_video,
    seam_ratios,
    steering_latency,
    tones,
    trend,
)
from ltx2stream.quality.audio import hum
from ltx2stream.quality.seams import frame_change
from ltx2stream.world import (
    CHANGES,
    KIND_PITCH_HZ,
    make_steered_clip,
    render_clip,
    sample_clip_spec,
)
from ltx2stream.world.palette import BACKGROUND_HUM_HZ

FPS = 12.0
SR = 16000


def test_rendered_clips_score_at_least_95_percent_on_every_attribute() -> None:
    """Clips with scene changes, at three sizes, read back >= 95 % adherent to their captions per attribute."""
    hits = dict.fromkeys(ATTRIBUTES, 0)
    trials = dict.fromkeys(ATTRIBUTES, 0)
    for seed, (h, w) in zip(range(6), [(64, 64), (96, 128), (128, 128)] * 2, strict=True):
        clip = render_clip(sample_clip_spec(seed, duration_s=6.0), 72, h, w, FPS)
        a = prompt_adherence(read_video(clip.video), clip.audio, clip.captions, FPS, SR, h)
        for k in ATTRIBUTES:
            hits[k] += a.hits[k]
            trials[k] += a.trials[k]
    for k in ATTRIBUTES:
        assert trials[k] >= 30, k
        assert hits[k] / trials[k] >= 0.95, (k, hits[k], trials[k])


def test_wrong_prompt_scores_low() -> None:
    """Scoring a clip against another clip's captions fails on the attributes that differ."""
    a = render_clip(sample_clip_spec(2, duration_s=4.0, max_events=0), 36, 64, 64, FPS)
    sa = a.captions[0].state
    for seed in range(10, 100):
        b = render_clip(sample_clip_spec(seed, duration_s=4.0, max_events=0), 36, 64, 64, FPS)
        sb = b.captions[0].state
        if sb.background.colour != sa.background.colour and not {x.colour for x in sa.shapes} & {
            x.colour for x in sb.shapes
        }:
            break
    s = prompt_adherence(read_video(a.video), a.audio, b.captions, FPS, SR, 64).scores
    assert s["background"] == 0.0 and s["hum"] == 0.0 and s["colour"] == 0.0


def _pair(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    a = render_clip(sample_clip_spec(seed, duration_s=4.0, max_events=0), 36, 64, 64, FPS)
    for other in range(seed + 100, seed + 200):
        b = render_clip(sample_clip_spec(other, duration_s=4.0, max_events=0), 36, 64, 64, FPS)
        if b.truth.background != a.truth.background:
            return a.video, a.audio, b.video, b.audio
    raise AssertionError("no second scene")


@pytest.mark.parametrize("seed", [2, 5])
def test_hard_cut_seam_ratio_at_least_5_uncut_at_most_1_2(seed: int) -> None:
    """A hard cut between two scenes gets seam ratio >= 5 (pixels, warping error, audio spectrum);
    the same boundaries in an uncut clip stay <= 1.2."""
    va, aa, vb, ab = _pair(seed)
    cut = seam_ratios(
        np.concatenate([va[:18], vb[18:]]), [18], np.concatenate([aa[:24000], ab[24000:]]), SR, FPS
    )
    assert cut.pixel[0] >= 5 and cut.warp[0] >= 5 and cut.audio_spectral[0] >= 5, cut
    uncut = seam_ratios(va, [9, 18, 27], aa, SR, FPS)
    assert max(uncut.pixel) <= 1.2 and max(uncut.warp) <= 1.2 and max(uncut.audio_spectral) <= 1.2, uncut


def test_seam_reference_is_local_to_the_boundary() -> None:
    """A continuous clip whose moving pixels gain contrast after 4 s (motion that reads 4x larger) has no seam at a
    boundary after that: the boundary is compared with the frame pairs near it, not the whole clip's median."""
    clip = render_clip(sample_clip_spec(6, duration_s=6.0, max_events=0), 72, 128, 128, FPS)
    video = clip.video.astype(np.float32)
    still = video[:1].repeat(len(video), axis=0)  # the first frame everywhere: the ground and a frozen shape
    video[:48] = still[:48] + 0.25 * (video[:48] - still[:48])
    video = video.round().astype(np.uint8)
    report = seam_ratios(video, [12, 60], fps=FPS)
    assert max(report.pixel) < 1.2 and max(report.warp) < 1.3
    # the whole clip's median would have read a seam of > 2 there
    assert frame_change(video[59], video[60]) + 0.5 > 2 * (report.inside_pixel_median + 0.5)


def test_injected_colour_ramp_shows_as_drift_slope() -> None:
    """+2 grey levels of red per segment shows as a mean_r slope of 2 with a large t; the clean clip has none."""
    clip = render_clip(sample_clip_spec(2, duration_s=8.0, max_events=0), 96, 48, 48, FPS)
    bounds = list(range(12, 96, 12))
    clean = drift(clip.video, bounds, clip.audio, FPS, SR)
    assert abs(clean["mean_r"].slope) < 0.2 and abs(clean["loudness_db"].slope) < 0.1
    ramp = 2.0 * (np.arange(96) // 12)
    video = np.clip(clip.video + ramp[:, None, None, None] * np.array([1.0, 0, 0]), 0, 255).astype(np.uint8)
    d = drift(video, bounds, clip.audio, FPS, SR)
    assert d["mean_r"].slope == pytest.approx(2.0, abs=0.15) and d["mean_r"].t > 20
    louder = drift(clip.video, bounds, clip.audio * np.repeat(1.1 ** (np.arange(8)), 16000), FPS, SR)
    assert louder["loudness_db"].slope == pytest.approx(20 * np.log10(1.1), abs=0.05)


def test_shifted_audio_shows_the_av_offset() -> None:
    """Bounces and clicks line up in a rendered clip; delaying the audio by 100 ms shows an offset of 100 ms."""
    clip = render_clip(sample_clip_spec(3, duration_s=8.0, max_events=0), 96, 64, 64, FPS)
    readings = read_video(clip.video)
    aligned = av_offset(readings, clip.audio, FPS, SR, 64)
    assert aligned.pairs >= 4 and abs(aligned.offset_s) < 0.25 / FPS
    late = av_offset(readings, np.roll(clip.audio, int(0.1 * SR)), FPS, SR, 64)
    assert late.offset_s == pytest.approx(0.1, abs=0.25 / FPS)
    early = av_offset(readings, np.roll(clip.audio, -int(0.05 * SR)), FPS, SR, 64)
    assert early.offset_s == pytest.approx(-0.05, abs=0.25 / FPS)


def test_clicks_and_tones_match_the_truth() -> None:
    """Every bounce click is found within 1 ms; the tones heard are the kinds shown."""
    clip = render_clip(sample_clip_spec(4, duration_s=6.0, max_events=0), 72, 32, 32, FPS)
    found = clicks(clip.audio, SR)
    want = clip.truth.click_samples() / SR
    assert len(want) >= 3 and len(found) == len(want)
    assert np.abs(found - want).max() < 1e-3
    assert tones(clip.audio, SR) == frozenset(clip.captions[0].state.kinds)


@pytest.mark.parametrize("change", CHANGES)
def test_steering_latency_reads_the_announced_change(change: str) -> None:
    """A steered clip shows its change within a frame of the steer; a clip that never changes has no latency."""
    clip = make_steered_clip(1, 30, 64, 64, FPS, change_frame=15, change=change)
    old, new = clip.captions[0].state, clip.captions[1].state
    readings = read_video(clip.video)
    lat = steering_latency(readings, 15, new, old, FPS, 64)
    assert lat is not None and lat <= 1
    assert steering_latency(readings[:15] + readings[:15], 15, new, old, FPS, 64) is None


def test_faint_harmonics_on_the_pitch_grid_are_not_heard() -> None:
    """A tone or hum counts only within 20 dB of the loudest one: a generator's faint distortion products land on
    other pitches of the 100 Hz grid over a silent neighbourhood, and are not read as tones."""
    t = np.arange(SR) / SR
    sine = {f: np.sin(2 * np.pi * f * t) for f in (*KIND_PITCH_HZ.values(), *BACKGROUND_HUM_HZ.values())}
    loud = 0.08 * sine[KIND_PITCH_HZ["circle"]] + 0.03 * sine[BACKGROUND_HUM_HZ["sand"]]
    assert tones(loud, SR) == {"circle"} and hum(loud, SR) == "sand"
    faint = loud + 0.002 * sine[KIND_PITCH_HZ["triangle"]] + 0.002 * sine[BACKGROUND_HUM_HZ["white"]]
    assert tones(faint, SR) == {"circle"} and hum(faint, SR) == "sand"
    heard = loud + 0.02 * sine[KIND_PITCH_HZ["triangle"]]
    assert tones(heard, SR) == {"circle", "triangle"}


def test_a_steer_step_is_not_drift_but_a_ramp_under_it_is() -> None:
    """The steer's wanted change is fitted as a step: a rendering that steps at the steer and is flat on either
    side reads no trend (the plain fit read |t| ~ 12 on the world's own rendering); a ramp on top still shows."""
    values = [10.0] * 25 + [14.0] * 25
    plain = trend(values)
    assert plain.t > 10
    stepped = trend(values, step_at=25)
    assert stepped.t == 0.0 and abs(stepped.slope) < 1e-9
    rng = np.random.default_rng(0)
    noisy = np.array(values) + rng.normal(0, 0.5, 50)
    # seed 0 reads 2.8 with the step term: chance, not the ~12 of a step read as a slope
    assert abs(trend(noisy, step_at=25).t) < 4 < trend(noisy).t
    ramped = noisy + 0.1 * np.arange(50)
    r = trend(ramped, step_at=25)
    assert r.slope == pytest.approx(0.1, abs=0.04) and r.t > 6
    # a step at an end of the series is no step: the plain fit
    assert trend(values, step_at=0).t == plain.t and trend(values, step_at=49).t == plain.t
