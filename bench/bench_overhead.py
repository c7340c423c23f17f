"""Streamed ÷ in-process: the same segments through the real server (encoder, sockets, client) and through the
session controller alone, interleaved repeats, medians (issue #13).

    python bench/bench_overhead.py --preset bench --segments 4 --repeats 5
    python bench/bench_overhead.py --preset tiny-ltx2 --segments 6 --repeats 5
    python bench/bench_overhead.py --preset tiny-ltx2 --segments 2 --repeats 1     # smoke

Both sides use the thread budget's torch threads (``server/threads.py``); the server also gets its encoder and
x264 threads. The streamed time runs from ``open`` to the last segment's ``segment_done`` at the client; the
in-process time from the first ``run_segment`` to the last one's return (the model is loaded and warm in both).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import DEFAULT_OUT, Plot, Report, header, median, write_report
from streamed import budget, host_for, in_process, load, settings_for, stream_session


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="bench")
    ap.add_argument("--segments", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    settings = settings_for(args.preset)
    b = budget()
    host = host_for(args.preset)
    load_before = load()
    rows: list[dict[str, Any]] = []
    for r in range(args.repeats):
        order = ("in_process", "streamed") if r % 2 == 0 else ("streamed", "in_process")
        row: dict[str, Any] = {"repeat": r, "first": order[0]}
        for side in order:
            if side == "in_process":
                row["in_process_s"] = in_process(host, settings, args.segments, b.torch)
            else:
                row["streamed_s"] = stream_session(host, settings, args.segments, b)[1]
        row["ratio"] = row["streamed_s"] / row["in_process_s"]
        row["load_1m"] = load()[0]
        rows.append(row)
        print(row, flush=True)
    summary = {
        "median_in_process_s": median([r["in_process_s"] for r in rows]),
        "median_streamed_s": median([r["streamed_s"] for r in rows]),
        "ratio_of_medians": median([r["streamed_s"] for r in rows])
        / median([r["in_process_s"] for r in rows]),
        "median_ratio": median([r["ratio"] for r in rows]),
        "load_before_after": f"{load_before} / {load()}",
    }
    report = Report(
        f"overhead-{args.preset}",
        header(preset=args.preset, size=f"{settings.width}x{settings.height}", frames=settings.frames,
               fps=settings.fps, steps="preset (distilled 8 + 3)", warmup="host warm-up", segments=args.segments,
               repeats=args.repeats, thread_budget=f"torch {b.torch}, encode {b.encode} x x264 {b.x264}"),
        rows,
        summary,
    )  # fmt: skip

    def draw(ax: Any) -> None:
        ax.plot([r["repeat"] for r in rows], [r["ratio"] for r in rows], "o-", label="streamed / in-process")
        ax.axhline(1.0, color="grey", ls="--")
        ax.legend()

    report.plots.append(Plot("ratio", "streamed / in-process wall time per repeat", draw, "repeat", "ratio"))
    write_report(report, args.out)


if __name__ == "__main__":
    main()
