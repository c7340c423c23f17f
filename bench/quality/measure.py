"""All measures of docs/quality.md for one session's output (or the world's reference rendering)."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from ltx2stream.quality import (
    SeamReport,
    Span,
    av_offset,
    drift,
    prompt_adherence,
    read_video,
    seam_ratios,
    steering_latency,
)

from .script import Script


def _clean(x: float | None) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


SEAM_KINDS = ("pixel", "warp", "audio_spectral", "audio_click")


def _summary(seams: SeamReport, skip: int) -> dict[str, float]:
    out = {}
    for k in SEAM_KINDS:
        v = [x for i, x in enumerate(getattr(seams, k)) if i != skip and np.isfinite(x)]
        out[f"{k}_mean"] = float(np.mean(v)) if v else float("nan")
        out[f"{k}_max"] = float(np.max(v)) if v else float("nan")
    return out


def measure(
    video: np.ndarray,
    audio: np.ndarray,
    sample_rate: int,
    fps: float,
    segment_frames: list[int],
    script: Script,
    window_s: float = 1.0,
) -> dict[str, Any]:
    """Adherence per attribute, seam ratios, steering latency, drift trends and A/V offset of one session."""
    readings = read_video(video)
    edges = [0, *np.cumsum(segment_frames).tolist()]
    boundaries = [int(b) for b in edges[1:-1]]
    spans = [Span(int(a), int(b), script.states[i]) for i, (a, b) in enumerate(itertools.pairwise(edges))]
    height = int(video.shape[1])
    adh = prompt_adherence(readings, audio, spans, fps, sample_rate, height, window_s)
    seams = seam_ratios(video, boundaries, audio, sample_rate, fps)
    start = boundaries[script.steer_segment - 1]
    lat = steering_latency(readings, start, script.new_state, script.old_state, fps, height)
    trends = drift(video, boundaries, audio, fps, sample_rate, script.steer_segment)
    av = av_offset(readings, audio, fps, sample_rate, height)
    return {
        "adherence": {k: _clean(v) for k, v in adh.scores.items()},
        "adherence_trials": adh.trials,
        "seams": {
            "boundaries": boundaries,
            "pixel": list(seams.pixel),
            "warp": list(seams.warp),
            "audio_spectral": list(seams.audio_spectral),
            "audio_click": list(seams.audio_click),
            # summaries over the continuation seams; the steer boundary may change the scene on purpose
            **{k: _clean(v) for k, v in _summary(seams, script.steer_segment - 1).items()},
            "steer_boundary": {k: _clean(getattr(seams, k)[script.steer_segment - 1]) for k in SEAM_KINDS},
        },
        "steering": {
            "steer_segment": script.steer_segment,
            "first_frame": start,
            "latency_frames": lat,
            "latency_segments": None if lat is None else lat / segment_frames[script.steer_segment],
        },
        "drift": {
            k: {
                "slope": _clean(t.slope),
                "stderr": _clean(t.stderr),
                "t": _clean(t.t),
                "values": list(t.values),
            }
            for k, t in trends.items()
        },
        "av_offset": {
            "offset_s": _clean(av.offset_s),
            "offset_frames": _clean(av.offset_frames),
            "pairs": av.pairs,
            "visual_bounces": len(av.visual),
            "clicks": len(av.audio),
        },
    }
