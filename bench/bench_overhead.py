"""Streamed ÷ in-process: the same segments through the real server (encoder, sockets, client) and through the
session controller alone, interleaved repeats, medians (issue #13).

    python bench/bench_overhead.py --preset bench --segments 6 --repeats 5
    python bench/bench_overhead.py --preset tiny-ltx2 --segments 6 --repeats 5
    python bench/bench_overhead.py --preset tiny-ltx2 --segments 2 --repeats 1 --warmup 0     # smoke
    python bench/bench_overhead.py --preset pocket --checkpoint /tmp/pocket-now/pocket.safetensors --repeats 3

With the pocket preset (256x256, 12 fps, overlap 1: 16 new frames = 1.333 s of media per segment) the streamed
side's seconds per segment give the real-time factor of a streamed session (``rtf_streamed`` = media seconds /
streamed seconds per segment, in the summary).

Both sides use the thread budget's torch threads (``server/threads.py``); the server also gets its encoder and
x264 threads. Two ratios per repeat, the model loaded and warm in both:

* ``ratio`` (the must-show, throughput): seconds per segment in the steady state, from the first segment's end
  to the last one's: ``segment_done`` arrivals at the client for the server, ``run_segment`` returns in-process.
  The server pipelines: a segment's encode and send overlap the next segment's denoising.
* ``end_to_end_ratio``: ``open`` -> the last ``segment_done`` at the client vs the first ``run_segment`` -> the
  last return; it adds the fixed costs that do not grow with the session (open, the first text encode, the last
  segment's encode + send after its decode), so it falls toward ``ratio`` as sessions get longer.

The client runs in a separate process (``streamed.py client``) on the same cores, so its work (a Python start,
the receive loop, reading the first piece's boxes) competes with the server's; on 2 cores that is ~14 ms of CPU
per tiny-preset segment over a 30-segment session, most of it the interpreter's start.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import DEFAULT_OUT, Plot, Report, header, median, median_interval, write_report
from streamed import budget, host_for, in_process, load, settings_for, steady_interval, stream_session

from ltx2stream.media.codecs import AAC_CODER as aac_coder
from ltx2stream.session import controller

# (flag, streamed side, suffix of its ratios): the sides streamed beside the main one, interleaved with it
COMPARE = (
    ("compare_threads", "streamed_threads", "threads"),
    ("compare_during", "streamed_first", "first"),
    ("compare_progress", "streamed_every_step", "every_step"),
    ("compare_audio_nice", "streamed_audio_nice0", "audio_nice0"),
    ("compare_switch", "streamed_switch5", "switch5"),
    ("compare_aac", "streamed_twoloop", "twoloop"),
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="bench")
    ap.add_argument("--segments", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1, help="discarded repeats of both sides first")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--checkpoint", type=Path, default=None,
                    help="the preset's weights from this file (e.g. a pocket export; speed does not depend on them)")  # fmt: skip
    ap.add_argument(
        "--compare-threads",
        action="store_true",
        help="also stream with the encoders as threads of the server process (interleaved with the others)",
    )
    ap.add_argument(
        "--compare-during",
        action="store_true",
        help="also stream with only the first piece encoded during the decode (encode_during_decode='first'; the "
        "main streamed side uses serve's default, 'all')",
    )
    ap.add_argument(
        "--compare-progress",
        action="store_true",
        help="also stream with one progress message per denoising step (progress_interval_s 0; the main "
        "streamed side uses the server's default)",
    )
    ap.add_argument(
        "--compare-audio-nice",
        action="store_true",
        help="also stream with the audio thread at the worker's priority for the whole segment "
        "(controller.AUDIO_REST_NICE 0; the main streamed side uses the default)",
    )
    ap.add_argument(
        "--compare-switch",
        action="store_true",
        help="also stream with Python's default GIL switch interval (5 ms; the main streamed side uses the "
        "thread budget's, 1 ms with CPU workers)",
    )
    ap.add_argument(
        "--compare-aac",
        action="store_true",
        help="also stream with FFmpeg's default AAC coder, twoloop (LTX2STREAM_AAC_CODER in the encoder "
        "processes; the main streamed side uses the media layer's, fast)",
    )
    args = ap.parse_args()
    if args.segments < 2:
        ap.error("--segments must be >= 2 (the steady state is measured between segment ends)")
    settings = settings_for(args.preset)
    b = budget()
    host = host_for(args.preset, args.checkpoint)
    load_before = load()
    for _ in range(
        args.warmup
    ):  # the first streamed session starts the encoder pool, the codecs, the sockets
        in_process(host, settings, 2, b.torch)
        stream_session(host, settings, 2, b)
        if args.compare_threads:
            stream_session(host, settings, 2, b, encoder_processes=False)
    extra = {"streamed": {}, "streamed_threads": {"encoder_processes": False},
             "streamed_first": {"encode_during_decode": "first"},
             "streamed_every_step": {"progress_interval_s": 0.0}, "streamed_audio_nice0": {},
             "streamed_switch5": {"switch_interval_s": 0.005}, "streamed_twoloop": {}}  # fmt: skip
    sides = ["in_process", "streamed"] + [side for flag, side, _ in COMPARE if getattr(args, flag)]
    rows: list[dict[str, Any]] = []
    for r in range(args.repeats):
        order = sides[r % len(sides) :] + sides[: r % len(sides)]  # each side goes first in turn
        row: dict[str, Any] = {"repeat": r, "first": order[0]}
        for side in order:
            if side == "in_process":
                ends = in_process(host, settings, args.segments, b.torch)
                row["in_process_s"] = ends[-1] - ends[0]
                row["in_process_interval_s"] = steady_interval(ends[1:])
            else:
                nice = controller.AUDIO_REST_NICE
                controller.AUDIO_REST_NICE = 0 if side == "streamed_audio_nice0" else nice
                # the encoder processes read it as they start (media/codecs.py)
                if side == "streamed_twoloop":
                    os.environ["LTX2STREAM_AAC_CODER"] = "twoloop"
                try:
                    times, row[f"{side}_s"] = stream_session(host, settings, args.segments, b, **extra[side])
                finally:
                    controller.AUDIO_REST_NICE = nice
                    os.environ.pop("LTX2STREAM_AAC_CODER", None)
                row[f"{side}_interval_s"] = steady_interval([t.done for t in times])
        row["ratio"] = row["streamed_interval_s"] / row["in_process_interval_s"]
        row["end_to_end_ratio"] = row["streamed_s"] / row["in_process_s"]
        for flag, side, suffix in COMPARE:
            if getattr(args, flag):
                row[f"ratio_{suffix}"] = row[f"{side}_interval_s"] / row["in_process_interval_s"]
        row["load_1m"] = load()[0]
        rows.append(row)
        print(row, flush=True)
    summary = {
        "median_in_process_interval_s": median([r["in_process_interval_s"] for r in rows]),
        "median_streamed_interval_s": median([r["streamed_interval_s"] for r in rows]),
        "ratio_of_medians": median([r["streamed_interval_s"] for r in rows])
        / median([r["in_process_interval_s"] for r in rows]),
        "median_ratio": median([r["ratio"] for r in rows]),
        "median_ratio_95ci": [round(x, 3) for x in median_interval([r["ratio"] for r in rows])],
        "end_to_end_ratio_of_medians": median([r["streamed_s"] for r in rows])
        / median([r["in_process_s"] for r in rows]),
        "load_before_after": f"{load_before} / {load()}",
    }
    new_frames = settings.frames - (1 + 8 * settings.overlap)  # a continuation segment delivers these frames
    summary["rtf_streamed"] = new_frames / settings.fps / summary["median_streamed_interval_s"]
    summary["rtf_in_process"] = new_frames / settings.fps / summary["median_in_process_interval_s"]
    for flag, side, suffix in COMPARE:
        if getattr(args, flag):
            side_s = median([r[f"{side}_interval_s"] for r in rows])
            summary[f"median_{side}_interval_s"] = side_s
            summary[f"ratio_of_medians_{suffix}"] = side_s / summary["median_in_process_interval_s"]
            ratios = [r[f"ratio_{suffix}"] for r in rows]
            summary[f"median_ratio_{suffix}"] = median(ratios)
            summary[f"median_ratio_{suffix}_95ci"] = [round(x, 3) for x in median_interval(ratios)]
    report = Report(
        f"overhead-{args.preset}",
        header(preset=args.preset, size=f"{settings.width}x{settings.height}", frames=settings.frames,
               fps=settings.fps, steps="the preset's own", warmup=f"host warm-up + {args.warmup} discarded repeat(s) of both sides", segments=args.segments,
               repeats=args.repeats, thread_budget=f"torch {b.torch}, encode {b.encode} x x264 {b.x264}",
               encode_during_decode="all (ratio)" + ("; first (ratio_first)" if args.compare_during else ""),
               progress="the server's default interval (ratio)" + ("; every step (ratio_every_step)" if args.compare_progress else ""),
               audio_rest_nice=f"{controller.AUDIO_REST_NICE} (ratio)" + ("; 0 (ratio_audio_nice0)" if args.compare_audio_nice else ""),
               encoders="child processes (serve's default)" + (", and threads of the server process (ratio_threads)" if args.compare_threads else ""),
               switch_interval=f"{b.switch_interval_s} s (ratio)" + ("; 0.005 s (ratio_switch5)" if args.compare_switch else ""),
               aac_coder=f"{aac_coder} (ratio)" + ("; twoloop (ratio_twoloop)" if args.compare_aac else "")),
        rows,
        summary,
    )  # fmt: skip

    def draw(ax: Any) -> None:
        ax.plot(
            [r["repeat"] for r in rows], [r["ratio"] for r in rows], "o-", label="per segment (steady state)"
        )
        ax.plot([r["repeat"] for r in rows], [r["end_to_end_ratio"] for r in rows], "s--", label="end to end")
        if args.compare_threads:
            ax.plot([r["repeat"] for r in rows], [r["ratio_threads"] for r in rows], "^:",
                    label="per segment, encoders as threads")  # fmt: skip
        if args.compare_during:
            ax.plot([r["repeat"] for r in rows], [r["ratio_first"] for r in rows], "v:",
                    label="per segment, only the first piece encoded during the decode")  # fmt: skip
        if args.compare_progress:
            ax.plot([r["repeat"] for r in rows], [r["ratio_every_step"] for r in rows], "x:",
                    label="per segment, a progress message per step")  # fmt: skip
        if args.compare_audio_nice:
            ax.plot([r["repeat"] for r in rows], [r["ratio_audio_nice0"] for r in rows], "d:",
                    label="per segment, the audio thread never yields")  # fmt: skip
        if args.compare_switch:
            ax.plot([r["repeat"] for r in rows], [r["ratio_switch5"] for r in rows], "P:",
                    label="per segment, GIL switch interval 5 ms")  # fmt: skip
        if args.compare_aac:
            ax.plot([r["repeat"] for r in rows], [r["ratio_twoloop"] for r in rows], "*:",
                    label="per segment, AAC coder twoloop")  # fmt: skip
        ax.axhline(1.0, color="grey", ls="--")
        ax.legend()

    report.plots.append(Plot("ratio", "streamed / in-process wall time per repeat", draw, "repeat", "ratio"))
    write_report(report, args.out)


if __name__ == "__main__":
    main()
