"""Concurrent sessions on one worker: 1, 2, 4, 8 sessions at once through a real server (issue #13).

    python bench/bench_sessions.py --preset tiny-ltx2 --segments 6 --counts 1 2 4 8 --repeats 2
    python bench/bench_sessions.py --preset tiny-ltx2 --segments 2 --counts 1 2 --repeats 1     # smoke

For each count N the clients (one separate process) open N sessions at once and each reads ``--segments``
segments. Aggregate throughput = all segments delivered / (last ``segment_done`` - first ``open``), relative to
one session; spread = slowest session's wall / fastest one's (1.0 = perfectly fair). Counts run interleaved
(1, 2, 4, 8, 1, 2, ...) so drift in the machine's load spreads over all of them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import DEFAULT_OUT, Plot, Report, header, median, write_report
from streamed import budget, host_for, load, settings_for, stream_sessions


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="tiny-ltx2")
    ap.add_argument("--segments", type=int, default=6)
    ap.add_argument("--counts", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    settings = settings_for(args.preset)
    b = budget()
    host = host_for(args.preset)
    stream_sessions(host, settings, 2, 1, b)  # warm-up: encoder pool, codecs, sockets
    rows: list[dict[str, Any]] = []
    for r in range(args.repeats):
        for n in args.counts:
            results = stream_sessions(host, settings, args.segments, n, b)
            walls = [wall for _, wall in results]
            row = {
                "repeat": r,
                "sessions": n,
                "slowest_s": max(walls),
                "fastest_s": min(walls),
                "segments_per_s": n * args.segments / max(walls),
                "spread": max(walls) / min(walls),
                "load_1m": load()[0],
            }
            rows.append(row)
            print(row, flush=True)
    one = median([r["segments_per_s"] for r in rows if r["sessions"] == 1]) if 1 in args.counts else None
    summary: dict[str, Any] = {}
    for n in args.counts:
        mine = [r for r in rows if r["sessions"] == n]
        rate = median([r["segments_per_s"] for r in mine])
        summary[f"{n}_sessions"] = {
            "segments_per_s": round(rate, 3),
            "aggregate_vs_one": round(rate / one, 3) if one else None,
            "spread": round(median([r["spread"] for r in mine]), 3),
        }
    summary["load_before_after"] = f"{rows[0]['load_1m']} / {load()}"
    report = Report(
        f"sessions-{args.preset}",
        header(preset=args.preset, size=f"{settings.width}x{settings.height}", frames=settings.frames,
               fps=settings.fps, steps="preset", warmup="host warm-up + one 2-segment session",
               segments=args.segments, repeats=args.repeats,
               thread_budget=f"torch {b.torch}, encode {b.encode} x x264 {b.x264}"),
        rows,
        summary,
    )  # fmt: skip

    def draw(ax: Any) -> None:
        ns = list(args.counts)
        ax.plot(
            ns,
            [summary[f"{n}_sessions"]["segments_per_s"] for n in ns],
            "o-",
            label="segments/s (all sessions)",
        )
        ax.set_xscale("log", base=2)
        ax.legend()

    report.plots.append(
        Plot("throughput", "aggregate throughput by concurrent sessions", draw, "sessions", "segments/s")
    )
    write_report(report, args.out)


if __name__ == "__main__":
    main()
