"""200 segments of one session through a real server: server RSS and segment time over the run (issue #13).

    python bench/bench_server_long.py --preset tiny-ltx2 --segments 200
    python bench/bench_server_long.py --preset tiny-ltx2 --segments 12 --reference 2     # smoke

The server runs in this process (model loaded and warmed first), the client in another one; a sampler thread
reads this process's RSS (``/proc/self/statm``) every 0.25 s. Growth = RSS at the last ``segment_done``
relative to RSS at segment ``--reference``'s ``segment_done`` (default 10: the allocator and the encoder are warm
by then) and, stricter, relative to segment 0's. Per-segment time = the gap between consecutive
``segment_done`` arrivals; the slope of a line fitted over the run says whether segments get slower.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import DEFAULT_OUT, Plot, Report, header, write_report
from streamed import RssSampler, budget, host_for, load, settings_for, stream_sessions

MiB = 1 << 20


def slope(xs: list[float], ys: list[float]) -> float:
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="tiny-ltx2")
    ap.add_argument("--segments", type=int, default=200)
    ap.add_argument("--reference", type=int, default=10, help="segment whose RSS is the baseline")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    if not 0 <= args.reference < args.segments - 1:
        ap.error("--reference must be a segment before the last one")
    settings = settings_for(args.preset)
    b = budget()
    host = host_for(args.preset)
    load_before = load()
    sampler = RssSampler()
    [(times, wall)] = stream_sessions(host, settings, args.segments, 1, b, sampler)
    done = [t.done for t in times]
    rows: list[dict[str, Any]] = []
    for i, t in enumerate(times):
        rows.append({
            "segment": t.index,
            "segment_s": done[i] - done[i - 1] if i else float("nan"),
            "rss_mib": sampler.at(t.done) / MiB,
            **{k: round(v, 4) for k, v in t.timings.items()},
        })  # fmt: skip
    rss0, rss_ref, rss_end = rows[0]["rss_mib"], rows[args.reference]["rss_mib"], rows[-1]["rss_mib"]
    gaps = [(r["segment"], r["segment_s"]) for r in rows[1:]]
    summary = {
        "rss_segment0_mib": round(rss0, 1),
        f"rss_segment{args.reference}_mib": round(rss_ref, 1),
        "rss_last_mib": round(rss_end, 1),
        "rss_peak_mib": round(max(s for _, s in sampler.samples) / MiB, 1),
        "growth_from_reference_pct": round(100 * (rss_end - rss_ref) / rss_ref, 2),
        "growth_from_segment0_pct": round(100 * (rss_end - rss0) / rss0, 2),
        "median_segment_s": round(sorted(g for _, g in gaps)[len(gaps) // 2], 4),
        "segment_s_slope_per_100_segments": round(100 * slope([x for x, _ in gaps], [g for _, g in gaps]), 5),
        "wall_s": round(wall, 1),
        "load_before_after": f"{load_before} / {load()}",
    }
    report = Report(
        f"server-long-{args.preset}",
        header(preset=args.preset, size=f"{settings.width}x{settings.height}", frames=settings.frames,
               fps=settings.fps, steps="preset", warmup="host warm-up", segments=args.segments,
               thread_budget=f"torch {b.torch}, encode {b.encode} x x264 {b.x264}"),
        rows,
        summary,
    )  # fmt: skip

    def draw_rss(ax: Any) -> None:
        ax.plot([r["segment"] for r in rows], [r["rss_mib"] for r in rows], "-", label="server RSS")
        ax.axhline(rss_ref * 1.02, color="grey", ls="--", label="reference + 2 %")
        ax.legend()

    def draw_time(ax: Any) -> None:
        ax.plot([x for x, _ in gaps], [g for _, g in gaps], ".", ms=3, label="segment_done gap")
        ax.legend()

    report.plots.append(Plot("rss", "server RSS over the run", draw_rss, "segment", "MiB"))
    report.plots.append(Plot("segment-time", "seconds per segment over the run", draw_time, "segment", "s"))
    write_report(report, args.out)


if __name__ == "__main__":
    main()
