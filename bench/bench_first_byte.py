"""End of denoising -> first and last media byte at the client, against the segment's decode time (issue #13).

    python bench/bench_first_byte.py --preset bench --segments 6          # the must-show numbers
    python bench/bench_first_byte.py --preset tiny-ltx2 --segments 3      # smoke

One session through a real in-process server (``bench/streamed.py``). Per segment: the client's arrival of the
last denoising step's ``progress`` (end of denoising), of the segment's first and last ``media`` piece, and the
segment's decode time from ``segment_done.timings.decode`` (video + audio decode). Segment 0 is warm-up.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import DEFAULT_OUT, Plot, Report, header, median, write_report
from streamed import budget, host_for, load, settings_for, stream_session


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="bench")
    ap.add_argument("--segments", type=int, default=6)
    ap.add_argument("--frames", type=int, default=None)
    ap.add_argument("--size", type=int, default=None)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    settings = settings_for(args.preset, args.frames, args.size)
    b = budget()
    host = host_for(args.preset)
    load_before = load()
    times, wall = stream_session(host, settings, args.segments + 1, b)
    rows: list[dict[str, Any]] = []
    for s in times[1:]:
        decode = s.timings["decode"]
        rows.append({
            "segment": s.index,
            "decode_s": decode,
            "first_byte_s": s.first_media - s.end_denoise,
            "last_byte_s": s.last_media - s.end_denoise,
            "first_over_decode": (s.first_media - s.end_denoise) / decode,
            "last_over_decode": (s.last_media - s.end_denoise) / decode,
            "pieces": s.pieces,
            "first_piece_audio_samples": s.first_piece_audio_samples,
        })  # fmt: skip
    summary = {
        "median_first_over_decode": median([r["first_over_decode"] for r in rows]),
        "median_last_over_decode": median([r["last_over_decode"] for r in rows]),
        "first_piece_has_audio_every_segment": all(r["first_piece_audio_samples"] > 0 for r in rows),
        "load_before_after": f"{load_before} / {load()}",
        "wall_s": wall,
    }
    report = Report(
        f"first_byte-{args.preset}",
        header(preset=args.preset, size=f"{settings.width}x{settings.height}", frames=settings.frames,
               fps=settings.fps, steps="preset (distilled 8 + 3)", warmup="host warm-up + segment 0",
               segments=args.segments, thread_budget=f"torch {b.torch}, encode {b.encode} x x264 {b.x264}"),
        rows,
        summary,
    )  # fmt: skip

    def draw(ax: Any) -> None:
        xs = [r["segment"] for r in rows]
        ax.plot(xs, [r["first_over_decode"] for r in rows], "o-", label="first media byte")
        ax.plot(xs, [r["last_over_decode"] for r in rows], "s-", label="last media byte")
        ax.axhline(0.5, color="grey", ls="--", label="0.5 x decode")
        ax.legend()

    report.plots.append(
        Plot("ratio", "end of denoising -> media byte, / decode time", draw, "segment", "x decode")
    )
    write_report(report, args.out)


if __name__ == "__main__":
    main()
