"""Long session on the embedded tiny model: A/V drift and memory over many segments, and segment timings.

    .venv/bin/python bench/bench_session_long.py [--segments 50] [--preset tiny-ltx2] [--frames 17] [--overlap 1]

Prints, per segment, delivered frames / samples, the A/V drift (|audio seconds − video seconds|), the process's
resident memory (from /proc/self/statm) and the segment's stage timings; then the RSS growth between the first
and second half of the run (a flat session grows by ~0) and the real-time factor (media seconds per wall second).
Exits non-zero if drift exceeds one frame or RSS grows by more than --max-growth-mib after warm-up.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

import numpy as np
import torch


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


class CountingSink:
    def __init__(self) -> None:
        self.frames = 0
        self.samples = 0

    def progress(self, stage: str, step: int, total: int) -> None:
        pass

    def video(self, frames: np.ndarray) -> None:
        self.frames += frames.shape[0]

    def audio(self, samples: np.ndarray) -> None:
        self.samples += samples.shape[1]

    def media_complete(self) -> None:
        pass


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--segments", type=int, default=50)
    ap.add_argument("--preset", default="tiny-ltx2")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--frames", type=int, default=17)
    ap.add_argument("--fps", type=float, default=12.0)
    ap.add_argument("--overlap", type=int, default=1)
    ap.add_argument("--max-growth-mib", type=float, default=32.0)
    args = ap.parse_args()
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    from ltx2stream.session.api import SegmentRequest, SessionSettings
    from ltx2stream.session.host import PipelineHost

    host = PipelineHost((args.preset,))
    host.warm_up()
    settings = SessionSettings(args.preset, args.size, args.size, args.fps, args.frames, args.overlap, 1)
    c = host.open_session(settings)
    sink = CountingSink()
    rss: list[float] = []
    worst_drift = 0.0
    t0 = time.perf_counter()
    prompts = ("a ball bouncing", "rain on a window", "a city at night")
    print("seg  frames  samples  drift_ms  rss_mib  seconds  stages")
    for i in range(args.segments):
        t = time.perf_counter()
        report = c.run_segment(SegmentRequest(i, prompts[(i // 5) % 3], 1 + i), sink)
        drift = abs(sink.samples / c.sample_rate - sink.frames / args.fps)
        worst_drift = max(worst_drift, drift)
        rss.append(rss_mib())
        stages = " ".join(f"{k}={v:.2f}" for k, v in report.timings.items())
        print(
            f"{i:3d}  {sink.frames:6d}  {sink.samples:7d}  {drift * 1e3:8.3f}  {rss[-1]:7.1f}  "
            f"{time.perf_counter() - t:7.2f}  {stages}"
        )
    wall = time.perf_counter() - t0
    half = len(rss) // 2
    growth = float(np.mean(rss[half:]) - np.mean(rss[max(1, half // 2) : half])) if len(rss) >= 4 else 0.0
    media_s = sink.frames / args.fps
    print(f"\nsegments {args.segments}: {sink.frames} frames, {sink.samples} samples at {c.sample_rate} Hz")
    print(f"worst A/V drift {worst_drift * 1e3:.3f} ms (one frame = {1e3 / args.fps:.1f} ms)")
    print(
        f"RSS first {rss[0]:.1f} MiB, last {rss[-1]:.1f} MiB, mean growth second half vs first half {growth:.2f} MiB"
    )
    print(f"real-time factor {media_s / wall:.3f} (media {media_s:.1f} s in {wall:.1f} s wall)")
    ok = worst_drift <= 1.0 / args.fps and growth <= args.max_growth_mib
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
