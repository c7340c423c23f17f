"""Seam measures: how much more changes across a segment boundary than between frames inside segments.

Video, for a boundary at shown frame b (b - 1 is the last frame of the old segment, b the first of the new):
  pixel seam ratio  = (D(b-1, b) + eps) / (median_{inside} D(i, i+1) + eps),  D = mean |frame difference| (0..255)
  warp seam ratio   = (E(b-1, b) + eps) / (median_{inside} E(i, i+1) + eps),  E = block-matching warping error
"inside" = the consecutive pairs that do not cross a boundary and lie within 1 s of b (all of them where fewer than 4
do): a local reference, so a scene whose amount of motion or contrast changes over a session (a recoloured shape, a
bounce, a darkened ground) does not read as seams where it changes; eps = 0.5 grey level for D, 1.0 for E (static
or clean synthetic scenes).
E(a, b): the luma of both frames average-pooled to at most 64 px high, cut into 8x8 blocks; each block of b is matched to a
at the displacement (|dx|, |dy| <= SEARCH px) of least mean absolute error; E is the mean of those least errors
(a motion-compensated difference: motion inside a segment costs little, a cut costs a lot).
Audio, at boundary sample s_b:
  spectral seam ratio = (S(t_b) + 0.01) / (median_{inside t} S(t) + 0.01), S(t) = sum |A - B| / sum (A + B) with
      A, B the median STFT magnitude spectra (32 ms Hann windows, 10 ms hop) over 100 ms after / before t (a
      spectral flux at the scale of a scene, insensitive to the world's own bounce clicks); inside points every
      50 ms at least 120 ms from any boundary
  click seam ratio  = high-pass energy within +-2.5 ms of s_b / median of that energy over all 5 ms windows
      (a pop from a waveform discontinuity)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from einops import reduce

from .audio import mono, stft_magnitude

EPS = 0.5  # pixel ratio floor (grey levels)
WARP_EPS = 1.0  # warp ratio floor (grey levels): clean synthetic motion warps to ~0
POOL_TO = 64
BLOCK = 8
SEARCH = 4
MAX_INSIDE = 400
LOCAL_S = 1.0  # video: a boundary is compared with the inside pairs within this many seconds of it
MIN_LOCAL = 4  # ... when there are at least this many (else with all inside pairs)
SIDE_S = 0.12  # audio: spectra compared over this much on each side of a point
GAP_S = 0.02  # audio: frames this close to the point are left out (their window straddles it)
INSIDE_STEP_S = 0.05  # audio: inside points every 50 ms, at least SIDE_S from any boundary
AUDIO_EPS = 0.01


@dataclass(frozen=True)
class SeamReport:
    boundaries: tuple[int, ...]
    pixel: tuple[float, ...]  # per boundary
    warp: tuple[float, ...]
    audio_spectral: tuple[float, ...]  # empty without audio
    audio_click: tuple[float, ...]
    inside_pixel_median: float
    inside_warp_median: float

    def summary(self) -> dict[str, float]:
        def agg(v: tuple[float, ...], f: str) -> float:
            return float(getattr(np, f)(v)) if v else float("nan")

        out = {}
        for name in ("pixel", "warp", "audio_spectral", "audio_click"):
            out[f"{name}_mean"] = agg(getattr(self, name), "mean")
            out[f"{name}_max"] = agg(getattr(self, name), "max")
        return out


def frame_change(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())


def _pool(frame: np.ndarray) -> np.ndarray:
    f = frame.astype(np.float32)
    k = max(int(np.ceil(f.shape[0] / POOL_TO)), 1)
    h, w = f.shape[0] // k * k, f.shape[1] // k * k
    luma = f[:h, :w] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return reduce(luma, "(h a) (w b) -> h w", "mean", a=k, b=k)


def warp_error(a: np.ndarray, b: np.ndarray) -> float:
    """Block-matching warping error between frames a and b (H, W, 3); see the module docstring."""
    pa, pb = _pool(a), _pool(b)
    h, w = pb.shape[0] // BLOCK * BLOCK, pb.shape[1] // BLOCK * BLOCK
    if h == 0 or w == 0:
        return frame_change(a, b)
    padded = np.pad(pa, SEARCH, mode="edge")[: h + 2 * SEARCH, : w + 2 * SEARCH]
    shifted = np.lib.stride_tricks.sliding_window_view(padded, (h, w))  # (2S+1, 2S+1, h, w)
    err = np.abs(shifted - pb[:h, :w])  # (dy, dx, h, w)
    blocks = reduce(err, "dy dx (bh y) (bw x) -> (dy dx) bh bw", "mean", y=BLOCK, x=BLOCK)
    best = blocks.min(axis=0)
    return float(best.mean())


def _spectral_change(mag: np.ndarray, centres: np.ndarray, t: float) -> float:
    """S(t) = sum |A - B| / sum (A + B), A/B the median magnitude spectra of the frames centred in
    [t + 20 ms, t + 120 ms] and [t - 120 ms, t - 20 ms] (medians ignore a click on either side)."""
    before = mag[(centres >= t - SIDE_S) & (centres <= t - GAP_S)]
    after = mag[(centres >= t + GAP_S) & (centres <= t + SIDE_S)]
    if len(before) == 0 or len(after) == 0:
        return float("nan")
    a, b = np.median(after, axis=0), np.median(before, axis=0)
    return float(np.abs(a - b).sum() / (np.abs(a + b).sum() + 1e-12))


def _audio_ratios(
    audio: np.ndarray, sample_rate: int, fps: float, boundaries: Sequence[int]
) -> tuple[list[float], list[float]]:
    a = mono(audio)
    mag, centres = stft_magnitude(a, sample_rate)
    cuts = [b / fps for b in boundaries]
    grid = np.arange(SIDE_S, len(a) / sample_rate - SIDE_S, INSIDE_STEP_S)
    inside = [t for t in grid if min(abs(t - c) for c in cuts) > SIDE_S]
    ref = float(np.nanmedian([_spectral_change(mag, centres, t) for t in inside])) if inside else float("nan")
    flux_r = [(_spectral_change(mag, centres, t) + AUDIO_EPS) / (ref + AUDIO_EPS) for t in cuts]
    hp = np.diff(a, prepend=a[:1]) ** 2
    win = max(round(0.005 * sample_rate), 1)
    n = len(hp) // win
    ref_e = float(np.median(hp[: n * win].reshape(n, win).sum(axis=1))) + 1e-12
    click_r = []
    for t in cuts:
        s = round(t * sample_rate)
        lo, hi = max(s - win // 2, 0), min(s + win - win // 2, len(hp))
        click_r.append(float(hp[lo:hi].sum() / ref_e) if hi > lo else float("nan"))
    return flux_r, click_r


def seam_ratios(
    video: np.ndarray,
    boundaries: Sequence[int],
    audio: np.ndarray | None = None,
    sample_rate: int = 16000,
    fps: float = 24.0,
) -> SeamReport:
    """Seam ratios at each boundary (first shown frame of a new segment) of ``video`` (F, H, W, 3)."""
    bset = sorted(set(boundaries))
    if any(not 0 < b < len(video) for b in bset):
        raise ValueError(f"boundaries must lie inside 1..{len(video) - 1}; got {bset}")
    inside = [i for i in range(len(video) - 1) if i + 1 not in bset]
    if not inside:
        raise ValueError("no frame pair inside a segment to compare the boundaries with")
    if len(inside) > MAX_INSIDE:  # evenly spaced subset: the median needs no more
        inside = [inside[i] for i in np.linspace(0, len(inside) - 1, MAX_INSIDE).round().astype(int)]
    d = {i: frame_change(video[i], video[i + 1]) for i in inside}
    w = {i: warp_error(video[i], video[i + 1]) for i in inside}
    d_in, w_in = float(np.median(list(d.values()))), float(np.median(list(w.values())))
    reach = max(round(LOCAL_S * fps), 1)
    pixel, warp = [], []
    for b in bset:
        near = [i for i in inside if abs(i + 0.5 - b) <= reach]
        d_b, w_b = (
            (float(np.median([d[i] for i in near])), float(np.median([w[i] for i in near])))
            if len(near) >= MIN_LOCAL
            else (d_in, w_in)
        )
        pixel.append((frame_change(video[b - 1], video[b]) + EPS) / (d_b + EPS))
        warp.append((warp_error(video[b - 1], video[b]) + WARP_EPS) / (w_b + WARP_EPS))
    flux: tuple[float, ...] = ()
    click: tuple[float, ...] = ()
    if audio is not None:
        f, c = _audio_ratios(audio, sample_rate, fps, bset)
        flux, click = tuple(f), tuple(c)
    return SeamReport(tuple(bset), tuple(pixel), tuple(warp), flux, click, d_in, w_in)
