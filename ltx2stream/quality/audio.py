"""Reading a waveform: bounce clicks (onsets of broadband bursts), the tones present (which shape kinds are heard),
the background hum, spectral flux and loudness. No model weights: a high-pass envelope and an FFT."""

from __future__ import annotations

import numpy as np

from ..world.palette import BACKGROUND_HUM_HZ, KIND_PITCH_HZ

CLICK_HOP_S = 0.001  # envelope resolution
CLICK_RATIO = 12.0  # an onset rises above this many times the median high-pass envelope
CLICK_FLOOR = 0.02  # and above this absolute level (full scale 1.0)
CLICK_REFRACTORY_S = 0.04  # onsets closer than this are one click
TONE_RATIO = 6.0  # a tone's spectral peak stands this many times above its neighbourhood
# and reaches this fraction (-20 dB) of the loudest tone or hum peak of the window: all pitches sit on one 100 Hz
# grid (world.palette), so a generator's distortion puts faint harmonics on other tones' and hums' pitches, over
# a near-silent neighbourhood; the quietest true sound (a dark hum against two equal tones) is at ~0.2.
TONE_FLOOR = 0.1
FLUX_HOP_S = 0.010
FLUX_WINDOW_S = 0.032


def mono(audio: np.ndarray) -> np.ndarray:
    """(S,) or (C, S) -> (S,) float64 (channel mean)."""
    a = np.asarray(audio, dtype=np.float64)
    if a.ndim == 2:
        m: np.ndarray = a.mean(axis=0)
        return m
    if a.ndim != 1:
        raise ValueError(f"audio is (S,) or (C, S); got {a.shape}")
    return a


def clicks(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Click onset times in seconds; shape = (n,). An onset is the first sample of a burst whose high-passed
    magnitude exceeds half the burst's peak."""
    hp = np.abs(np.diff(mono(audio), prepend=0.0))
    hop = max(round(CLICK_HOP_S * sample_rate), 1)
    n = len(hp) // hop
    if n < 3:
        return np.zeros(0)
    env = hp[: n * hop].reshape(n, hop).max(axis=1)
    thr = max(CLICK_RATIO * float(np.median(env)), CLICK_FLOOR)
    above = env > thr
    starts = np.flatnonzero(above & ~np.concatenate([[False], above[:-1]]))
    out: list[float] = []
    for s in starts:
        lo = int(s) * hop
        seg = hp[max(lo - hop, 0) : lo + 4 * hop]
        first = max(lo - hop, 0) + int(np.flatnonzero(seg > 0.5 * seg.max())[0])
        t = first / sample_rate
        if not out or t - out[-1] >= CLICK_REFRACTORY_S:
            out.append(t)
    return np.array(out)


def _peak(spec: np.ndarray, freqs: np.ndarray, f: float) -> tuple[float, float]:
    """(peak magnitude within 1.5 % of f, its ratio over the median magnitude within 40 Hz excluding the peak)."""
    near = np.abs(freqs - f) <= max(0.015 * f, 2.0 * (freqs[1] - freqs[0]))
    band = (np.abs(freqs - f) <= 40.0) & ~near
    if not near.any() or not band.any():
        return 0.0, 0.0
    peak = float(spec[near].max())
    return peak, peak / (float(np.median(spec[band])) + 1e-12)


def spectrum(audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    a = mono(audio)
    spec = np.abs(np.fft.rfft(a * np.hanning(len(a))))
    return spec, np.fft.rfftfreq(len(a), 1.0 / sample_rate)


def _heard(audio: np.ndarray, sample_rate: int, pitches: dict[str, float]) -> dict[str, float]:
    """name -> peak ratio of the ``pitches`` (a subset of the world's tones and hums) that stand out:
    ``TONE_RATIO`` over their neighbourhood and at least ``TONE_FLOOR`` of the loudest such peak."""
    spec, freqs = spectrum(audio, sample_rate)
    peaks = {f: _peak(spec, freqs, f) for f in (*KIND_PITCH_HZ.values(), *BACKGROUND_HUM_HZ.values())}
    loudest = max((p for p, r in peaks.values() if r >= TONE_RATIO), default=0.0)
    out = {}
    for name, f in pitches.items():
        p, r = peaks[f]
        if r >= TONE_RATIO and p >= TONE_FLOOR * loudest:
            out[name] = r
    return out


def tones(audio: np.ndarray, sample_rate: int) -> frozenset[str]:
    """The shape kinds whose tone is heard (sorted names in a frozenset)."""
    return frozenset(_heard(audio, sample_rate, KIND_PITCH_HZ))


def hum(audio: np.ndarray, sample_rate: int) -> str | None:
    """The background colour whose hum stands out most (by peak ratio), or None if no hum is heard."""
    heard = _heard(audio, sample_rate, BACKGROUND_HUM_HZ)
    return max(heard, key=lambda k: heard[k]) if heard else None


def stft_magnitude(audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(|STFT| per frame (n, bins), frame centre times in s): Hann windows FLUX_WINDOW_S long, FLUX_HOP_S apart."""
    a = mono(audio)
    win = round(FLUX_WINDOW_S * sample_rate)
    hop = round(FLUX_HOP_S * sample_rate)
    n = (len(a) - win) // hop + 1
    if n < 1:
        return np.zeros((0, win // 2 + 1)), np.zeros(0)
    idx = np.arange(win)[None, :] + hop * np.arange(n)[:, None]
    mag = np.abs(np.fft.rfft(a[idx] * np.hanning(win)[None, :], axis=1))
    return mag, (hop * np.arange(n) + win / 2) / sample_rate


def spectral_flux(audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(flux per hop, hop centre times in s): sum of positive magnitude increases between consecutive
    Hann-windowed frames (FLUX_WINDOW_S long, FLUX_HOP_S apart)."""
    mag, centres = stft_magnitude(audio, sample_rate)
    if len(mag) < 2:
        return np.zeros(0), np.zeros(0)
    return np.maximum(np.diff(mag, axis=0), 0.0).sum(axis=1), centres[1:]


def loudness_db(audio: np.ndarray) -> float:
    """RMS level in dB full scale."""
    a = mono(audio)
    return float(20.0 * np.log10(np.sqrt(np.mean(a**2)) + 1e-9))
