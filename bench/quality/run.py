"""Running one session per continuation scheme through the real SessionController, segments interleaved
round-robin across schemes (so machine load affects every scheme alike)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ltx2stream.session.api import SegmentRequest, SessionSettings
from ltx2stream.session.controller import SessionController

from .script import Script

# bench name -> (continuation scheme, carries?, other options) ; "independent" = overlap 0 (no carry at all);
# "latent_carry_cut_at_end": the latent carry with the cut at each segment's end (no hold, no decode context: the
# cut before the hold, docs/continuation.md "The hold")
BENCH_SCHEMES: dict[str, tuple[str, bool, dict[str, int]]] = {
    "latent_carry": ("latent_carry", True, {}),
    "keyframe_carry": ("keyframe_carry", True, {}),
    "reencode": ("reencode", True, {}),
    "independent": ("latent_carry", False, {}),
    "latent_carry_cut_at_end": ("latent_carry", True, {"hold_frames": 0, "decode_context": 0}),
}


def scheme_names(text: str) -> list[str]:
    """``--schemes`` ("latent_carry,keyframe_carry") -> bench scheme names; ValueError names the unknown ones.

    A name may add continuation options after ``@`` (``latent_carry@carry_strength=0.9@hold_frames=4``): the
    session runs that bench scheme with those ``ContinuationOptions`` fields changed, under its whole name."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = []
    for name in names:
        try:
            scheme_of(name)
        except ValueError:
            unknown.append(name)
    if unknown or not names:
        raise ValueError(
            f"unknown schemes {unknown}; known: {', '.join(BENCH_SCHEMES)}, each optionally followed by "
            "@<continuation option>=<number> (e.g. latent_carry@carry_strength=0.9)"
        )
    return names


def scheme_of(name: str) -> tuple[str, bool, dict[str, float | int]]:
    """(continuation scheme, carries?, options) of a bench scheme name with optional ``@key=value`` options."""
    base, *extra = name.split("@")
    if base not in BENCH_SCHEMES:
        raise ValueError(name)
    scheme, carries, options = BENCH_SCHEMES[base]
    known = {"carry_strength": float, "carry_noise": float, "audio_context": int, "hold_frames": int,
             "decode_context": int}  # fmt: skip
    out: dict[str, float | int] = dict(options)
    for item in extra:
        key, _, value = item.partition("=")
        if key not in known:
            raise ValueError(name)
        out[key] = known[key](value)
    return scheme, carries, out


def plots_missing() -> str | None:
    """Why the bench's plots cannot be drawn (matplotlib absent), checked before the sessions run; None if they can."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "the quality bench needs matplotlib: pip install -e '.[bench]'"
    return None


def options_for(scheme: str, **other: float):  # type: ignore[no-untyped-def]
    """ContinuationOptions for a continuation scheme name (wherever the session layer keeps the class)."""
    try:
        from ltx2stream.session.continuation import ContinuationOptions  # type: ignore[attr-defined]
    except ImportError:  # before the typed continuation state
        from ltx2stream.session.controller import ContinuationOptions
    return ContinuationOptions(scheme=scheme, **other)


class _Sink:
    """Keeps a session's frames and audio (the SegmentSink protocol)."""

    def __init__(self) -> None:
        self.frame_chunks: list[np.ndarray] = []
        self.audio_chunks: list[np.ndarray] = []

    def progress(self, stage: str, step: int, total: int) -> None:
        pass

    def video(self, frames: np.ndarray) -> None:
        self.frame_chunks.append(frames)

    def audio(self, samples: np.ndarray) -> None:
        self.audio_chunks.append(samples)

    def media_complete(self) -> None:
        pass

    @property
    def shown(self) -> int:
        return sum(f.shape[0] for f in self.frame_chunks)


@dataclass
class SessionRun:
    name: str
    scheme: str
    overlap: int
    sample_rate: int
    segment_frames: list[int] = field(default_factory=list)  # frames shown per segment
    wall_s: list[float] = field(default_factory=list)  # per segment
    stages_s: list[dict[str, float]] = field(default_factory=list)  # per segment, from SegmentReport.timings
    carry_s: list[float] = field(default_factory=list)  # per segment: time spent building the next carry
    video: np.ndarray | None = None  # (F, H, W, 3)
    audio: np.ndarray | None = None  # (2, S)

    @property
    def boundaries(self) -> list[int]:
        """First shown frame of segments 1..n-1."""
        return [int(v) for v in np.cumsum(self.segment_frames)[:-1]]


def run_sessions(
    pipeline, settings: SessionSettings, names: list[str], script: Script, log=print
) -> list[SessionRun]:  # type: ignore[no-untyped-def]
    """One session per bench scheme name, all following ``script``; segment i of every scheme before i + 1."""
    ctrls, runs, sinks = [], [], []
    for name in names:
        scheme, carries, other = scheme_of(name)
        s = SessionSettings(
            settings.preset,
            settings.width,
            settings.height,
            settings.fps,
            settings.frames,
            settings.overlap if carries else 0,
            settings.seed,
        )
        ctrls.append(SessionController(pipeline, s, options=options_for(scheme, **other)))
        runs.append(SessionRun(name, scheme, s.overlap, pipeline.sample_rate))
        sinks.append(_Sink())
    for i, prompt in enumerate(script.prompts):
        for ctrl, run, sink in zip(ctrls, runs, sinks, strict=True):
            before = sink.shown
            t0 = time.perf_counter()
            final = i == len(script.prompts) - 1  # the session ends here: nothing held for a next segment
            report = ctrl.run_segment(SegmentRequest(i, prompt, settings.seed + i, final=final), sink)
            wall = time.perf_counter() - t0
            timings = dict(report.timings)
            run.segment_frames.append(sink.shown - before)
            run.wall_s.append(wall)
            run.stages_s.append(timings)
            # what the segment spent outside the pipeline stages: building the carry for the next segment
            run.carry_s.append(timings.get("carry", 0.0) + max(wall - sum(timings.values()), 0.0))
            log(f"  {run.name:15s} segment {i}: {run.segment_frames[-1]} frames in {wall:.1f} s")
    for run, sink in zip(runs, sinks, strict=True):
        run.video = np.concatenate(sink.frame_chunks)
        run.audio = np.concatenate(sink.audio_chunks, axis=1)
    return runs
