"""Mel front end (slaney filterbank, STFT framing, log clamp), resampling, and the vocoder DSP pieces."""

from __future__ import annotations

import math

import torch

from ltx2stream.models.audio import AudioVAEConfig, MelFrontEnd, mel_filterbank, resample
from ltx2stream.models.audio.bigvgan import Activation1d, SnakeBeta, UpSample1d, kaiser_sinc_filter
from ltx2stream.models.audio.bwe import CausalSTFT, SincResampler


def _analytic_mel_to_hz(mel: float) -> float:
    """Slaney: 200/3 Hz per mel below 1 kHz (mel 15), log steps of ln(6.4)/27 above."""
    return 200.0 / 3.0 * mel if mel < 15.0 else 1000.0 * math.exp(math.log(6.4) / 27.0 * (mel - 15.0))


def _analytic_hz_to_mel(hz: float) -> float:
    return hz / (200.0 / 3.0) if hz < 1000.0 else 15.0 + math.log(hz / 1000.0) / (math.log(6.4) / 27.0)


def _tone(freq: float, rate: int, seconds: float, amp: float = 0.5) -> torch.Tensor:
    t = torch.arange(int(rate * seconds), dtype=torch.float64) / rate
    return (amp * torch.sin(2 * math.pi * freq * t)).float()


def test_filterbank_peaks_match_the_analytic_slaney_scale():
    fb = mel_filterbank(513, 0.0, 8000.0, 64, 16000)  # (513, 64)
    assert fb.shape == (513, 64) and (fb >= 0).all()
    top = _analytic_hz_to_mel(8000.0)
    bin_hz = 16000 / 1024
    for m in (3, 20, 50):  # one filter in the linear region, two in the log region
        peak_hz = _analytic_mel_to_hz(top * (m + 1) / 65)
        assert abs(int(fb[:, m].argmax()) * bin_hz - peak_hz) <= bin_hz
    # slaney area normalisation: height of filter m is 2 / (f[m+2] - f[m])
    lo, hi = _analytic_mel_to_hz(top * 49 / 65), _analytic_mel_to_hz(top * 51 / 65)
    assert math.isclose(float(fb[:, 49].max()), 2 / (hi - lo), rel_tol=0.1)


def test_pure_tone_lands_in_its_mel_bin_and_frames_follow_centering():
    front = MelFrontEnd(AudioVAEConfig())
    wave = _tone(1000.0, 16000, 1.0).expand(1, 2, -1).clone()
    mel = front(wave)
    assert mel.shape == (1, 2, 16000 // 160 + 1, 64)
    top = _analytic_hz_to_mel(8000.0)
    centres = [_analytic_mel_to_hz(top * (m + 1) / 65) for m in range(64)]
    expected = min(range(64), key=lambda m: abs(centres[m] - 1000.0))
    assert int(mel[0, 0, 50].argmax()) == expected
    # power 1: doubling the amplitude adds log 2 where the mel is above the clamp
    louder = front(wave * 2)
    assert torch.allclose(
        louder[0, 0, 50, expected] - mel[0, 0, 50, expected], torch.tensor(math.log(2)), atol=1e-4
    )
    silent = front(torch.zeros(1, 2, 1600))
    assert torch.allclose(silent, torch.full_like(silent, math.log(1e-5)))


def test_resampler_keeps_frequency_and_amplitude():
    wave = _tone(440.0, 48000, 0.5)[None, None]
    out = resample(wave, 48000, 16000)
    assert out.shape == (1, 1, 8000)
    ref = _tone(440.0, 16000, 0.5)
    assert torch.allclose(out[0, 0, 200:-200], ref[200:-200], atol=2e-3)
    up = resample(ref[None], 16000, 24000)
    assert up.shape == (1, 12000)
    assert torch.allclose(up[0, 300:-300], _tone(440.0, 24000, 0.5)[300:-300], atol=2e-3)


def test_snakebeta_formula():
    act = SnakeBeta(3)
    with torch.no_grad():
        act.alpha.copy_(torch.tensor([0.0, 0.5, -1.0]))
        act.beta.copy_(torch.tensor([0.2, -0.3, 1.0]))
    x = torch.randn(2, 3, 7)
    a, b = act.alpha.exp()[None, :, None], act.beta.exp()[None, :, None]
    assert torch.allclose(act(x), x + torch.sin(a * x) ** 2 / b, atol=1e-6)


def test_kaiser_filters_and_antialiased_activation():
    f = kaiser_sinc_filter(0.25, 0.3, 12)
    assert f.shape == (1, 1, 12) and math.isclose(float(f.sum()), 1.0, rel_tol=1e-6)
    assert torch.allclose(f.flatten(), f.flatten().flip(0))
    up = UpSample1d(2, 12)
    assert torch.allclose(up(torch.full((1, 2, 10), 0.3)), torch.full((1, 2, 20), 0.3), atol=1e-6)
    act = Activation1d(4)
    x = torch.randn(1, 4, 33)
    assert act(x).shape == x.shape
    keys = set(act.state_dict())
    assert keys == {"act.alpha", "act.beta", "upsample.filter", "downsample.lowpass.filter"}


def test_bwe_sinc_resampler_is_aligned_and_not_stored():
    r = SincResampler(3)
    assert "filter" not in r.state_dict()
    x = _tone(300.0, 16000, 0.1)[None, None]
    y = r(x)
    assert y.shape == (1, 1, 4800)
    assert torch.allclose(y[0, 0, 300:-300], _tone(300.0, 48000, 0.1)[300:-300], atol=3e-3)


def test_causal_stft_frames_and_tone_bin():
    stft = CausalSTFT(512, 80, 512)
    wave = _tone(2000.0, 16000, 0.1)[None]
    mag = stft(wave)
    assert mag.shape == (1, 257, 1600 // 80)
    assert int(mag[0, :, -1].argmax()) == round(2000 / (16000 / 512))
    # causal: frame t only sees samples < (t + 1) * hop
    changed = wave.clone()
    changed[:, 800:] += 1.0
    assert torch.equal(stft(changed)[..., :10], mag[..., :10])
    assert not torch.equal(stft(changed)[..., 10], mag[..., 10])
