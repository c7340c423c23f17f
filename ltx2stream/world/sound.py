"""Samples: a tone per shape kind (panned by x), a hum per background colour, a click at every bounce.

Everything is a function of the global sample index, so any window of a long clip is a bit-exact slice of it.
"""

from __future__ import annotations

import numpy as np

from .palette import (
    BACKGROUND_HUM_HZ,
    CLICK_AMPLITUDE,
    CLICK_DECAY_S,
    CLICK_LENGTH_S,
    HUM_AMPLITUDE,
    KIND_PITCH_HZ,
    TONE_AMPLITUDE,
)
from .scene import Scene

FADE_S = 0.01  # a shape's tone fades in over this after it appears


def _pan(x: np.ndarray, aspect: float) -> tuple[np.ndarray, np.ndarray]:
    theta = np.pi / 4 * (1.0 + 0.7 * (2.0 * x / aspect - 1.0))
    return np.cos(theta) * np.sqrt(2.0), np.sin(theta) * np.sqrt(2.0)


def click_wave(seed: int, slot: int, time: float, sample_rate: int) -> np.ndarray:
    """The click of one bounce: decaying noise, deterministic from (seed, slot, time); shape = (n,)."""
    n = max(round(CLICK_LENGTH_S * sample_rate), 1)
    rng = np.random.default_rng([seed & 0xFFFFFFFF, slot, round(time * 1e6)])
    env = np.exp(-np.arange(n) / (CLICK_DECAY_S * sample_rate))
    return (CLICK_AMPLITUDE * env * rng.uniform(-1.0, 1.0, n)).astype(np.float64)


def render_audio(
    scene: Scene, start_sample: int, n_samples: int, sample_rate: int, channels: int
) -> np.ndarray:
    """shape = (n_samples,) if channels == 1 else (channels, n_samples), float32 in [-1, 1]."""
    if channels not in (1, 2):
        raise ValueError(f"channels must be 1 or 2; got {channels}")
    g = start_sample + np.arange(n_samples)
    t = g / sample_rate
    bg = scene.spec.background
    dark = scene.dark_at(t)
    hum = HUM_AMPLITUDE * np.where(dark, 0.5, 1.0) * np.sin(2 * np.pi * BACKGROUND_HUM_HZ[bg.colour] * t)
    left = hum.copy()
    right = hum.copy()
    for slot, tr in enumerate(scene.trajectories):
        on = np.clip((t - scene.appear[slot]) / FADE_S, 0.0, 1.0)
        if not on.any():
            continue
        tone = TONE_AMPLITUDE * on * np.sin(2 * np.pi * KIND_PITCH_HZ[scene.shapes[slot].kind] * t)
        gl, gr = _pan(tr.state(t)[0], scene.aspect) if channels == 2 else (1.0, 1.0)
        left += gl * tone
        right += gr * tone
    t0, t1 = start_sample / sample_rate, (start_sample + n_samples) / sample_rate
    for b in scene.bounces_between(t0 - CLICK_LENGTH_S, t1):
        wave = click_wave(scene.spec.seed, b.slot, b.time, sample_rate)
        first = int(np.ceil(b.time * sample_rate)) - start_sample
        lo, hi = max(first, 0), min(first + len(wave), n_samples)
        if lo >= hi:
            continue
        x = scene.trajectories[b.slot].state(np.array([b.time]))[0]
        gl, gr = _pan(x, scene.aspect) if channels == 2 else (np.ones(1), np.ones(1))
        left[lo:hi] += gl[0] * wave[lo - first : hi - first]
        right[lo:hi] += gr[0] * wave[lo - first : hi - first]
    if channels == 1:
        return np.clip(left, -1.0, 1.0).astype(np.float32)
    return np.clip(np.stack([left, right]), -1.0, 1.0).astype(np.float32)
