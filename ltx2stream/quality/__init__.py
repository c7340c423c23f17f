"""Scorers that read only pixels and samples, and the quality measures built on them (docs/quality.md)."""

from .adherence import ATTRIBUTES, Adherence, Span, prompt_adherence
from .audio import clicks, hum, loudness_db, spectral_flux, tones
from .drift import STATS, Trend, drift, trend
from .seams import SeamReport, frame_change, seam_ratios, warp_error
from .steering import frames_matching, steering_latency
from .sync import AvOffset, av_offset, bounce_times
from .tracks import headings, motion_of, track, visual_bounces
from .video import BackgroundReading, FrameReading, ShapeReading, read_frame, read_video

__all__ = [
    "ATTRIBUTES",
    "STATS",
    "Adherence",
    "AvOffset",
    "BackgroundReading",
    "FrameReading",
    "SeamReport",
    "ShapeReading",
    "Span",
    "Trend",
    "av_offset",
    "bounce_times",
    "clicks",
    "drift",
    "frame_change",
    "frames_matching",
    "headings",
    "hum",
    "loudness_db",
    "motion_of",
    "prompt_adherence",
    "read_frame",
    "read_video",
    "seam_ratios",
    "spectral_flux",
    "steering_latency",
    "tones",
    "track",
    "trend",
    "visual_bounces",
    "warp_error",
]
